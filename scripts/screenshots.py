"""Take the README's pictures from the demo shop, as a shopper and as staff see it: ``make screenshots``.

    python scripts/screenshots.py [--data FILE] [--var-dir var/screenshots] [--out docs] [--reuse]

1. Sets up a new demo shop (``manage.py demo --no-serve``: migrate, import, segmentation,
   training, which takes minutes) in a folder of its own (``SHOP_VAR_DIR``, default
   ``var/screenshots``), replacing the database, cache, search index and media an earlier run left
   there: SQLite, a file cache, no server. ``DATABASE_URL`` and ``REDIS_URL`` are ignored, so
   ``make demo``'s shop and any shared Redis are left alone. ``--reuse`` keeps the shop the folder
   holds instead (to shoot again without training again).
2. Serves it with ``manage.py runserver`` on a free local port.
3. Drives Debian's chromium (``/usr/bin/chromium``, or ``CHROMIUM_PATH``) through Playwright, with a
   desktop user agent (a ``HeadlessChrome`` one is a bot and gets no personal blocks) and every
   request to another host aborted. A new shopper opens the catalogue, follows "Trending now" to a
   product, then "Customers who bought this also bought" to three more, shoots the fourth product
   page, adds it to the basket, shoots the basket and then the catalogue's "for you" block. A
   shopper whom the demo's A/B experiment put in the control group (best sellers in every block)
   is replaced by a new one. Staff then sign in and shoot the segments, behaviour and models pages.
4. Writes each picture as a PNG of 256 colours, 1280 pixels wide, to ``docs/`` (:data:`SHOTS`): a
   page from its top down to its last block or chart worth showing; the product page leaves out
   the product's details between its top and its blocks, where a zigzag marks the cut.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / "personalization_core/order_history/data/online_retail_sample.csv.gz"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
VIEWPORT = {"width": 1280, "height": 900}
STAFF_EMAIL = "admin@example.com"
#: the pictures, by file name under ``--out``, and what each shows
SHOTS = {
    "product.png": "a product page, its top and its blocks: also bought, also viewed, each with its reason",
    "basket.png": "the basket: frequently bought together, and for you",
    "for-you.png": "the catalogue after browsing: recommended for you, trending now",
    "segments.png": "staff: the customer segments page",
    "behaviour.png": "staff: the behaviour page",
    "models.png": "staff: the recommendation models page",
}
#: the tallest picture, in pixels (a long page is cut there)
MAX_HEIGHT = 2000
#: new shoppers tried before giving up on meeting one in the experiment's treatment group
MAX_SHOPPERS = 8


def prepare_shop(var_dir: Path, data: Path, reuse: bool) -> str:
    """Set up a new demo in ``var_dir`` (unless ``reuse`` finds one there); returns the staff password."""
    reuse = reuse and (var_dir / "db.sqlite3").exists()
    if not reuse:  # the pictures show a shop as the demo sets it up: no earlier run's versions or visits
        for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", "cache", "whoosh_index", "media"):
            path = var_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    os.environ["SHOP_VAR_DIR"] = str(var_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "shop.settings"
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from shop.management.commands.demo import Command as Demo

    if reuse:
        print(f"==> Reusing the demo shop in {var_dir}")
    else:
        call_command("demo", data=str(data), no_serve=True)
    password = Demo().reset_admin_password()  # the printed one is replaced: this run signs in with its own
    connections.close_all()
    return password


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, log: Path) -> subprocess.Popen[bytes]:
    """``manage.py runserver`` on ``port`` with this process's environment, once it answers."""
    cmd = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    server = subprocess.Popen(cmd, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"runserver stopped (exit {server.returncode}); see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/catalogue/", timeout=10)
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"runserver did not answer within 2 minutes; see {log}")


def edge(page: Any, selector: str | None, side: str) -> int:
    """The page's y of the ``side`` ("top" or "bottom") of the first element matching ``selector``
    (``None``: of the page); a selector starting ``before:`` gives the bottom of what comes before it."""
    if selector is None:
        return 0 if side == "top" else page.evaluate("document.documentElement.scrollHeight")
    if selector.startswith("before:"):  # what comes before it, with no part of it
        return edge(page, selector.removeprefix("before:"), "top") - 8
    found = page.locator(selector).first
    return int(found.evaluate(f"e => e.getBoundingClientRect().{side} + window.scrollY"))


def save(page: Any, path: Path, *parts: tuple[str | None, str | None]) -> None:
    """The page from the top of each part's first element to the bottom of its second (see
    :func:`edge`), the parts one under another with a torn edge where the page between them is left
    out (no part: the whole page), at most :data:`MAX_HEIGHT` pixels, as a PNG of 256 colours."""
    from PIL import Image, ImageDraw

    images = []
    for start, end in parts or ((None, None),):
        top, bottom = max(edge(page, start, "top") - 12, 0), edge(page, end, "bottom")
        clip = {"x": 0, "y": top, "width": VIEWPORT["width"], "height": bottom - top}
        images.append(Image.open(io.BytesIO(page.screenshot(full_page=True, clip=clip))).convert("RGB"))
    gap = 28
    height = sum(i.height for i in images) + gap * (len(images) - 1)
    image = Image.new("RGB", (VIEWPORT["width"], height), "white")
    draw, y = ImageDraw.Draw(image), 0
    for n, part in enumerate(images):
        if n:  # a zigzag across the gap: the page goes on between the parts
            zigzag = [(x, y - gap // 2 + (6 if (x // 16) % 2 else -6)) for x in range(0, VIEWPORT["width"] + 16, 16)]
            draw.line(zigzag, fill="#888888", width=2)
        image.paste(part, (0, y))
        y += part.height + gap
    image = image.crop((0, 0, image.width, min(image.height, MAX_HEIGHT)))
    image.quantize(colors=256, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"    {path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {path.stat().st_size // 1024} KB")


def place(placement: str) -> str:
    return f'section[data-placement="{placement}"]'


def block(page: Any, placement: str) -> Any:
    return page.locator(place(placement))


def follow(page: Any, placement: str, seen: list[str]) -> str:
    """Click the first product of a block that this shopper has not viewed yet; returns its title."""
    for link in block(page, placement).locator("li.recommendation h3 a").all():
        title = link.get_attribute("title") or ""
        if title not in seen:
            with page.expect_navigation():
                link.click()
            seen.append(title)
            return title
    raise SystemExit(f"{page.url}: no new product in the {placement!r} block to follow")


def in_control_group(page: Any) -> bool:
    """On a product page: every product of the block a best seller, as the experiment's control
    group sees it (the treatment group sees what the shop's customers bought with it)."""
    rungs = (
        block(page, "also_bought").locator("li.recommendation").evaluate_all("lis => lis.map(li => li.dataset.rung)")
    )
    return not rungs or set(rungs) == {"best_sellers"}


def shop_as_shopper(new_page: Any, out: Path) -> None:
    """The shopper's pictures: a product page, the basket, the catalogue's "for you"."""
    for _ in range(MAX_SHOPPERS):
        page = new_page()
        page.goto("/catalogue/")
        seen: list[str] = []
        follow(page, "trending", seen)
        if not in_control_group(page):
            break
        print("    this shopper is in the A/B experiment's control group (best sellers): a new one")
        page.context.close()
    else:
        raise SystemExit(f"{MAX_SHOPPERS} new shoppers were all shown best sellers only")
    for _ in range(3):
        follow(page, "also_bought", seen)
    print(f"    viewed {', '.join(seen)}")
    save(page, out / "product.png", (None, "article.product_page > .row"), (place("also_bought"), place("also_viewed")))
    with page.expect_navigation():
        page.locator("#add_to_basket_form button[type=submit]").click()
    page.goto("/basket/")
    save(page, out / "basket.png", (None, place("for_you")))
    page.goto("/catalogue/")
    save(page, out / "for-you.png", (None, place("trending")))


def shop_as_staff(new_page: Any, out: Path, password: str) -> None:
    """The staff pictures: segments, behaviour, models."""
    page = new_page()
    page.goto("/accounts/login/")
    page.fill("#id_login-username", STAFF_EMAIL)
    page.fill("#id_login-password", password)
    with page.expect_navigation():
        page.click("button[name=login_submit]")
    for url, name, end in (
        ("/dashboard/segments/", "segments.png", "before:#what-if"),
        ("/dashboard/segments/behaviour/", "behaviour.png", "div.row:has(> div > #funnel-categories)"),
        ("/dashboard/recommendations/models/", "models.png", "before:#preview"),
    ):
        response = page.goto(url)
        if response is None or response.status != 200 or "/login/" in page.url:
            raise SystemExit(f"{url}: {response.status if response else 'no response'} at {page.url}")
        save(page, out / name, (None, end))


def browse(origin: str, out: Path, password: str) -> None:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not os.access(chromium, os.X_OK):
        raise SystemExit(f"{chromium} is missing: make chromium (apt-get install chromium), or set CHROMIUM_PATH")

    def same_host_only(route: Any) -> None:
        if route.request.url.startswith(origin + "/"):
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)

        def new_page() -> Any:
            context = browser.new_context(base_url=origin, user_agent=BROWSER, viewport=VIEWPORT, locale="en-GB")
            context.set_default_timeout(60_000)
            context.route("**/*", same_host_only)
            return context.new_page()

        print("==> Browsing as a shopper")
        shop_as_shopper(new_page, out)
        print("==> Browsing as staff")
        shop_as_staff(new_page, out, password)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="order history the demo imports")
    parser.add_argument(
        "--var-dir", type=Path, default=REPO / "var" / "screenshots", help="the demo shop's own folder (replaced)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where the PNGs go")
    parser.add_argument("--reuse", action="store_true", help="skip the setup when --var-dir holds a demo already")
    args = parser.parse_args()
    started = time.monotonic()
    var_dir, out = args.var_dir.resolve(), args.out.resolve()
    if var_dir == REPO / "var":
        raise SystemExit("--var-dir var is make demo's shop, which this would replace: name a folder of its own")
    var_dir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    password = prepare_shop(var_dir, args.data.resolve(), args.reuse)
    port = free_port()
    print(f"==> Serving the demo on http://127.0.0.1:{port}/ (log: {var_dir / 'runserver.log'})")
    server = serve(port, var_dir / "runserver.log")
    try:
        browse(f"http://127.0.0.1:{port}", out, password)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"==> {len(SHOTS)} pictures in {out} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
