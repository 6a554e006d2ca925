"""Check the README's install on its project: a few lines to paste, and a product page that shows a block.

    python scripts/check_readme_project.py README.md tests/readme_project

1. Counts the lines README.md's install section has a shop paste (its snippets marked
   ``<!-- readme_project: FILE ... -->``, blank and comment lines aside): at most
   ``MAX_SETTINGS_LINES`` in ``yourshop/settings.py``, exactly one in ``yourshop/urls.py``.
2. In the project (its own settings, the database named by ``SHOP_DB``): migrates, imports the
   shipped sample with ``import_order_history --sample`` (a few customers), then renders a
   product page, the basket and the catalogue (the home page) as a desktop browser and checks
   that each shows a recommendation block with products, and that ``/api/schema/`` has a title.

``scripts/check_wheel.sh`` runs it with the installed wheel (``make wheel-check``);
``tests/system/test_packaging.py`` with the working tree.
"""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

MAX_SETTINGS_LINES = 10
MAX_URL_LINES = 1
SNIPPET = re.compile(r"<!-- readme_project: (\S+)(?: \((whole file|each line)\))? -->\n```\w*\n(.*?)```", re.S)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
BLOCK = re.compile(r'<section class="recommendations recommendations-(\w+)[^"]*"(.*?)</section>', re.S)


def pasted_lines(readme: Path) -> dict[str, list[str]]:
    """``{file: [line, ...]}``: the code lines README.md's snippets have a shop paste into each file."""
    lines: dict[str, list[str]] = {}
    for name, _mode, code in SNIPPET.findall(readme.read_text()):
        code_lines = [line for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]
        lines.setdefault(name, []).extend(code_lines)
    return lines


def check_line_counts(readme: Path) -> None:
    lines = pasted_lines(readme)
    settings, urls = lines.get("yourshop/settings.py", []), lines.get("yourshop/urls.py", [])
    print(f"install: {len(settings)} settings line(s), {len(urls)} url line(s)")
    for line in settings + urls:
        print(f"    {line.strip()}")
    if not 0 < len(settings) <= MAX_SETTINGS_LINES:
        sys.exit(f"FAIL: the README has a shop paste {len(settings)} settings lines (at most {MAX_SETTINGS_LINES})")
    if len(urls) != MAX_URL_LINES:
        sys.exit(f"FAIL: the README has a shop paste {len(urls)} url lines (exactly {MAX_URL_LINES})")


def blocks(html: str) -> dict[str, int]:
    """``{placement: products shown}`` of the recommendation blocks of a page."""
    return {placement: body.count("data-rung=") for placement, body in BLOCK.findall(html)}


def check_pages(project: Path) -> None:
    sys.path.insert(0, str(project))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yourshop.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from oscar.core.loading import get_model

    call_command("migrate", verbosity=0)
    out = io.StringIO()
    call_command("import_order_history", "--sample", "--limit-customers", "40", "--no-progress", stdout=out)
    orders = next(line for line in out.getvalue().splitlines() if line.startswith("| orders |"))
    print(f"import_order_history --sample: {orders}")
    Line = get_model("order", "Line")
    product = Line.objects.filter(product__is_public=True).order_by("pk").first().product
    client = Client(HTTP_USER_AGENT=BROWSER)
    pages = {"product page": product.get_absolute_url(), "basket": "/basket/", "home (catalogue)": "/catalogue/"}
    for label, url in pages.items():
        response = client.get(url)
        if response.status_code != 200:
            sys.exit(f"FAIL: {label} {url} answered {response.status_code}")
        shown = blocks(response.content.decode())
        print(f"{label} {url}: " + (", ".join(f"{p} ({n} products)" for p, n in shown.items()) or "no block"))
        if not any(shown.values()):
            sys.exit(f"FAIL: the {label} {url} renders no recommendation block with products")
    title = client.get("/api/schema/", {"format": "json"}).json()["info"]["title"]
    print(f"/api/schema/ title: {title!r}")
    if not title:
        sys.exit("FAIL: /api/schema/ has an empty title")


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(__doc__)
    readme, project = Path(argv[0]).resolve(), Path(argv[1]).resolve()
    check_line_counts(readme)
    os.chdir(project)
    check_pages(project)
    print("README project: ok")


if __name__ == "__main__":
    main(sys.argv[1:])
