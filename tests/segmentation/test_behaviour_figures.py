"""Every figure of the "Shop behaviour" page against the rows this test wrote, counted in plain Python.

Shoppers browse, fill baskets and check out through the shop's real views (captured events and
purchases); older orders are written directly, as an import writes them (no events). Postage and
bank charges are bought most often and are never ranked.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone
from oscar.core.loading import get_model
from oscar.test.factories import UserFactory, create_product

from segmentation.testing import make_order
from tests.figures import assert_possible, percent, tables
from tests.helpers import add_to_basket, browser, checkout, make_product, view_product

pytestmark = pytest.mark.django_db

URL = "segmentation_dashboard:segmentation-behaviour"
Category = get_model("catalogue", "Category")
ProductCategory = get_model("catalogue", "ProductCategory")
Line = get_model("order", "Line")
ZONE = "America/New_York"


def _import_line(order, product, quantity=1):
    price = Decimal("5.00") * quantity
    Line.objects.create(
        order=order,
        product=product,
        title=product.title,
        quantity=quantity,
        line_price_excl_tax=price,
        line_price_incl_tax=price,
        line_price_before_discounts_excl_tax=price,
        line_price_before_discounts_incl_tax=price,
        num_allocated=0,
    )


@pytest.fixture
def shop(settings):
    settings.TIME_ZONE = ZONE
    settings.RECOMMENDER = {"EXCLUDED_UPCS": ["BANK CHARGES"]}  # beside the default non-merchandise class
    mugs, vases, plates, lamps = (Category.add_root(name=n) for n in ("Mugs", "Vases", "Plates", "Lamps"))
    mug, cup = make_product("Red mug", "8.00"), make_product("Blue cup", "6.00")
    vase, plate, lamp = make_product("Tall vase", "20.00"), make_product("Plate", "4.00"), make_product("Old lamp")
    for product, category in ((mug, mugs), (cup, mugs), (vase, vases), (plate, plates), (lamp, lamps)):
        ProductCategory.objects.create(product=product, category=category)
    postage = create_product(title="POSTAGE", upc="POST", product_class="Non-merchandise")
    charges = create_product(title="Bank charges", upc="BANK CHARGES")
    # what the test did, in plain numbers: product -> count
    views, baskets, captured, lines, units = Counter(), Counter(), Counter(), Counter(), Counter()
    orders = []  # (placed, total)

    def shopper(viewed, added, buys, email):
        client = browser()
        for product in viewed:
            assert view_product(client, product).status_code == 200
            views[product.title] += 1
        for product in added:
            add_to_basket(client, product)
            baskets[product.title] += 1
        if buys:
            order = checkout(client, guest_email=email)
            for line in order.lines.all():
                captured[line.title] += 1
                lines[line.title] += 1
                units[line.title] += line.quantity
            orders.append((order.date_placed, order.total_incl_tax))

    shopper([mug, mug, cup], [mug], True, "ann@example.com")
    shopper([mug], [mug, cup], True, "bob@example.com")  # bob adds the cup from a list, without viewing it
    shopper([cup, vase, plate], [cup, plate, plate], False, "")  # the plate: two additions after one view
    # imported orders: no views, no basket additions, no purchase events; the fees in every one
    buyer = UserFactory(email="old@example.com")
    imported = [[vase, lamp], [vase, lamp], [mug], []]
    for i, bought in enumerate([*goods, postage, charges] for goods in imported):
        placed = timezone.now() - timedelta(days=400 + 30 * i)
        order = make_order(user=buyer, total="25.00", placed=placed)
        orders.append((order.date_placed, Decimal("25.00")))
        for product in bought:
            _import_line(order, product, quantity=2)
            lines[product.title] += 1
            units[product.title] += 2
    categories = {"Mugs": ["Red mug", "Blue cup"], "Vases": ["Tall vase"], "Plates": ["Plate"], "Lamps": ["Old lamp"]}
    return {
        "views": views,
        "baskets": baskets,
        "captured": captured,
        "lines": lines,
        "units": units,
        "orders": orders,
        "categories": categories,
    }


def _share_cell(part, whole, part_name, whole_name, untracked=0):
    """The text a share cell must show, worked out from the counts."""
    if not whole:
        note = f"not measured: no {whole_name} captured"
        return note + (f" for {untracked:,} purchases of imported or untracked orders" if untracked else "")
    if part > whole:
        return f"not a share: more {part_name} than {whole_name} captured"
    return percent(part / whole)


@pytest.fixture
def page(client, shop):
    client.force_login(UserFactory(is_staff=True))
    before = timezone.now()
    html = client.get(reverse(URL)).content.decode()
    return html, before, timezone.now()


def test_funnel_tables_show_each_count_and_only_possible_shares(page, shop):
    html, _before, _after = page
    assert_possible(html)
    found = tables(html)
    v, b, c, n, u = (shop[k] for k in ("views", "baskets", "captured", "lines", "units"))
    # products: goods only, by purchases; postage and bank charges (bought most) are not there
    rows = [r.by_class() | {"title": r.cells[0].text} for r in found["funnel-products"].rows]
    assert [r["title"] for r in rows] == ["Red mug", "Tall vase", "Old lamp", "Blue cup", "Plate"]
    for r in rows:
        t = r["title"]
        assert (r["view"], r["basket"], r["purchases"], r["captured"], r["units"]) == tuple(
            str(x) for x in (v[t], b[t], n[t], c[t], u[t])
        )
        assert r["purchase-per-view"] == _share_cell(c[t], v[t], "purchases", "views", n[t] - c[t])
    # categories: the sums of their products
    shown = {r.cells[0].text: r.by_class() for r in found["funnel-categories"].rows}
    assert list(shown) == ["Mugs", "Vases", "Lamps", "Plates"]  # no "(no category)": the fees are left out
    for name, titles in shop["categories"].items():
        views, baskets, bought, caught = (sum(counts[t] for t in titles) for counts in (v, b, n, c))
        r = shown[name]
        assert (r["view"], r["basket"], r["purchases"], r["captured"]) == tuple(
            str(x) for x in (views, baskets, bought, caught)
        )
        untracked = bought - caught
        assert r["basket-per-view"] == _share_cell(baskets, views, "basket additions", "views", untracked)
        assert r["purchase-per-basket"] == _share_cell(caught, baskets, "purchases", "basket additions", untracked)
    # each case the shop produced, spelled out: shares, more additions than views, imported purchases
    assert shown["Mugs"]["purchase-per-basket"] == "75.0%"
    assert shown["Plates"]["basket-per-view"] == "not a share: more basket additions than views captured"
    lamp = "not measured: no views captured for 2 purchases of imported or untracked orders"
    assert rows[2]["purchase-per-view"] == lamp and shown["Lamps"]["basket-per-view"] == lamp
    assert shown["Vases"]["purchase-per-basket"] == (
        "not measured: no basket additions captured for 2 purchases of imported or untracked orders"
    )
    assert "POSTAGE" not in html and "Bank charges" not in html


def test_header_activity_and_weekly_figures(page, shop):
    html, before, after = page
    zone = ZoneInfo(ZONE)
    shown = html.split("Counted ", 1)[1][:16]
    assert shown in {timezone.localtime(t, zone).strftime("%Y-%m-%d %H:%M") for t in (before, after)}
    assert f"times in {ZONE}" in html
    # the heat maps' titles give each kind's total
    orders = [(placed, total) for placed, total in shop["orders"] if total >= 0]
    assert f"product views ({sum(shop['views'].values()):,})" in html
    assert f"basket additions ({sum(shop['baskets'].values()):,})" in html
    assert f"orders ({len(orders):,})" in html
    latest = timezone.localtime(max(placed for placed, _ in orders), zone).date()
    monday = latest - timedelta(days=latest.weekday())
    assert f"The 52 weeks to the week of {monday.isoformat()} (the latest order)" in html
    # the funnel's bars say their scale
    assert "log scale" in html


def test_weekly_and_new_returning_exports(client, shop):
    client.force_login(UserFactory(is_staff=True))
    zone = ZoneInfo(ZONE)

    def table(name):
        r = client.get(reverse(URL), {"format": "csv", "table": name})
        return list(csv.reader(io.StringIO(r.content.decode())))

    weekly = table("weekly")
    latest = max(timezone.localtime(placed, zone).date() for placed, _ in shop["orders"])
    monday = latest - timedelta(days=latest.weekday())
    this_week = [t for placed, t in shop["orders"] if timezone.localtime(placed, zone).date() >= monday]
    last = weekly[-1]
    assert last[1] == str(len(this_week)) and float(last[2]) == pytest.approx(float(sum(this_week)))
    months = {r[0]: r[1:] for r in table("new_returning")[1:]}
    # three guests new this month (two checkouts) and one imported customer, new in their first month
    assert months[latest.strftime("%Y-%m")] == ["2", "0"]
    assert sum(int(new) for new, _ in months.values()) == 3
    products = table("funnel_products")
    assert products[0] == ["product_id", "title", "view", "basket", "purchases", "units", "captured_purchases"]
    assert [r[1] for r in products[1:]] == ["Red mug", "Tall vase", "Old lamp", "Blue cup", "Plate"]
