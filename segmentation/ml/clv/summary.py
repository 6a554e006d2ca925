"""The BTYD summary (frequency, recency, T, monetary) of a transaction log."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentation.ml.clv.errors import InsufficientDataError


def summarise_transactions(
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer",
    date_col: str = "date",
    amount_col: str | None = "amount",
    calibration_end: str | pd.Timestamp | None = None,
    holdout_end: str | pd.Timestamp | None = None,
    days_per_unit: float = 7.0,
) -> pd.DataFrame:
    """Per-customer BTYD summary (frequency, recency, T, monetary) from a transaction log.

    * Transactions are bucketed by calendar day; one day with purchases is one
      purchase (amounts summed) - the convention of the published CDNOW fits.
    * ``frequency`` = purchase days after the first one, up to and including
      ``calibration_end`` (default: the last date in the log).
    * ``recency`` = (last purchase day - first purchase day) / ``days_per_unit``.
    * ``T`` = (``calibration_end`` - first purchase day) / ``days_per_unit``.
    * ``monetary`` = mean amount of the repeat purchase days (0 when frequency is 0).
    * ``first_amount`` = amount on the first day (not used by the models).

    Customers whose first purchase is after ``calibration_end`` are left out.
    With ``holdout_end``, ``frequency_holdout`` / ``monetary_holdout`` count
    purchase days in (calibration_end, holdout_end] and ``duration_holdout`` is
    its length in units.
    """
    cols = [customer_col, date_col] + ([amount_col] if amount_col else [])
    missing = [c for c in cols if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack column(s) {missing}")
    df = transactions[cols].copy()
    df[date_col] = pd.to_datetime(df[date_col]).dt.normalize()
    if amount_col is None:
        amount_col = "_amount"
        df[amount_col] = 0.0
    daily = df.groupby([customer_col, date_col], sort=True, as_index=False)[amount_col].sum()
    cal_end = pd.Timestamp(calibration_end).normalize() if calibration_end is not None else daily[date_col].max()
    cal = daily[daily[date_col] <= cal_end]
    if cal.empty:
        raise InsufficientDataError("no transactions on or before the end of calibration")
    g = cal.groupby(customer_col, sort=True)
    first, last = g[date_col].min(), g[date_col].max()
    n_days = g.size()
    total = g[amount_col].sum()
    first_amount = g[amount_col].first()
    unit = pd.Timedelta(days=days_per_unit)
    out = pd.DataFrame(
        {
            "frequency": (n_days - 1).astype(float),
            "recency": (last - first) / unit,
            "T": (cal_end - first) / unit,
            "monetary": np.where(n_days > 1, (total - first_amount) / (n_days - 1).clip(lower=1), 0.0),
            "first_amount": first_amount.astype(float),
        }
    )
    out.index.name = customer_col
    out.attrs["days_per_unit"] = float(days_per_unit)
    if holdout_end is not None:
        hold_end = pd.Timestamp(holdout_end).normalize()
        hold = daily[(daily[date_col] > cal_end) & (daily[date_col] <= hold_end)]
        hold = hold[hold[customer_col].isin(out.index)]
        hg = hold.groupby(customer_col)
        out["frequency_holdout"] = hg.size().reindex(out.index, fill_value=0).astype(float)
        out["monetary_holdout"] = (hg[amount_col].sum() / hg.size()).reindex(out.index, fill_value=0.0)
        out["duration_holdout"] = (hold_end - cal_end) / unit
    return out
