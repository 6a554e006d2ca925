"""Every picture README.md shows is a file of the repository (``make screenshots`` takes them again)."""

from __future__ import annotations

import re

from tests.conftest import REPO

README = REPO / "README.md"
#: ``![alt](path)`` (a link around it included) and ``<img ... src="path">``
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*([^)\s]+)|<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.I)
#: a picture bigger than this makes the README slow to open: take it smaller
MAX_BYTES = 400_000


def readme_images(text: str) -> list[str]:
    """The local paths of the pictures a markdown text shows (web addresses left out)."""
    paths = [a or b for a, b in IMAGE.findall(text)]
    return [p.split("#")[0].split("?")[0] for p in paths if not re.match(r"[a-z][a-z0-9+.-]*:|//", p, re.I)]


def test_the_image_pattern_finds_markdown_and_html_pictures():
    text = (
        '[![Product page](docs/product.png)](docs/product.png) <img width="300" src="docs/basket.png" alt="b">'
        ' ![badge](https://example.com/b.svg) ![plot](docs/models.png "title")'
    )
    assert readme_images(text) == ["docs/product.png", "docs/basket.png", "docs/models.png"]


def test_every_picture_the_readme_shows_is_in_the_repository():
    images = readme_images(README.read_text())
    assert images, "README.md shows no picture"
    missing = [p for p in images if not (REPO / p).is_file()]
    assert missing == [], f"README.md shows pictures that are not in the repository: {missing} (make screenshots)"
    too_big = {p: (REPO / p).stat().st_size for p in images if (REPO / p).stat().st_size > MAX_BYTES}
    assert too_big == {}, f"pictures over {MAX_BYTES} bytes: {too_big}"
