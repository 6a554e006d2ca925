"""Every figure of the "Customer segments" page against the orders this test wrote.

Thirty customers and a guest with known orders; two runs. Recency, orders and spend are worked
out from those orders in plain Python, the 1-5 scores with the documented rule (percentile of
mid-ranks, ``segmentation.ml.rfm``) written again here, and each segment's and cluster's figures
from them. Which segment and cluster a customer is in is read from the run's rows (the model's
decision); every figure about them is computed here. Forecast and churn figures are only checked
to be possible numbers (and the churn shares to match the customers flagged).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils.formats import date_format
from oscar.test.factories import UserFactory

from segmentation import services
from segmentation.models import CustomerSegment
from segmentation.testing import make_order
from tests.figures import assert_possible, parse, tables
from tests.training_shop import module_data

pytestmark = pytest.mark.django_db

URL = "segmentation_dashboard:segmentation-overview"
EARLIER, AS_OF = date(2024, 3, 31), date(2024, 6, 30)


def _orders():
    """(customer key, placed, total, status) of every order the shop gets: 30 customers' and a guest's."""
    rows = []
    for i in range(30):
        last = AS_OF - timedelta(days=(i * 13) % 170 + 1)
        for k in range(1 + (i * 7) % 6):
            placed = datetime.combine(last - timedelta(days=23 * k), datetime.min.time(), UTC) + timedelta(hours=12)
            rows.append((f"u{i}", placed, Decimal(10 + (i * 37 + k * 11) % 190), "Complete"))
    rows.append(("g", datetime(2024, 6, 1, 12, tzinfo=UTC), Decimal("20.00"), "Complete"))
    rows.append(("u0", datetime(2024, 6, 20, 12, tzinfo=UTC), Decimal("999.00"), "Cancelled"))  # never counts
    rows.append(("u1", datetime(2024, 7, 5, 12, tzinfo=UTC), Decimal("50.00"), "Complete"))  # after both runs
    return rows


def _build(tmp: str):
    users = {f"u{i}": UserFactory(email=f"c{i}@example.com") for i in range(30)}
    for key, placed, total, status in _orders():
        who = {"user": users[key]} if key in users else {"guest_email": "guest@example.com"}
        make_order(**who, total=total, placed=placed, status=status)
    runs = [services.run_segmentation(d) for d in (EARLIER, AS_OF)]
    return {u.pk: k for k, u in users.items()}, runs


module_shop = module_data(_build)


@pytest.fixture
def shop(module_shop, db):
    """``{user pk: customer key}`` of the shop built once per module (each test rolls back)."""
    return module_shop[0][0]


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True))
    return client


def rfm(as_of: date) -> dict[str, tuple[int, int, Decimal]]:
    """Per customer: days since the last order, orders and net spend as of ``as_of``, from the orders."""
    seen: dict[str, list] = defaultdict(list)
    for key, placed, total, status in _orders():
        if status != "Cancelled" and placed.date() <= as_of:
            seen[key].append((placed.date(), total))
    return {k: ((as_of - max(d for d, _ in v)).days, len(v), sum(t for _, t in v)) for k, v in seen.items()}


def scores(values: dict[str, float], higher_is_better: bool = True) -> dict[str, int]:
    """The documented 1-5 score: ``1 + floor(5 * (mid-rank - 0.5) / n)``, rank 1 the worst."""
    n, out = len(values), {}
    for key, v in values.items():
        worse = sum(1 for x in values.values() if (x < v if higher_is_better else x > v))
        equal = sum(1 for x in values.values() if x == v)
        out[key] = min(5, 1 + math.floor(5 * (worse + (equal + 1) / 2 - 0.5) / n))
    return out


def shown_as(text: str, value: float, digits: int, suffix: str = "") -> None:
    """The page's text is ``value`` with ``digits`` decimals (within half its last digit)."""
    assert text.endswith(suffix), (text, suffix)
    number = float(text.removesuffix(suffix).replace(",", ""))
    assert abs(number - value) <= 0.5 * 10**-digits + 1e-9, (text, value)


def _members(run, keys):
    rows = CustomerSegment.objects.filter(run=run).values(
        "user_id", "guest_email", "segment", "cluster", "r_score", "f_score", "m_score", "churn_risk"
    )
    return {(keys[r["user_id"]] if r["user_id"] else "g"): r for r in rows}


def test_each_segment_and_cluster_figure(staff, shop):
    keys = shop
    run = CustomerSegment.objects.filter(run__as_of=AS_OF).first().run
    html = staff.get(reverse(URL)).content.decode()
    assert_possible(html)
    figures = rfm(AS_OF)
    members = _members(run, keys)
    assert set(members) == set(figures)  # u1's July order and u0's cancelled one changed nobody
    assert f"As of {date_format(run.as_of)}: {len(figures)} customers" in html  # the shop's date format
    r = scores({k: f[0] for k, f in figures.items()}, higher_is_better=False)
    f = scores({k: f[1] for k, f in figures.items()})
    m = scores({k: float(f[2]) for k, f in figures.items()})
    assert {k: (v["r_score"], v["f_score"], v["m_score"]) for k, v in members.items()} == {
        k: (r[k], f[k], m[k]) for k in figures
    }
    revenue = sum(max(float(x[2]), 0) for x in figures.values())
    found = tables(html)
    shown = {row.attrs["data-segment"]: row.by_class() for row in found["segments"].rows}
    by_segment = defaultdict(list)
    for key, member in members.items():
        by_segment[member["segment"]].append(key)
    assert set(shown) == set(by_segment)
    for name, ks in by_segment.items():
        cells, n = shown[name], len(ks)
        assert cells["customers"] == str(n)
        shown_as(cells["share"], 100 * n / len(figures), 1, "%")
        shown_as(cells["revenue-share"], 100 * max(sum(float(figures[k][2]) for k in ks), 0) / revenue, 1, "%")
        shown_as(cells["recency"], sum(figures[k][0] for k in ks) / n, 0)
        shown_as(cells["frequency"], sum(figures[k][1] for k in ks) / n, 2)
        shown_as(cells["monetary"], sum(float(figures[k][2]) for k in ks) / n, 2)
        for text, dim in zip(cells["rfm"].split(" / "), (r, f, m), strict=True):
            shown_as(text, sum(dim[k] for k in ks) / n, 1)
        shown_as(cells["churn-risk"], 100 * sum(members[k]["churn_risk"] for k in ks) / n, 1, "%")
    flagged = sum(v["churn_risk"] for v in members.values())
    assert f"At churn risk: {100 * flagged / len(members):.1f}%." in " ".join(" ".join(parse(html).text).split())
    # clusters: size and means of their customers
    clusters = defaultdict(list)
    for key, member in members.items():
        clusters[member["cluster"]].append(key)
    rows = {int(row.attrs["data-cluster"]): row.by_class() for row in found["clusters"].rows}
    assert set(rows) == set(clusters)
    for c, ks in clusters.items():
        n = len(ks)
        assert rows[c]["size"] == str(n)
        shown_as(rows[c]["recency"], sum(figures[k][0] for k in ks) / n, 0)
        shown_as(rows[c]["frequency"], sum(figures[k][1] for k in ks) / n, 2)
        shown_as(rows[c]["monetary"], sum(float(figures[k][2]) for k in ks) / n, 2)
    # the cluster plot speaks of recency, frequency and spend, not principal components
    assert "how recently: days since the last order" in html and "how often: orders (log scale)" in html
    assert "PC1" not in html and "of variance" not in html


def test_movement_between_the_two_runs(staff, shop):
    keys = shop
    earlier, later = (CustomerSegment.objects.filter(run__as_of=d).first().run for d in (EARLIER, AS_OF))
    before, after = _members(earlier, keys), _members(later, keys)
    assert set(before) == set(rfm(EARLIER))
    moves = Counter(
        (
            before[k]["segment"] if k in before else "(new customer)",
            after[k]["segment"] if k in after else "(no longer active)",
        )
        for k in set(before) | set(after)
    )
    html = staff.get(reverse(URL)).content.decode()
    table = tables(html)["movements"]
    columns = [c.text for c in table.head[1:]]
    for row in table.rows:
        for column, cell in zip(columns, row.cells[1:], strict=True):
            assert cell.text == (str(moves[(row.cells[0].text, column)]) if moves[(row.cells[0].text, column)] else "")
    assert sum(int(c.text) for row in table.rows for c in row.cells[1:] if c.text) == len(set(before) | set(after))


def test_what_if_scores_against_the_run(staff, shop):
    figures = rfm(AS_OF)
    days, orders, spend = 12, 3, Decimal("150.00")
    html = staff.get(reverse(URL), {"wi_r": days, "wi_f": orders, "wi_m": str(spend)}).content.decode()
    assert_possible(html)
    everyone = {**figures, "new": (days, orders, spend)}  # the newcomer's score is the one among all of them
    r = scores({k: v[0] for k, v in everyone.items()}, higher_is_better=False)["new"]
    f = scores({k: v[1] for k, v in everyone.items()})["new"]
    m = scores({k: float(v[2]) for k, v in everyone.items()})["new"]
    result = " ".join(html.split('id="what-if-result">', 1)[1].split("</p>", 1)[0].split())
    assert f"(R {r}, F {f}, M {m}, scored against the {len(figures)} customers of the run" in result
