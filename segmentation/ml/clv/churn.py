"""Churn helpers: a P(active) threshold, and how many typical gaps a customer is overdue."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from segmentation.ml.clv.fitting import _as_1d


def probability_active_below(p_alive: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """Boolean mask of customers whose P(active) is below ``threshold`` (likely churned)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must be within [0, 1]")
    return _as_1d("p_alive", p_alive) < threshold


def overdue_gaps(
    days_since_last: ArrayLike,
    n_orders: ArrayLike,
    days_first_to_last: ArrayLike,
    *,
    overdue_after: float = 2.0,
    fallback_gap_days: float | None = None,
    min_gap_days: float = 1.0,
) -> pd.DataFrame:
    """How many "typical gaps" each customer is overdue.

    A customer's typical gap is their mean inter-purchase gap
    ``days_first_to_last / (n_orders - 1)`` (at least ``min_gap_days``); for
    one-order customers it is the shop median of those gaps, or
    ``fallback_gap_days`` when no customer has two orders. Returns a DataFrame
    with ``typical_gap_days``, ``gap_source`` ("own", "shop median",
    "fallback" or "none"), ``overdue_gaps = days_since_last / typical_gap_days``
    and ``overdue`` (``overdue_gaps >= overdue_after``). With no gap at all
    (``gap_source == "none"``) ``overdue_gaps`` is NaN and ``overdue`` False.
    """
    since = _as_1d("days_since_last", days_since_last)
    n = _as_1d("n_orders", n_orders)
    span = _as_1d("days_first_to_last", days_first_to_last)
    if not (since.shape == n.shape == span.shape):
        raise ValueError("inputs must have the same length")
    repeat = n >= 2
    own = np.where(repeat, np.maximum(span / np.maximum(n - 1, 1), min_gap_days), np.nan)
    source = np.where(repeat, "own", "none").astype(object)
    gap = own.copy()
    if repeat.any():
        shop = float(np.median(own[repeat]))
        gap[~repeat] = shop
        source[~repeat] = "shop median"
    elif fallback_gap_days is not None:
        gap[:] = max(float(fallback_gap_days), min_gap_days)
        source[:] = "fallback"
    ratio = since / gap
    return pd.DataFrame(
        {
            "typical_gap_days": gap,
            "gap_source": source,
            "overdue_gaps": ratio,
            "overdue": np.nan_to_num(ratio, nan=-np.inf) >= overdue_after,
        }
    )
