"""A shop with no model and no orders still renders its pages (and its first sale shows up)."""

from __future__ import annotations

from django.core.cache import cache

from recommender.serving.rungs import BEST_SELLERS_KEY
from tests.helpers import browser
from tests.recommender.serving.test_serving import CATALOGUE, block_titles


def test_an_empty_shop_renders_its_pages(db, settings, tmp_path):
    from oscar.test.factories import create_order

    settings.MEDIA_ROOT = str(tmp_path)
    client = browser()
    assert client.get(CATALOGUE).status_code == 200
    assert "data-placement" not in client.get(CATALOGUE).content.decode()  # nothing to show: no block
    order = create_order()  # a shop with sales and no model yet: its best sellers
    cache.delete(BEST_SELLERS_KEY)  # (an empty list is cached for BLOCK_CACHE_SECONDS)
    html = browser().get(CATALOGUE).content.decode()
    sold = order.lines.first().product
    assert sold.get_title() in block_titles(html, "for_you") + block_titles(html, "trending")
    assert "One of our best sellers" in html
