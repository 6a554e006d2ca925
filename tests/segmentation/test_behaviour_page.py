"""The "Shop behaviour" page: every table against hand-counted values, CSV export, cache, staff only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from oscar.core.loading import get_model
from oscar.test.factories import UserFactory, create_product

from segmentation import behaviour
from segmentation.testing import make_order

pytestmark = pytest.mark.django_db

URL = "segmentation_dashboard:segmentation-behaviour"
Event = get_model("recommender", "Event")
Line = get_model("order", "Line")
Category = get_model("catalogue", "Category")
ProductCategory = get_model("catalogue", "ProductCategory")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def shop():
    mugs = Category.add_root(name="Mugs")
    mug, plate = create_product(title="Red mug"), create_product(title="Plate")
    ProductCategory.objects.create(product=mug, category=mugs)
    ann, bob = UserFactory(email="ann@example.com"), UserFactory(email="bob@example.com")
    # Monday 2024-06-03 10:xx: two views of the mug, one basket addition; Tuesday 09:xx a view of the plate
    for t in ("2024-06-03T10:05:00", "2024-06-03T10:40:00"):
        Event.objects.create(kind="view", product=mug, user=ann, created=at(t))
    Event.objects.create(kind="basket", product=mug, user=ann, created=at("2024-06-03T10:41:00"))
    Event.objects.create(kind="view", product=plate, visitor_id="v1", created=at("2024-06-04T09:00:00"))
    # orders: ann in May and June 2024 (and June 2023), bob in June 2024; a credit note and a cancelled order
    o1 = make_order(user=ann, total="30.00", placed="2024-06-03T10:45:00")  # Monday 10h
    make_order(user=ann, total="20.00", placed="2024-05-06T08:00:00")  # Monday 8h
    make_order(user=ann, total="15.00", placed="2023-06-05T08:00:00")  # a year earlier
    make_order(user=bob, total="50.00", placed="2024-06-05T14:00:00")  # Wednesday 14h
    make_order(user=bob, total="-5.00", placed="2024-06-06T14:00:00")  # credit note: revenue only
    make_order(user=bob, total="99.00", placed="2024-06-06T15:00:00", status="Cancelled")  # ignored
    Line.objects.create(
        order=o1,
        product=mug,
        title="Red mug",
        quantity=2,
        line_price_excl_tax=30,
        line_price_incl_tax=30,
        line_price_before_discounts_excl_tax=30,
        line_price_before_discounts_incl_tax=30,
        num_allocated=0,
    )
    return mug, plate, ann, bob


@pytest.mark.usefixtures("shop")
def test_tables_by_hand():
    data = behaviour.compute_behaviour()
    grid = behaviour.activity_grid(data["activity"], "view")
    assert grid[0][10] == 2 and grid[1][9] == 1 and sum(map(sum, grid)) == 3
    assert behaviour.activity_grid(data["activity"], "basket")[0][10] == 1
    orders = behaviour.activity_grid(data["activity"], "order")
    assert orders[0][10] == 1 and orders[0][8] == 2 and orders[2][14] == 1 and sum(map(sum, orders)) == 4
    # weekly: the latest week is the one of Monday 2024-06-03: 30 + 50 - 5 (credit note), 2 orders
    weeks = data["weekly"]["rows"]
    assert len(weeks) == 52 and weeks[-1]["week"] == "2024-06-03"
    assert (weeks[-1]["orders"], weeks[-1]["revenue"]) == (2, 75.0)
    # 52 weeks earlier is the week of Monday 2023-06-05: ann's 15.00
    assert (weeks[-1]["orders_last_year"], weeks[-1]["revenue_last_year"]) == (1, 15.0)
    # funnel: the mug was viewed twice, added once, bought on one line (2 units); the plate viewed once
    cats = {r["category"]: r for r in data["funnel_categories"]}
    assert (cats["Mugs"]["view"], cats["Mugs"]["basket"], cats["Mugs"]["purchases"]) == (2, 1, 1)
    assert cats["Mugs"]["basket_per_view"] == pytest.approx(0.5)
    # its order was written without the checkout (no purchase event): the basket addition's share
    # counts only captured purchases, of which there are none
    assert cats["Mugs"]["captured_purchases"] == 0 and cats["Mugs"]["purchase_per_basket"] == 0.0
    assert cats["(no category)"]["view"] == 1
    top = data["funnel_products"][0]
    assert (top["title"], top["units"]) == ("Red mug", 2)
    # cohorts: ann first ordered 2023-06 (again in 2024-05 = month 11, 2024-06 = month 12); bob 2024-06
    rows = {r["cohort"]: r for r in data["cohorts"]["rows"]}
    assert rows["2023-06"]["customers"] == 1 and rows["2023-06"]["retention"][0] == 1.0
    assert rows["2023-06"]["retention"][1] == 0.0 and rows["2023-06"]["retention"][11] == 1.0
    assert rows["2024-06"]["retention"][1] is None  # not observed yet
    months = {r["month"]: r for r in data["new_returning"]}
    assert (months["2024-06"]["new"], months["2024-06"]["returning"]) == (1, 1)
    assert (months["2023-06"]["new"], months["2023-06"]["returning"]) == (1, 0)


def test_page_is_staff_only_and_cached(client, shop):
    url = reverse(URL)
    assert client.get(url).status_code in (302, 403)
    client.force_login(UserFactory(is_staff=False))
    assert client.get(url).status_code in (302, 403)
    client.force_login(UserFactory(is_staff=True))
    page = client.get(url).content.decode()
    assert "Shop behaviour" in page and page.count("<svg") >= 5
    with CaptureQueriesContext(connection) as warm:
        assert client.get(url).status_code == 200
    # warm: the session and user, then two MAX queries for the cache key; nothing is recounted
    assert not any("GROUP BY" in q["sql"] for q in warm.captured_queries)
    make_order(user=shop[2], total="10.00", placed="2024-06-07T10:00:00")
    assert behaviour.shop_behaviour()["weekly"]["rows"][-1]["orders"] == 3  # a new order: recounted


def test_csv_export(client, shop):
    client.force_login(UserFactory(is_staff=True))
    r = client.get(reverse(URL), {"format": "csv", "table": "weekly"})
    assert r["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[0] == ["week", "orders", "revenue", "orders_last_year", "revenue_last_year"]
    assert rows[-1] == ["2024-06-03", "2", "75.0", "1", "15.0"]
    for table in behaviour.TABLES:
        assert client.get(reverse(URL), {"format": "csv", "table": table}).status_code == 200
    assert client.get(reverse(URL), {"format": "csv", "table": "nope"}).status_code == 404


def test_empty_shop_renders(client):
    client.force_login(UserFactory(is_staff=True))
    page = client.get(reverse(URL)).content.decode()
    assert "No activity yet" in page and "No orders yet" in page
