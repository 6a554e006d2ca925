"""Backtest metrics, forecast candidates and the BG/NBD time unit (no database).

Run with ``pytest tests/segmentation/ml/test_clv_backtest.py -q -p no:django``. Every metric
is checked against a value worked out by hand in the comment beside it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from segmentation.ml.backtest import (
    backtest,
    calibration_factor,
    churn_auc,
    decile_calibration,
    evaluate_forecast,
    rank_candidates,
    top_capture,
    total_ratio,
)
from segmentation.ml.clv import (
    BetaGeoModel,
    GammaGammaModel,
    InsufficientDataError,
    customer_lifetime_value,
    summarise_transactions,
)
from segmentation.ml.forecast import (
    CANDIDATES,
    GBMForecaster,
    LastPeriodForecaster,
    customer_features,
    daily_log,
    history_horizon_months,
    holdout_actuals,
)

PUBLISHED_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
DAY0 = int((pd.Timestamp("2024-01-01") - pd.Timestamp("1970-01-01")).days)


# =========================================================================== metrics


def test_total_ratio_mae_rmse_spearman_by_hand() -> None:
    assert total_ratio([1, 2, 3], [2, 2, 2]) == pytest.approx(1.0)  # 6 / 6
    assert total_ratio([1, 1], [1, 3]) == pytest.approx(0.5)  # 2 / 4
    r = evaluate_forecast([0.0, 2.0], [1.0, 4.0])
    assert r["mae"] == pytest.approx(1.5)  # (1 + 2) / 2
    assert r["rmse"] == pytest.approx(math.sqrt(2.5))  # sqrt((1 + 4) / 2)
    # ranks 1 2 3 4 against 1 3 2 4: sum d^2 = 2, rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert evaluate_forecast([1, 2, 3, 4], [1, 3, 2, 4])["spearman"] == pytest.approx(0.8)


def test_top_capture_by_hand() -> None:
    predicted = np.arange(10, 0, -1, dtype=float)  # customer 0 is predicted highest
    actual = np.array([5.0, 0, 0, 0, 0, 0, 0, 0, 0, 15.0])
    assert top_capture(predicted, actual, 0.1) == pytest.approx(5 / 20)  # top 1 customer spent 5 of 20
    assert top_capture(predicted, actual, 0.2) == pytest.approx(5 / 20)
    assert top_capture(actual, actual, 0.1) == pytest.approx(15 / 20)  # the perfect ranking
    assert top_capture(predicted, actual, 1.0) == pytest.approx(1.0)
    # ceil(0.15 * 10) = 2 customers
    assert top_capture(actual, actual, 0.15) == pytest.approx(20 / 20)
    with pytest.raises(ValueError):
        top_capture(predicted, actual, 0.0)


def test_decile_calibration_by_hand() -> None:
    predicted = np.arange(1, 21, dtype=float)
    actual = 2 * predicted
    deciles = decile_calibration(predicted, actual)
    assert [d["customers"] for d in deciles] == [2] * 10
    assert deciles[0]["mean_predicted"] == pytest.approx(1.5)  # customers 1 and 2
    assert deciles[0]["mean_actual"] == pytest.approx(3.0)
    assert all(d["ratio"] == pytest.approx(0.5) for d in deciles)
    # ties never empty a group: 25 equal predictions still give ten groups of 2 or 3
    tied = decile_calibration(np.ones(25), np.ones(25))
    assert sorted(d["customers"] for d in tied) == [2] * 5 + [3] * 5


def test_churn_auc_by_hand() -> None:
    # churned (no spend) = customers 0 and 1
    assert churn_auc([0.9, 0.8, 0.1, 0.2], [0, 0, 5, 3]) == pytest.approx(1.0)
    # pairs (churned, stayed): (.9,.8) yes, (.9,.2) yes, (.1,.8) no, (.1,.2) no -> 2 / 4
    assert churn_auc([0.9, 0.1, 0.8, 0.2], [0, 0, 5, 3]) == pytest.approx(0.5)
    assert math.isnan(churn_auc([0.1, 0.2], [1, 2]))  # one class only


def test_rank_candidates_mean_rank() -> None:
    results = {
        "a": {"mae": 10.0, "spearman": 0.5, "top10_capture": 0.5, "total_ratio": 1.0},
        "b": {"mae": 12.0, "spearman": 0.6, "top10_capture": 0.6, "total_ratio": 1.3},
        "c": {"mae": 20.0, "spearman": 0.1, "top10_capture": 0.2, "total_ratio": 0.5},
    }
    # a: ranks 1, 2, 2, 1 (mean 1.5); b: 2, 1, 1, 2 (1.5); c: 3, 3, 3, 3 -> a before b on MAE
    assert rank_candidates(results) == ["a", "b", "c"]
    results["a"]["spearman"] = float("nan")  # a missing figure ranks last on that metric
    assert rank_candidates(results)[0] == "b"


# =========================================================================== BG/NBD units and churn


def _bg(days_per_unit: float = 7.0, alpha_scale: float = 1.0) -> BetaGeoModel:
    model = BetaGeoModel(days_per_unit=days_per_unit)
    model.params_ = dict(PUBLISHED_BG, alpha=PUBLISHED_BG["alpha"] * alpha_scale)
    return model


def test_probability_no_purchase_by_hand() -> None:
    bg = _bg()
    r, alpha = PUBLISHED_BG["r"], PUBLISHED_BG["alpha"]
    # a one-time buyer is alive for sure; P(no purchase in 39 weeks) = ((alpha+T)/(alpha+T+39))^r
    p = bg.probability_no_purchase(39.0, [0.0], [0.0], [10.0])
    assert p[0] == pytest.approx(((alpha + 10) / (alpha + 49)) ** r)
    assert 0 < p[0] < 1  # a real churn probability, unlike 1 - P(alive) = 0
    x, t_x, big_t = np.array([3.0]), np.array([5.0]), np.array([30.0])
    alive = bg.probability_alive(x, t_x, big_t)[0]
    want = 1 - alive + alive * ((alpha + 30) / (alpha + 30 + 13)) ** (r + 3)
    assert bg.probability_no_purchase(13.0, x, t_x, big_t)[0] == pytest.approx(want)
    assert bg.probability_no_purchase(0.0, x, t_x, big_t)[0] == pytest.approx(1.0)


def test_clv_reads_the_models_time_unit() -> None:
    gg = GammaGammaModel()
    gg.params_ = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    x = np.array([0.0, 2.0, 6.0])
    weeks = (x, np.array([0.0, 30.0, 37.0]), np.array([38.0, 38.0, 38.0]))
    spend = np.array([0.0, 40.0, 20.0])
    in_weeks = customer_lifetime_value(_bg(7.0), gg, *weeks, spend, months=12)
    # the same model in days: purchase rate per day ~ Gamma(r, 7 alpha), times in days
    days = (x, weeks[1] * 7, weeks[2] * 7)
    in_days = customer_lifetime_value(_bg(1.0, alpha_scale=7.0), gg, *days, spend, months=12)
    assert in_days == pytest.approx(in_weeks, rel=1e-9)
    with pytest.raises(ValueError, match="disagrees"):
        customer_lifetime_value(_bg(1.0, alpha_scale=7.0), gg, *days, spend, days_per_unit=7.0)
    with pytest.raises(ValueError, match="positive"):
        BetaGeoModel(days_per_unit=0)


def test_summary_carries_its_unit() -> None:
    log = pd.DataFrame({"customer": [1, 1, 2], "date": ["2024-01-01", "2024-01-08", "2024-01-03"], "amount": 1.0})
    s = summarise_transactions(log, calibration_end="2024-01-10", days_per_unit=1.0)
    assert BetaGeoModel.for_summary(s).days_per_unit == 1.0
    with pytest.raises(ValueError, match="time unit"):
        BetaGeoModel.for_summary(pd.DataFrame())


# =========================================================================== features and candidates


def _tiny_log() -> pd.DataFrame:
    tx = pd.DataFrame(
        {
            "customer": ["a", "a", "a", "a", "b", "b", "c"],
            "date": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-01-11", "2024-01-31", "2024-01-05", "2024-01-06", "2024-02-20"]
            ),
            "amount": [10.0, 5.0, 20.0, 30.0, 50.0, -20.0, 9.0],
        }
    )
    return daily_log(tx)


def test_daily_log_nets_credit_notes() -> None:
    log = _tiny_log()
    a = log[log["customer"] == "a"]
    assert a["amount"].tolist() == [15.0, 20.0, 30.0]  # two rows on Jan 1 summed
    b = log[log["customer"] == "b"]
    assert b["purchase"].tolist() == [True, False]  # a day with only a credit note is no purchase
    assert log["day"].iloc[0] == DAY0


def test_customer_features_by_hand() -> None:
    log = _tiny_log()
    cutoff = DAY0 + 40  # 2024-02-10: c has not bought yet
    f = customer_features(log, cutoff, 30)
    assert f.index.tolist() == ["a", "b"]
    a, b = f.loc["a"], f.loc["b"]
    assert a["n_days"] == 3 and a["recency_days"] == 9  # last purchase Jan 31, cutoff Feb 10
    assert a["tenure_days"] == 40 and a["span_days"] == 30
    assert a["spend_total"] == 65.0 and a["spend_mean"] == pytest.approx(65 / 3)
    assert a["gap_mean"] == 15.0 and a["gap_last"] == 20.0  # gaps 10 and 20 days
    assert a["gap_std"] == pytest.approx(np.std([10, 20], ddof=1))
    assert a["overdue_gaps"] == pytest.approx(9 / 15)
    assert a["days_30d"] == 2 and a["spend_30d"] == 50.0  # Jan 11 .. Feb 9: Jan 11 and Jan 31
    assert b["spend_total"] == 30.0 and b["n_days"] == 1  # 50 - 20 net
    assert np.isnan(b["gap_mean"])
    assert np.isnan(a["spend_same_window_last_year"])  # the log does not reach back a year
    act = holdout_actuals(log, f.index, cutoff, cutoff + 30)
    assert act["spend"].tolist() == [0.0, 0.0]  # c bought, but c is not a customer at the cutoff


def test_last_period_candidate_by_hand() -> None:
    log = _tiny_log()
    fc = LastPeriodForecaster().fit_predict(log, DAY0 + 40, 20)
    assert fc.value["a"] == pytest.approx(30.0)  # Jan 21 .. Feb 9
    assert fc.value["b"] == pytest.approx(0.0)
    assert fc.churn_score["a"] == 9 and fc.churn_score["b"] == 35
    scaled = LastPeriodForecaster().fit_predict(log, DAY0 + 40, 80)  # 40 days of history for 80
    assert scaled.value["a"] == pytest.approx(65.0 * 2)


def test_window_plan() -> None:
    gbm = GBMForecaster()
    assert gbm.window_plan(0, 400, 91) == (91, [309, 279, 249, 219])  # step 30, four windows
    window, cutoffs = gbm.window_plan(0, 182, 183)  # half the history when it is short
    assert window == 91 and cutoffs == [91, 61]


def _synthetic_log(n: int = 600, days: int = 360, seed: int = 1) -> pd.DataFrame:
    """Customers with a gamma-distributed purchase rate, lognormal spend, and dropout."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n):
        first = int(rng.integers(0, days // 3))
        rate = rng.gamma(0.8, 1 / 25)  # purchases per day
        life = int(rng.exponential(250))
        mean = rng.lognormal(3.5, 0.6)
        day = first
        rows.append((c, day, rng.gamma(4, mean / 4)))
        while True:
            day += 1 + int(rng.exponential(1 / max(rate, 1e-3)))
            if day >= min(days, first + life):
                break
            rows.append((c, day, rng.gamma(4, mean / 4)))
    tx = pd.DataFrame(rows, columns=["customer", "d", "amount"])
    tx["date"] = pd.Timestamp("2023-01-01") + pd.to_timedelta(tx["d"], unit="D")
    return daily_log(tx)


def test_backtest_side_by_side_is_deterministic() -> None:
    log = _synthetic_log()
    start = int(log["day"].min())
    a = backtest(log, start + 270, 90, list(CANDIDATES))
    b = backtest(log, start + 270, 90, list(CANDIDATES))
    assert set(a["candidates"]) == set(CANDIDATES) and not a["failed"]
    assert a["winner"] == a["ranking"][0] == b["winner"]
    for name in CANDIDATES:
        assert a["candidates"][name]["mae"] == b["candidates"][name]["mae"]
    gbm = a["candidates"]["gbm_two_part"]
    # the supervised model learns this shop: better churn ranking than "never came back" guesses
    assert gbm["churn_auc"] > 0.6
    assert 0.5 < gbm["total_ratio"] < 2.0
    assert a["references"]["top10_capture_perfect"] >= max(m["top10_capture"] for m in a["candidates"].values())
    start_day = start + 270
    spend = log[(log["day"] >= start_day) & (log["day"] < start_day + 90)].groupby("customer")["amount"].sum()
    assert a["references"]["mae_all_zero"] == pytest.approx(spend.clip(lower=0).sum() / a["customers"])


def test_a_holdout_without_a_single_purchase_is_no_backtest() -> None:
    """A shop quiet for the whole holdout (an old import segmented today): nothing to score models on."""
    log = _synthetic_log()
    quiet_from = int(log["day"].max()) + 1
    with pytest.raises(InsufficientDataError, match="no customer bought in the 90 days after the cutoff"):
        backtest(log, quiet_from + 400, 90, list(CANDIDATES))


def test_horizon_and_calibration_rules() -> None:
    assert [history_horizon_months(m * 365.25 / 12) for m in (30, 24, 13, 7, 1, 0)] == [12, 12, 6, 3, 1, 1]
    assert calibration_factor(0.5) == 2.0 and calibration_factor(100.0) == pytest.approx(1 / 5)
    assert calibration_factor(None) is None and calibration_factor(float("nan")) is None
    assert calibration_factor(0.0) is None


def test_gbm_refuses_too_little_history() -> None:
    log = _synthetic_log(n=50, days=12)
    with pytest.raises(ValueError):
        GBMForecaster().fit_predict(log, int(log["day"].max()) + 1, 90)
