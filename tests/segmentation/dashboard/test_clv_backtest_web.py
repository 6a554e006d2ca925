"""The overview page: backtest table, "which segment would a customer be in?", heat map notes; staff only."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from django.urls import reverse
from oscar.test.factories import UserFactory

from segmentation import services
from segmentation.charts import text_colour
from segmentation.ml.rfm import quintile_scores
from segmentation.models import CustomerSegment
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


def test_what_if_form_matches_the_runs_own_scores(client, run):
    client.force_login(UserFactory(is_staff=True))
    member = CustomerSegment.objects.filter(run=run).order_by("pk")[3]
    # a customer identical to an existing one gets that customer's segment and cluster
    r = client.get(
        reverse(OVERVIEW),
        {"wi_r": member.recency_days, "wi_f": member.frequency, "wi_m": str(member.monetary)},
    )
    result = r.context["what_if"]["result"]
    rows = CustomerSegment.objects.filter(run=run)
    for dim, field in (("r", "recency_days"), ("f", "frequency"), ("m", "monetary")):
        values = np.array([float(getattr(m, field)) for m in rows] + [float(getattr(member, field))])
        want = quintile_scores(values, higher_is_better=dim != "r")[-1]
        assert result[f"{dim}_score"] == want
    assert result["cluster"] == member.cluster
    assert result["segment"] in (run.segment_counts or {}) or result["segment"] == "Unclassified"
    assert "what-if-result" in r.content.decode()
    bad = client.get(reverse(OVERVIEW), {"wi_r": "-1", "wi_f": "x", "wi_m": "1"})
    assert bad.context["what_if"]["error"]


def test_what_if_by_hand(run):
    # the worst possible customer: most days since an order, one order, nothing spent
    worst = services.what_if(run, 10_000, 1, Decimal("-1000"))
    assert (worst["r_score"], worst["m_score"]) == (1, 1)
    best = services.what_if(run, 0, 1000, Decimal("1000000"))
    assert (best["r_score"], best["f_score"], best["m_score"]) == (5, 5, 5)
    assert best["segment"] == "Champions"


def test_heat_map_text_is_readable_and_empty_columns_are_explained(run):
    assert text_colour(90, 100) == "white" and text_colour(10, 100) == "black"
    heat = np.array(run.summary["heatmap_rf"])
    empty_f = [f + 1 for f in range(5) if heat[:, f].sum() == 0]
    notes = [n for n in run.summary["heatmap_notes"] if n.startswith("No customer has F")]
    assert len(notes) == len(empty_f)


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
