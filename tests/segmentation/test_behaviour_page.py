"""The "Shop behaviour" page: every table against hand-counted values, CSV export, cache, staff only."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from oscar.core.loading import get_model
from oscar.test.factories import UserFactory, create_product

from segmentation import behaviour
from segmentation.testing import make_order
from tests.figures import assert_possible, percent, tables, visible_text

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


# -- purchase intent ---------------------------------------------------------------------------

ModelVersion = get_model("recommender", "ModelVersion")
SVG_NS = "{http://www.w3.org/2000/svg}"


def _scores(macro, view, basket, purchase, leave, accuracy, **extra):
    per_class = {"view": view, "basket": basket, "purchase": purchase, "leave": leave}
    return {"macro_f1": macro, "per_class_f1": per_class, "accuracy": accuracy, **extra}


INTENT_METRICS = {
    "n_cases": 1800,
    "class_counts": {"view": 941, "basket": 212, "purchase": 87, "leave": 560},
    "candidate": _scores(0.4123, 0.71, 0.38, 0.21, 0.35, 0.58, cell="lstm"),
    "other_cell": _scores(0.3987, 0.70, 0.36, 0.19, 0.34, 0.57, cell="gru", brier=0.1448),
    "majority": _scores(0.1732, 0.6929, 0.0, 0.0, 0.0, 0.5228),
    "repeat_last": _scores(0.2514, 0.62, 0.18, 0.0, 0.0, 0.47),
    "calibration": {
        "brier": 0.1421,
        "base_rate": 0.1661,
        "brier_base_rate": 0.1385 + 0.0329,
        "reliability": [
            {"predicted": 0.04, "observed": 0.03, "n": 412},
            {"predicted": 0.14, "observed": 0.12, "n": 903},
            {"predicted": 0.24, "observed": 0.27, "n": 301},
            {"predicted": 0.45, "observed": 0.49, "n": 184},
        ],
    },
    "intent": {
        "quantiles": [0.5, 0.9],
        "bands": {"medium": 0.12, "high": 0.31},
        "distribution": {
            "edges": [round(0.05 * i, 3) for i in range(21)],
            "counts": [180, 232, 410, 321, 172, 141, 98, 79, 61, 40, 28, 18, 10, 6, 3, 1, 0, 0, 0, 0],
        },
        "visitors_by_band": {"days": 7.0, "counts": {"low": 1204, "medium": 873, "high": 96}},
    },
    "gate_metric": "macro_f1",
    "gate": {"majority": 0.1732, "repeat_last": 0.2514, "candidate": 0.4123},
}


def _svgs(html: str) -> list[dict]:
    """Each figure of the page: its x and y axis labels (matplotlib writes each text as a comment
    in its own group) and every text in it."""
    found = []
    for part in html.split("<svg")[1:]:
        svg = "<svg" + part.split("</svg>", 1)[0] + "</svg>"
        root = ET.fromstring(svg, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
        labels = {}
        for g in root.iter(f"{SVG_NS}g"):
            axis = {"matplotlib.axis_1": "x", "matplotlib.axis_2": "y"}.get(g.get("id", ""))
            if axis:  # the axis label is the axis group's own text, beside its ticks
                own = [c for child in g if child.get("id", "").startswith("text_") for c in child]
                labels[axis] = " ".join(c.text.strip() for c in own if c.tag is ET.Comment)
        found.append(labels | {"texts": [c.text.strip() for c in root.iter() if c.tag is ET.Comment]})
    return found


def _intent_version(status="live"):
    return ModelVersion.objects.create(
        kind="next_action",
        status=status,
        model_name="next_action",
        metrics=INTENT_METRICS,
        holdout_start=datetime(2024, 6, 1, 3, 0, tzinfo=UTC),  # 2024-05-31 in New York
        data_end=datetime(2024, 6, 8, 2, 0, tzinfo=UTC),  # 2024-06-07 in New York
    )


def test_purchase_intent_section(client, settings):
    settings.TIME_ZONE = "America/New_York"
    _intent_version()
    client.force_login(UserFactory(is_staff=True))
    html = client.get(reverse(URL)).content.decode()
    assert_possible(html)
    text = visible_text(html)
    assert "Purchase intent" in text and "No purchase-intent model is live yet" not in text
    assert "tested on days it did not learn from, 2024-05-31 to 2024-06-07: 1,800 next actions" in text
    assert "(941 views, 212 basket additions, 87 purchases, 560 times the shopper left)" in text
    found = tables(html)
    # visitors per band, the cut points as percentages
    assert [c.text for c in found["intent-bands"].head][-1] == "Visitors active in the last 7 days to 2024-06-07"
    bands = [r.by_class() for r in found["intent-bands"].rows]
    assert [(r["band"], r["range"], r["visitors"]) for r in bands] == [
        ("low", f"under {percent(0.12)}", "1,204"),
        ("medium", f"{percent(0.12)} to {percent(0.31)}", "873"),
        ("high", f"{percent(0.31)} and above", "96"),
    ]
    # the live model, the other cell and the two baselines, each with its F1 per action
    models = {r.cells[0].text: r.by_class() for r in found["intent-models"].rows}
    assert list(models) == [
        "The live model (LSTM)",
        "The other network (GRU)",
        "Always the most common action",
        "Repeat the last action",
    ]
    for name, key in zip(models, ("candidate", "other_cell", "majority", "repeat_last"), strict=True):
        m = INTENT_METRICS[key]
        assert models[name]["macro-f1"] == f"{m['macro_f1']:.2f}"
        for action, f1 in m["per_class_f1"].items():
            assert models[name][f"f1-{action}"] == f"{f1:.2f}"
    # the Brier score beside always guessing the average, in words
    cal = INTENT_METRICS["calibration"]
    assert (
        f"Brier score {cal['brier']:.3f} (the mean squared error of those percentages; lower is better); "
        f"always guessing the average, {percent(cal['base_rate'])}, scores {cal['brier_base_rate']:.3f}." in text
    )
    assert "The model does better than guessing the average." in text
    # the two figures: labelled axes, the bands named at their cut points, the bins' counts
    figures = _svgs(html)
    dist = next(f for f in figures if f.get("y") == "held-out actions")
    assert dist["x"] == "probability that the next action is a basket addition or a purchase"
    assert {"low", "medium \u2265 12.0%", "high \u2265 31.0%"} <= set(dist["texts"])
    rel = next(f for f in figures if f.get("y") == "observed share of basket additions and purchases")
    assert rel["x"] == "predicted probability of a basket addition or a purchase"
    assert f"Brier score {cal['brier']:.3f} (lower is better);" in rel["texts"]
    assert f"always guessing the average scores {cal['brier_base_rate']:.3f}" in rel["texts"]
    assert {"412", "903", "301", "184"} <= set(rel["texts"])  # each point's number of actions


def test_purchase_intent_without_a_live_model(client, monkeypatch):
    _intent_version("rejected")  # judged and not promoted: nothing is live
    url = reverse(URL)
    client.force_login(UserFactory(is_staff=False))
    response = client.get(url)
    assert response.status_code in (302, 403) and "Purchase intent" not in response.content.decode()
    client.force_login(UserFactory(is_staff=True))
    text = visible_text(client.get(url).content.decode())
    assert (
        "Purchase intent No purchase-intent model is live yet: it is trained nightly with the other models "
        "once the shop has browsing on record." in text
    )
    # without the recommender app there is no section at all
    installed = apps.is_installed
    monkeypatch.setattr(apps, "is_installed", lambda name: name != "recommender" and installed(name))
    assert "Purchase intent" not in client.get(url).content.decode()
