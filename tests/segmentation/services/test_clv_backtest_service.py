"""The backtest inside a segmentation run: it runs, picks a model, and the run uses it."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from oscar.core.loading import get_model
from oscar.test.factories import UserFactory

from segmentation import services
from segmentation.models import CustomerSegment, RunStatus
from segmentation.testing import make_order

pytestmark = pytest.mark.django_db

AS_OF = date(2024, 6, 30)


def build_shop(n: int = 80, seed: int = 3) -> list:
    """``n`` customers buying at their own rate from 2023-01 on; a third buy once and never again."""
    rnd = random.Random(seed)
    users = []
    start = date(2023, 1, 1)
    for i in range(n):
        u = UserFactory(email=f"c{i}@example.com")
        users.append(u)
        day = start + timedelta(days=rnd.randint(0, 300))
        once = i % 3 == 0
        gap = rnd.choice([20, 45, 90])
        while day <= AS_OF:
            make_order(user=u, total=rnd.randint(10, 120), placed=f"{day.isoformat()}T12:00:00")
            if once:
                break
            day += timedelta(days=max(1, int(rnd.expovariate(1 / gap))))
    return users


def test_order_day_log_matches_the_aggregation():
    u = UserFactory()
    make_order(user=u, total="100.00", placed="2024-06-01T09:00:00")
    make_order(user=u, total="20.00", placed="2024-06-01T18:00:00")  # same day: one row, summed
    make_order(user=u, total="-30.00", placed="2024-06-10")  # credit note: amount, not a purchase
    make_order(user=u, total="5.00", placed="2024-07-05")  # after the as-of date
    make_order(guest_email="Ann@Example.com", total="12.50", placed="2024-06-30")
    log = services.order_day_log(AS_OF)
    mine = log[log["customer"] == f"u{u.pk}"]
    assert mine["amount"].tolist() == [120.0, -30.0]
    assert mine["purchase"].tolist() == [True, False]
    assert (log["customer"] == "gann@example.com").sum() == 1
    df, _info = services.aggregate_customers(AS_OF)
    assert set(services.customer_keys(df)) == set(log["customer"])


def test_run_backtests_chooses_and_uses_one_model():
    build_shop()
    run = services.run_segmentation(AS_OF)
    assert run.status == RunStatus.SUCCEEDED
    json.dumps(run.summary, allow_nan=False)
    bt = run.summary["backtest"]
    assert bt["status"] == "done", bt
    assert set(bt["candidates"]) == {"bgnbd", "last_period", "gbm_two_part", "gbm_poisson"} - set(bt["failed"])
    assert {"bgnbd", "last_period"} <= set(bt["candidates"])
    for metrics in bt["candidates"].values():
        assert {"total_ratio", "mae", "rmse", "spearman", "top10_capture", "top20_capture", "churn_auc"} <= set(metrics)
        assert len(metrics["deciles"]) == 10
    # the horizon is half the history in whole months: the first order to the day after the as-of date
    Order = get_model("order", "Order")
    first = min(o.date_placed.date() for o in Order.objects.all())
    months = min(12, round((AS_OF + timedelta(days=1) - first).days / (365.25 / 12)) // 2)
    assert months == 9 and run.summary["horizon_months"] == months
    assert bt["horizon_days"] == round(months * 365.25 / 12)
    assert bt["cutoff"] == (AS_OF + timedelta(days=1) - timedelta(days=bt["horizon_days"])).isoformat()
    assert run.summary["clv"]["model"] == bt["winner"]
    # the backtest's total ratio is reported; the values are scaled by it only with FORECAST_CALIBRATE
    ratio = bt["candidates"][bt["winner"]]["total_ratio"]
    assert run.summary["calibration"] == {
        "factor": pytest.approx(1 / ratio, rel=1e-3),
        "backtest_total_ratio": pytest.approx(ratio, rel=1e-3),
        "applied": False,
    }
    verdict = run.summary["versus_naive"]
    if bt["winner"] != "last_period":
        mine, naive = bt["candidates"][bt["winner"]], bt["candidates"]["last_period"]
        assert verdict["beats"] == (mine["mae"] < naive["mae"] and mine["spearman"] > naive["spearman"])
    rows = list(CustomerSegment.objects.filter(run=run))
    # one model for every churn figure: the chance of an order is 1 - the chance of none
    assert all(r.p_alive == pytest.approx(1 - r.churn_probability) for r in rows)
    probs = np.array([r.churn_probability for r in rows], dtype=float)
    assert np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()
    once = [r for r in rows if r.frequency == 1]
    # one-time buyers get a real probability (P(alive) would be 1 for all of them)
    assert once and all(0 < r.churn_probability < 1 for r in once)
    assert all(r.churn_risk == (r.churn_probability > 0.5) for r in rows)


def test_a_configured_model_is_used(settings):
    settings.SEGMENTATION = {"FORECAST_MODEL": "last_period", "BACKTEST_ENABLED": False, "FORECAST_HORIZON_MONTHS": 12}
    users = build_shop(n=30)
    run = services.run_segmentation(AS_OF)
    assert run.summary["backtest"]["status"] == "skipped"
    assert run.summary["clv"]["model"] == "last_period"
    # last period = the net spend of the 12 months (365 or 366 days) before the day after the as-of date
    u = users[1]
    row = CustomerSegment.objects.get(run=run, user=u)
    Order = get_model("order", "Order")
    horizon = round(12 * 365.25 / 12)
    since = AS_OF + timedelta(days=1) - timedelta(days=horizon)
    spent = sum(float(o.total_incl_tax) for o in Order.objects.filter(user=u, date_placed__date__gte=since))
    assert float(row.predicted_value) == pytest.approx(spent, abs=0.01)


def test_small_shops_skip_the_backtest_with_a_reason():
    build_shop(n=12)
    run = services.run_segmentation(AS_OF)
    bt = run.summary["backtest"]
    assert bt["status"] == "skipped" and "BACKTEST_MIN_CUSTOMERS" in bt["message"]
    assert run.summary["clv"].get("model") in (None, "bgnbd")


def test_checks_reject_an_unknown_forecast_model(settings):
    from segmentation.checks import check_segmentation_settings

    settings.SEGMENTATION = {"FORECAST_MODEL": "crystal_ball"}
    assert [e.id for e in check_segmentation_settings()] == ["segmentation.E007"]
    settings.SEGMENTATION = {"FORECAST_CANDIDATES": ["bgnbd", "nope"]}
    assert [e.id for e in check_segmentation_settings()] == ["segmentation.E007"]
    for horizon in (0, "12", True, "soon"):
        settings.SEGMENTATION = {"FORECAST_HORIZON_MONTHS": horizon}
        assert [e.id for e in check_segmentation_settings()] == ["segmentation.E007"], horizon
    settings.SEGMENTATION = {"CHURN_PROBABILITY_ABOVE": 1.5}
    assert [e.id for e in check_segmentation_settings()] == ["segmentation.E006"]
    settings.SEGMENTATION = {}
    assert check_segmentation_settings() == []


@pytest.mark.parametrize(("history_months", "horizon"), [(30, 12), (24, 12), (13, 6), (7, 3), (1, 1)])
def test_the_horizon_is_half_the_order_history_and_at_most_a_year(history_months, horizon):
    from segmentation.services.pipeline import Segmenter

    end_day = 20_000
    first = end_day - round(history_months * 365.25 / 12)
    log = pd.DataFrame({"customer": ["u1", "u2"], "day": [first, end_day - 1], "amount": [5.0, 9.0]})
    assert Segmenter({"forecast_horizon_months": "auto"}).resolve_horizon(log, end_day) == horizon
    assert Segmenter({"forecast_horizon_months": 3}).resolve_horizon(log, end_day) == 3


def test_forecast_calibrate_scales_the_values_by_the_backtest(settings):
    build_shop()
    plain = {r.user_id: r.predicted_value for r in CustomerSegment.objects.filter(run=services.run_segmentation(AS_OF))}
    settings.SEGMENTATION = {"FORECAST_CALIBRATE": True}
    run = services.run_segmentation(AS_OF)
    factor = run.summary["calibration"]["factor"]
    assert run.summary["calibration"]["applied"] and factor != 1
    for row in CustomerSegment.objects.filter(run=run):
        assert float(row.predicted_value) == pytest.approx(float(plain[row.user_id]) * factor, rel=2e-4, abs=0.011)
