"""The overview page: backtest table, "which segment would a customer be in?", heat map notes; staff only."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from django.urls import reverse
from oscar.test.factories import UserFactory

from segmentation import services
from segmentation.charts import text_colour
from segmentation.models import CustomerSegment
from segmentation.testing import make_order
from tests.segmentation.services.test_clv_backtest_service import AS_OF, build_shop

pytestmark = pytest.mark.django_db

OVERVIEW = "segmentation_dashboard:segmentation-overview"


@pytest.fixture
def run():
    build_shop(n=60)
    return services.run_segmentation(AS_OF)


def test_overview_shows_the_backtest_to_staff_only(client, run):
    url = reverse(OVERVIEW)
    assert client.get(url).status_code in (302, 403)  # anonymous: to the login page
    client.force_login(UserFactory(is_staff=False))
    assert client.get(url).status_code in (302, 403)
    client.force_login(UserFactory(is_staff=True))
    page = client.get(url).content.decode()
    bt = run.summary["backtest"]
    assert bt["status"] == "done"
    assert "Forecast backtest" in page and "Churn AUC" in page
    for name in bt["candidates"]:
        assert f"<td>{name} " in page
    assert page.count("<svg") >= 5  # the decile calibration chart too
    winner = bt["candidates"][bt["winner"]]
    ratio = next(d["ratio"] for d in reversed(winner["deciles"]) if d["ratio"] is not None)
    assert f'<td class="num">{ratio:,.2f}</td>' in page  # the decile table
    assert "(GBP)" in page  # money says its currency


#: the default rule table as its grid (segmentation/ml/rfm.py): per FM score, the segment for R = 1..5
GRID = {
    5: ("Can't lose them", "Can't lose them", "Loyal", "Loyal", "Champions"),
    4: ("At risk", "At risk", "Loyal", "Loyal", "Champions"),
    3: ("At risk", "At risk", "Need attention", "Potential loyalist", "Potential loyalist"),
    2: ("Hibernating", "Hibernating", "About to sleep", "Potential loyalist", "Potential loyalist"),
    1: ("Lost", "Hibernating", "About to sleep", "Promising", "New"),
}


def score_among(values: list, value, *, lower_is_better: bool = False) -> int:
    """The 1-5 score of one more customer with ``value`` among customers with ``values``, by the
    definition: the newcomer's rank among all ``n`` (1 = worst, ties share their average rank),
    ``p = (rank - 1/2) / n``, score ``1 + floor(5 p)``."""
    worse = sum(1 for v in values if (v > value if lower_is_better else v < value))
    tied = sum(1 for v in values if v == value) + 1  # the newcomer joins its tie group
    rank = worse + Fraction(tied + 1, 2)  # the average of the positions worse + 1 .. worse + tied
    n = len(values) + 1
    return min(5, 1 + math.floor(5 * (rank - Fraction(1, 2)) / n))


def test_what_if_form_matches_the_runs_own_scores(client, run):
    client.force_login(UserFactory(is_staff=True))
    member = CustomerSegment.objects.filter(run=run).order_by("pk")[3]
    # a customer identical to an existing one gets that customer's cluster
    r = client.get(
        reverse(OVERVIEW),
        {"wi_r": member.recency_days, "wi_f": member.frequency, "wi_m": str(member.monetary)},
    )
    result = r.context["what_if"]["result"]
    rows = list(CustomerSegment.objects.filter(run=run))
    want = {
        "r_score": score_among([m.recency_days for m in rows], member.recency_days, lower_is_better=True),
        "f_score": score_among([m.frequency for m in rows], member.frequency),
        "m_score": score_among([m.monetary for m in rows], member.monetary),
    }
    assert {k: result[k] for k in want} == want
    assert result["segment"] == GRID[(want["f_score"] + want["m_score"] + 1) // 2][want["r_score"] - 1]
    assert result["cluster"] == member.cluster and result["customers"] == len(rows) == 60
    assert (
        f"Segment <strong>{result['segment']}</strong> (R {want['r_score']}, F {want['f_score']}, "
        f"M {want['m_score']}, scored against the 60 customers" in r.content.decode()
    )
    bad = client.get(reverse(OVERVIEW), {"wi_r": "-1", "wi_f": "x", "wi_m": "1"})
    assert bad.context["what_if"]["error"]


def build_ten_customers() -> None:
    """Ten customers whose scores are worked out by hand: customer ``i`` last ordered ``10 i + 5`` days
    before AS_OF; customers 0-4 ordered once (spending 10-14), customers 5-9 ordered 2-6 times (20 each).

    R (fewer days is better, ten distinct values): 5, 5, 4, 4, 3, 3, 2, 2, 1, 1 for customers 0..9.
    F: the five single orders tie at mid-rank 3, p = 2.5 / 10, F = 2; 2..6 orders have ranks 6..10,
    F = 3, 4, 4, 5, 5. No customer has F = 1.
    """
    for i in range(10):
        user = UserFactory(email=f"ten{i}@example.com")
        last = AS_OF - timedelta(days=10 * i + 5)
        orders = 1 if i < 5 else i - 3
        for j in range(orders):
            placed = last - timedelta(days=7 * j)
            make_order(user=user, total=10 + i if i < 5 else 20, placed=f"{placed.isoformat()}T12:00:00")


def test_what_if_scores_worked_out_by_hand():
    build_ten_customers()
    run = services.run_segmentation(AS_OF)
    rows = CustomerSegment.objects.filter(run=run).order_by("recency_days")
    assert [m.recency_days for m in rows] == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]
    assert [m.monetary for m in rows] == [10, 11, 12, 13, 14, 40, 60, 80, 100, 120]
    # 30 days: 7 customers are worse, rank 8 of 11, p = 7.5 / 11, R = 4; 3 orders: 6 worse, tied with
    # one, ranks 7-8, p = 7 / 11, F = 4; 70 spent: 7 worse, rank 8, M = 4; FM 4 with R 4 is "Loyal"
    result = services.what_if(run, 30, 3, Decimal("70"))
    assert (result["r_score"], result["f_score"], result["m_score"], result["segment"]) == (4, 4, 4, "Loyal")
    # 100 days: worst of 11, R = 1; one order: tied with five, ranks 1-6, p = 3 / 11, F = 2; 12 spent:
    # 2 worse, tied with one, ranks 3-4, p = 3 / 11, M = 2; FM 2 with R 1 is "Hibernating"
    result = services.what_if(run, 100, 1, Decimal("12"))
    assert (result["r_score"], result["f_score"], result["m_score"], result["segment"]) == (1, 2, 2, "Hibernating")


def test_what_if_by_hand(run):
    # the worst possible customer: most days since an order, one order, nothing spent
    worst = services.what_if(run, 10_000, 1, Decimal("-1000"))
    assert (worst["r_score"], worst["m_score"]) == (1, 1)
    best = services.what_if(run, 0, 1000, Decimal("1000000"))
    assert (best["r_score"], best["f_score"], best["m_score"]) == (5, 5, 5)
    assert best["segment"] == "Champions"


def test_heat_map_text_is_readable_and_empty_columns_are_explained(client):
    assert text_colour(90, 100) == "white" and text_colour(10, 100) == "black"
    build_ten_customers()
    run = services.run_segmentation(AS_OF)
    # rows R 1..5, columns F 1..5 (see build_ten_customers): the F = 1 column is empty
    assert run.summary["heatmap_rf"] == [
        [0, 0, 0, 0, 2],
        [0, 0, 0, 2, 0],
        [0, 1, 1, 0, 0],
        [0, 2, 0, 0, 0],
        [0, 2, 0, 0, 0],
    ]
    note = (
        "No customer has F = 1: 5 of 10 customers (50 %) have the same number of orders (1), "
        "and tied customers share one score (F = 2)."
    )
    assert run.summary["heatmap_notes"] == [note]  # R has ten distinct values: no R note
    client.force_login(UserFactory(is_staff=True))
    assert f'<p class="small text-muted mb-1">{note}</p>' in client.get(reverse(OVERVIEW)).content.decode()


def test_forecast_disagreements():
    segments = [
        {"segment": "Lost", "churn_risk": 1.0, "mean_predicted_value": 500.0, "mean_monetary": 100.0},
        {"segment": "Champions", "churn_risk": 0.0, "mean_predicted_value": 900.0, "mean_monetary": 100.0},
        {"segment": "Hibernating", "churn_risk": 0.95, "mean_predicted_value": 20.0, "mean_monetary": 100.0},
    ]
    assert services.forecast_disagreements(segments) == [
        "Lost: 100 % at churn risk, but forecast to spend 500.00 against 100.00 so far"
    ]


def test_the_run_agrees_with_itself(run):
    assert run.summary["forecast_disagreements"] == []
    rows = CustomerSegment.objects.filter(run=run)
    assert all(m.churn_risk == (m.churn_probability > 0.5) for m in rows)


def test_api_serves_the_backtest_and_churn_probability(client, run):
    client.force_login(UserFactory(is_staff=True))
    current = client.get("/api/segmentation/runs/current/").json()
    assert current["backtest"]["status"] == "done"
    assert current["backtest"]["winner"] == current["predicted_value"]["model"]
    rows = client.get("/api/segmentation/memberships/").json()["results"]
    assert rows and all(0 <= r["churn_probability"] <= 1 for r in rows)
