"""The backtest inside a segmentation run: it runs, picks a model, and the run uses it."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import numpy as np
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
    assert bt["cutoff"] == "2024-04-01"  # 3 months (91 days) before the day after the as-of date
    assert run.summary["clv"]["model"] == bt["winner"]
    rows = list(CustomerSegment.objects.filter(run=run))
    probs = np.array([r.churn_probability for r in rows], dtype=float)
    assert np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()
    once = [r for r in rows if r.frequency == 1]
    # one-time buyers get a real probability (P(alive) would be 1 for all of them)
    assert once and all(0 < r.churn_probability < 1 for r in once)
    assert all(r.churn_risk == (r.churn_probability > 0.5) for r in rows)


def test_a_configured_model_is_used(settings):
    settings.SEGMENTATION = {"FORECAST_MODEL": "last_period", "BACKTEST_ENABLED": False}
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
    assert float(row.predicted_value_12m) == pytest.approx(spent, abs=0.01)


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
    settings.SEGMENTATION = {"CHURN_PROBABILITY_ABOVE": 1.5}
    assert [e.id for e in check_segmentation_settings()] == ["segmentation.E006"]
    settings.SEGMENTATION = {}
    assert check_segmentation_settings() == []
