"""Metrics that compare predicted customer value and churn scores with what customers then did.

Every function takes plain arrays, one entry per customer, and never looks at
dates: the caller decides the calibration and holdout periods. Statistics come
from scikit-learn and SciPy (:func:`sklearn.metrics.roc_auc_score`,
:func:`scipy.stats.spearmanr`) rather than being written here.

* ``total_ratio``: sum of predictions / sum of actual values (1 = right in total).
* ``mae`` / ``rmse``: per customer, in money.
* ``spearman``: rank correlation of predicted and actual value.
* ``top_capture(share)``: the share of all actual value that the ``share`` of
  customers with the highest predictions went on to spend (the perfect ranking's
  figure is :func:`top_capture` of the actual values themselves).
* ``decile_calibration``: customers in ten equal-count groups by predicted value
  (1 = lowest), mean predicted and mean actual value per group and their ratio.
* ``churn_auc``: ROC AUC of a churn score for "bought nothing in the holdout".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, roc_auc_score

from segmentation.ml.clv import CLVFitError, InsufficientDataError
from segmentation.ml.forecast import customer_features, holdout_actuals, make_forecaster

__all__ = [
    "backtest",
    "churn_auc",
    "decile_calibration",
    "evaluate_forecast",
    "rank_candidates",
    "top_capture",
    "total_ratio",
]


def _pair(predicted: ArrayLike, actual: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, a = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    if p.ndim != 1 or p.shape != a.shape:
        raise ValueError(f"predicted and actual must be 1-D and of equal length, got {p.shape} and {a.shape}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(a))):
        raise ValueError("predicted and actual must be finite")
    return p, a


def total_ratio(predicted: ArrayLike, actual: ArrayLike) -> float:
    """Sum of predictions over sum of actual values (NaN when nothing was spent)."""
    p, a = _pair(predicted, actual)
    total = float(a.sum())
    return float(p.sum()) / total if total != 0 else float("nan")


def top_capture(predicted: ArrayLike, actual: ArrayLike, share: float) -> float:
    """Share of the total actual value spent by the top ``share`` of customers by prediction.

    The top group has ``ceil(share * n)`` customers; among equal predictions the
    order is the input order (a stable sort), so the figure is deterministic.
    """
    if not 0 < share <= 1:
        raise ValueError("share must be in (0, 1]")
    p, a = _pair(predicted, actual)
    total = float(a.sum())
    if len(a) == 0 or total == 0:
        return float("nan")
    k = int(np.ceil(share * len(a)))
    top = np.argsort(-p, kind="stable")[:k]
    return float(a[top].sum()) / total


def decile_calibration(predicted: ArrayLike, actual: ArrayLike, groups: int = 10) -> list[dict[str, float]]:
    """Mean predicted and actual value in ``groups`` equal-count groups by prediction (1 = lowest).

    Customers are ordered by prediction (stable) and cut into groups whose
    sizes differ by at most one, so ties never empty a group.
    """
    p, a = _pair(predicted, actual)
    n = len(p)
    if n == 0:
        return []
    order = np.argsort(p, kind="stable")
    group = np.empty(n, dtype=np.int64)
    group[order] = (np.arange(n) * groups) // n
    frame = pd.DataFrame({"g": group + 1, "p": p, "a": a})
    out = []
    for g, part in frame.groupby("g", sort=True):
        mp, ma = float(part["p"].mean()), float(part["a"].mean())
        out.append(
            {
                "decile": int(g),
                "customers": len(part),
                "mean_predicted": mp,
                "mean_actual": ma,
                "ratio": mp / ma if ma > 0 else float("nan"),
            }
        )
    return out


def churn_auc(churn_score: ArrayLike, actual: ArrayLike) -> float:
    """ROC AUC of ``churn_score`` (higher = more likely gone) for "no purchase in the holdout".

    ``actual`` is each customer's spend (or purchase count) in the holdout; a
    customer churned when it is <= 0. NaN when every customer is in one class.
    """
    s, a = _pair(churn_score, actual)
    churned = a <= 0
    if churned.all() or not churned.any():
        return float("nan")
    return float(roc_auc_score(churned, s))


def evaluate_forecast(
    predicted: ArrayLike,
    actual: ArrayLike,
    churn_score: ArrayLike | None = None,
    *,
    bought: ArrayLike | None = None,
) -> dict[str, Any]:
    """Every metric of the module for one candidate (see the module docstring).

    ``bought`` marks customers who made a purchase in the holdout (default:
    ``actual > 0``); it defines churn for the AUC, so a customer whose returns
    cancel their purchases still counts as having come back.
    """
    p, a = _pair(predicted, actual)
    rho = spearmanr(p, a).statistic if len(p) > 1 and np.ptp(p) > 0 and np.ptp(a) > 0 else float("nan")
    result: dict[str, Any] = {
        "customers": len(p),
        "total_predicted": float(p.sum()),
        "total_actual": float(a.sum()),
        "total_ratio": total_ratio(p, a),
        "mae": float(mean_absolute_error(a, p)) if len(p) else float("nan"),
        "rmse": float(np.sqrt(mean_squared_error(a, p))) if len(p) else float("nan"),
        "spearman": float(rho),
        "top10_capture": top_capture(p, a, 0.1),
        "top20_capture": top_capture(p, a, 0.2),
        "deciles": decile_calibration(p, a),
    }
    ratios = [d["ratio"] for d in result["deciles"] if np.isfinite(d["ratio"])]
    result["worst_decile_ratio"] = max(ratios, key=lambda r: abs(np.log(r)) if r > 0 else np.inf) if ratios else None
    if churn_score is not None:
        came_back = np.asarray(bought, dtype=float) if bought is not None else a
        result["churn_auc"] = churn_auc(churn_score, came_back)
    return result


RANKED_METRICS = ("mae", "spearman", "top10_capture", "total_error")
#: the most a backtest may scale a model's predictions by (or divide them by)
MAX_CALIBRATION = 5.0


def calibration_factor(total_ratio: float | None, limit: float = MAX_CALIBRATION) -> float | None:
    """What to multiply a model's predictions by so that its backtest total would have been right
    (``1 / total_ratio``, within ``[1 / limit, limit]``); ``None`` without a usable ratio."""
    if total_ratio is None or not np.isfinite(total_ratio) or total_ratio <= 0:
        return None
    return float(np.clip(1.0 / total_ratio, 1.0 / limit, limit))


def rank_candidates(results: dict[str, dict[str, Any]]) -> list[str]:
    """Candidates best first: mean rank over MAE, Spearman, top-10 % capture and |log total ratio|.

    Ties are broken by MAE, then by name. A candidate with a missing (NaN)
    metric ranks last on that metric.
    """
    names = sorted(results)
    if not names:
        return []

    def metric(name: str, key: str) -> float:
        r = results[name]
        if key == "total_error":
            ratio = r.get("total_ratio")
            v = abs(np.log(ratio)) if ratio is not None and np.isfinite(ratio) and ratio > 0 else np.inf
        else:
            v = r.get(key)
            v = float(v) if v is not None and np.isfinite(v) else np.nan
            if key in ("spearman", "top10_capture"):
                v = -v  # higher is better
        return np.inf if v is None or np.isnan(v) else float(v)

    table = pd.DataFrame({key: [metric(n, key) for n in names] for key in RANKED_METRICS}, index=names)
    mean_rank = table.rank(method="average").mean(axis=1)
    return sorted(names, key=lambda n: (float(mean_rank[n]), table.loc[n, "mae"], n))


def backtest(
    log: pd.DataFrame,
    cutoff_day: int,
    horizon_days: int,
    candidates: list[str] | tuple[str, ...],
    *,
    random_state: int = 0,
) -> dict[str, Any]:
    """Fit every candidate on the log before ``cutoff_day``, score it on the next ``horizon_days``.

    Customers are those with a purchase before the cutoff; their actual value is
    the net spend in ``[cutoff_day, cutoff_day + horizon_days)`` (clipped at 0).
    Returns ``{"candidates": {name: metrics}, "ranking": [...], "winner": name,
    "references": {...}}``; a candidate that cannot be fitted is listed in
    ``failed`` with the reason. ``references`` holds the churn AUC of recency
    alone and of the number of repeat purchase days, and the top-share capture
    of a perfect ranking.
    """
    feat = customer_features(log, cutoff_day, horizon_days)
    if feat.empty:
        raise InsufficientDataError("no customer bought before the backtest cutoff")
    act = holdout_actuals(log, feat.index, cutoff_day, cutoff_day + horizon_days)
    actual = act["spend"].to_numpy()
    bought = act["purchase_days"].to_numpy()
    if not (bought > 0).any():  # a shop quiet for the whole holdout: every model "predicts" nothing right
        raise InsufficientDataError(f"no customer bought in the {horizon_days} days after the cutoff")
    results: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    shared: dict = {}  # window features, computed once for every gradient boosting candidate
    for name in candidates:
        try:
            fc = make_forecaster(name, random_state, shared).fit_predict(log, cutoff_day, horizon_days)
        except (InsufficientDataError, CLVFitError, ValueError) as exc:
            failed[name] = str(exc)
            continue
        value = fc.value.reindex(feat.index).fillna(0.0).to_numpy()
        score = fc.churn_score.reindex(feat.index).fillna(0.0).to_numpy()
        res = evaluate_forecast(value, actual, score, bought=bought)
        res["notes"] = list(fc.notes)
        res["label"] = type(make_forecaster(name)).label
        results[name] = res
    ranking = rank_candidates(results)
    repeat = feat["n_days"].to_numpy() - 1
    return {
        "cutoff_day": int(cutoff_day),
        "horizon_days": int(horizon_days),
        "customers": len(feat),
        "returning_share": float((bought > 0).mean()),
        "candidates": results,
        "failed": failed,
        "ranking": ranking,
        "winner": ranking[0] if ranking else None,
        "references": {
            "churn_auc_recency": churn_auc(feat["recency_days"].to_numpy(), bought),
            "churn_auc_fewer_repeat_purchases": churn_auc(-repeat, bought),
            "top10_capture_perfect": top_capture(actual, actual, 0.1),
            "top20_capture_perfect": top_capture(actual, actual, 0.2),
            # predicting 0 for everyone: MAE = mean actual value. With most customers not coming
            # back, a forecast right in total cannot get far below it on MAE
            "mae_all_zero": float(np.mean(np.abs(actual))) if len(actual) else float("nan"),
        },
    }
