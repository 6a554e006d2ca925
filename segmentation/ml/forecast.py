"""Forecasts of each customer's spend and churn over a horizon, as interchangeable candidates.

Time is in **days** everywhere in this module (integer day numbers, names end
in ``_days``); the BTYD models inside are fitted in weeks and converted here,
so no caller ever picks a unit.

The input is a daily log (see :func:`daily_log`): one row per customer and
day, with the net amount of that day (purchases minus credit notes) and
whether the day had a purchase. A candidate is fitted on the log strictly
before ``cutoff_day`` and predicts the ``horizon_days`` from ``cutoff_day`` on:

* ``bgnbd``: BG/NBD + Gamma-Gamma, exactly as the segmentation run used them
  (repeat purchase days, mean spend per purchase day); churn probability =
  P(no purchase in the horizon), which, unlike 1 - P(alive), is below 1 for
  one-time buyers too.
* ``last_period``: each customer spends what they spent in the last
  ``horizon_days`` (scaled up when the history is shorter); churn score = days
  since the last purchase.
* ``gbm_two_part``: scikit-learn gradient boosting trained on time-shifted
  windows of the log itself: for earlier cutoffs, features from the history
  before them and the spend that followed. P(purchase) (classifier) x expected
  spend of a buyer (gamma-loss regressor). Churn probability = 1 - P(purchase).
* ``gbm_poisson``: the same features, one regressor with Poisson loss on spend;
  churn probability from the same classifier as ``gbm_two_part``.
* ``last_period`` has no churn probability of its own: a run that uses it keeps
  BG/NBD's P(no purchase).

When the history is shorter than twice the horizon, the training windows are
shorter than the horizon (``window_days``, at most half the history); the
prediction is then carried to the full horizon with each customer's BG/NBD
ratio E[purchases in horizon] / E[purchases in window], and the purchase
probability with a constant hazard. Both are stated in :attr:`notes_`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from segmentation.ml.clv import DAYS_PER_MONTH, BetaGeoModel, CLVFitError, GammaGammaModel, InsufficientDataError

__all__ = [
    "CANDIDATES",
    "MAX_AUTO_HORIZON_MONTHS",
    "BGNBDForecaster",
    "Forecast",
    "GBMForecaster",
    "LastPeriodForecaster",
    "customer_features",
    "daily_log",
    "history_horizon_months",
    "holdout_actuals",
    "make_forecaster",
]

DAYS_PER_WEEK = 7.0
#: the longest horizon :func:`history_horizon_months` picks (two years of orders reach it)
MAX_AUTO_HORIZON_MONTHS = 12
FEATURE_WINDOWS_DAYS = (30, 90, 180, 365)


# --------------------------------------------------------------------------- data


def history_horizon_months(history_days: float, longest: int = MAX_AUTO_HORIZON_MONTHS) -> int:
    """The horizon a history can test on itself: half of it in whole months, from 1 to ``longest``
    (two years give 12 months, thirteen months give 6). The backtest then fits on the first half
    at least and scores the last ``horizon``, the same length as the forecast shown."""
    return int(min(longest, max(1, round(history_days / DAYS_PER_MONTH) // 2)))


def daily_log(
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer",
    date_col: str = "date",
    amount_col: str = "amount",
) -> pd.DataFrame:
    """One row per customer and calendar day: ``customer, day, amount, purchase``.

    ``day`` is an integer day number (days since 1970-01-01); ``amount`` is the
    day's net total (negative transactions are credit notes and are netted);
    ``purchase`` is True when the day had a transaction with a non-negative amount.
    """
    missing = [c for c in (customer_col, date_col, amount_col) if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack column(s) {missing}")
    dates = pd.to_datetime(transactions[date_col])
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    day = (dates.dt.normalize() - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)
    amount = transactions[amount_col].astype(float)
    frame = pd.DataFrame(
        {"customer": transactions[customer_col].to_numpy(), "day": day.astype(np.int64), "amount": amount}
    )
    frame["purchase"] = frame["amount"] >= 0
    out = frame.groupby(["customer", "day"], sort=True, as_index=False).agg(
        amount=("amount", "sum"), purchase=("purchase", "any")
    )
    return out


def holdout_actuals(log: pd.DataFrame, customers: pd.Index, start_day: int, end_day: int) -> pd.DataFrame:
    """Per customer in ``customers``: net spend (clipped at 0) and purchase days in [start_day, end_day)."""
    part = log[(log["day"] >= start_day) & (log["day"] < end_day)]
    g = part.groupby("customer")
    spend = g["amount"].sum().clip(lower=0).reindex(customers, fill_value=0.0)
    days = g["purchase"].sum().reindex(customers, fill_value=0).astype(float)
    return pd.DataFrame({"spend": spend.astype(float), "purchase_days": days}, index=customers)


def _btyd_inputs(feat: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in weeks and mean spend per purchase day, as the segmentation run computes them."""
    x = (feat["n_days"].to_numpy(dtype=float) - 1).clip(min=0)
    t_x = np.where(x > 0, feat["span_days"].to_numpy(dtype=float), 0.0) / DAYS_PER_WEEK
    big_t = np.maximum(feat["tenure_days"].to_numpy(dtype=float) / DAYS_PER_WEEK, t_x)
    mean_value = np.clip(feat["spend_total"].to_numpy(dtype=float) / feat["n_days"].clip(lower=1).to_numpy(), 0, None)
    return x, t_x, big_t, mean_value


@dataclass
class _BTYD:
    """BG/NBD (+ Gamma-Gamma when it fits) on a feature frame; weeks inside, days outside."""

    penalizer: float = 0.001
    max_fit_rows: int | None = 50_000
    random_state: int = 0

    def fit(self, feat: pd.DataFrame) -> _BTYD:
        x, t_x, big_t, m = _btyd_inputs(feat)
        self.bg_ = BetaGeoModel(
            days_per_unit=DAYS_PER_WEEK,
            penalizer=self.penalizer,
            max_fit_rows=self.max_fit_rows,
            random_state=self.random_state,
        ).fit(x, t_x, big_t)
        self.gg_: GammaGammaModel | None = None
        try:
            gg = GammaGammaModel(
                penalizer=self.penalizer, max_fit_rows=self.max_fit_rows, random_state=self.random_state
            ).fit(x, m)
            gg.expected_average_spend(x[:1], m[:1])  # raises when q <= 1
            self.gg_ = gg
        except (InsufficientDataError, CLVFitError, ValueError):
            self.gg_ = None
        return self

    def purchases(self, feat: pd.DataFrame, days: float) -> np.ndarray:
        x, t_x, big_t, _m = _btyd_inputs(feat)
        return self.bg_.expected_purchases(days / DAYS_PER_WEEK, x, t_x, big_t)

    def p_alive(self, feat: pd.DataFrame) -> np.ndarray:
        x, t_x, big_t, _m = _btyd_inputs(feat)
        return self.bg_.probability_alive(x, t_x, big_t)

    def p_no_purchase(self, feat: pd.DataFrame, days: float) -> np.ndarray:
        x, t_x, big_t, _m = _btyd_inputs(feat)
        return self.bg_.probability_no_purchase(days / DAYS_PER_WEEK, x, t_x, big_t)

    def spend_per_purchase(self, feat: pd.DataFrame) -> np.ndarray:
        x, _t, _T, m = _btyd_inputs(feat)
        return self.gg_.expected_average_spend(x, m) if self.gg_ is not None else m


def customer_features(
    log: pd.DataFrame,
    cutoff_day: int,
    horizon_days: int,
    *,
    start_day: int | None = None,
) -> pd.DataFrame:
    """Features of every customer with a purchase before ``cutoff_day``, from the log before it.

    RFM (recency, purchase days, spend), spend and purchase days in the last
    30/90/180/365 days, inter-purchase gap statistics (mean, spread, last gap,
    recency in typical gaps), spend in the same ``horizon_days`` one year
    earlier (season; NaN when the log does not reach back), and the tenure.
    ``start_day`` is the first day of the log (default: its first row).
    """
    hist = log[log["day"] < cutoff_day]
    buys = hist[hist["purchase"]]
    if buys.empty:
        return pd.DataFrame()
    start = int(log["day"].min()) if start_day is None else int(start_day)
    g = buys.groupby("customer", sort=True)
    first, last, n_days = g["day"].min(), g["day"].max(), g.size()
    customers = first.index
    net = hist.groupby("customer")["amount"].sum().reindex(customers, fill_value=0.0)
    feat = pd.DataFrame(index=customers)
    feat["n_days"] = n_days.astype(float)
    feat["recency_days"] = (cutoff_day - 1 - last).astype(float)
    feat["tenure_days"] = (cutoff_day - first).astype(float)
    feat["span_days"] = (last - first).astype(float)
    feat["spend_total"] = net.astype(float)
    feat["spend_mean"] = feat["spend_total"] / feat["n_days"]
    feat["spend_max_day"] = g["amount"].max().astype(float)
    feat["spend_last_day"] = g["amount"].last().astype(float)
    for w in FEATURE_WINDOWS_DAYS:
        recent = hist[hist["day"] >= cutoff_day - w]
        rg = recent.groupby("customer")
        feat[f"spend_{w}d"] = rg["amount"].sum().reindex(customers, fill_value=0.0).astype(float)
        feat[f"days_{w}d"] = rg["purchase"].sum().reindex(customers, fill_value=0).astype(float)
        if cutoff_day - w < start:  # the window reaches before the log: the figure is not comparable
            feat[f"spend_{w}d"] = np.where(feat["tenure_days"] <= w, feat[f"spend_{w}d"], np.nan)
    # inter-purchase gaps (between purchase days)
    gaps = buys["day"].diff().where(buys["customer"].eq(buys["customer"].shift()))
    gg = gaps.groupby(buys["customer"])
    feat["gap_mean"] = gg.mean().reindex(customers).astype(float)
    feat["gap_std"] = gg.std().reindex(customers).astype(float)
    feat["gap_last"] = gg.last().reindex(customers).astype(float)
    feat["overdue_gaps"] = feat["recency_days"] / feat["gap_mean"].clip(lower=1)
    feat["trend_90d"] = feat["spend_90d"] - (feat["spend_180d"] - feat["spend_90d"])
    # season: the same window one year earlier
    s0, s1 = cutoff_day - 365, cutoff_day - 365 + horizon_days
    if s0 >= start:
        season = log[(log["day"] >= s0) & (log["day"] < s1)].groupby("customer")["amount"].sum()
        feat["spend_same_window_last_year"] = season.reindex(customers, fill_value=0.0).astype(float)
    else:
        feat["spend_same_window_last_year"] = np.nan
    return feat


# --------------------------------------------------------------------------- candidates


@dataclass
class Forecast:
    """Per-customer forecast over ``horizon_days`` (index = customer)."""

    value: pd.Series  # expected spend over the horizon, money
    churn_score: pd.Series  # higher = more likely to buy nothing in the horizon
    churn_probability: pd.Series | None  # P(no purchase in the horizon), when the candidate has one
    horizon_days: int
    notes: list[str] = field(default_factory=list)


class _Forecaster:
    name: ClassVar[str] = ""
    label: ClassVar[str] = ""

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit_predict(self, log: pd.DataFrame, cutoff_day: int, horizon_days: int) -> Forecast:  # pragma: no cover
        raise NotImplementedError


class BGNBDForecaster(_Forecaster):
    name = "bgnbd"
    label = "BG/NBD + Gamma-Gamma"

    def __init__(self, random_state: int = 0, penalizer: float = 0.001, max_fit_rows: int | None = 50_000) -> None:
        super().__init__(random_state)
        self.penalizer, self.max_fit_rows = penalizer, max_fit_rows

    def fit_predict(self, log: pd.DataFrame, cutoff_day: int, horizon_days: int) -> Forecast:
        feat = customer_features(log, cutoff_day, horizon_days)
        btyd = _BTYD(self.penalizer, self.max_fit_rows, self.random_state).fit(feat)
        value = btyd.purchases(feat, horizon_days) * btyd.spend_per_purchase(feat)
        p_no = pd.Series(btyd.p_no_purchase(feat, horizon_days), index=feat.index)
        notes = [] if btyd.gg_ is not None else ["Gamma-Gamma not fitted: own mean spend used"]
        return Forecast(
            value=pd.Series(value, index=feat.index),
            churn_score=p_no,
            churn_probability=p_no,
            horizon_days=horizon_days,
            notes=notes,
        )


class LastPeriodForecaster(_Forecaster):
    name = "last_period"
    label = "last period's spend"

    def fit_predict(self, log: pd.DataFrame, cutoff_day: int, horizon_days: int) -> Forecast:
        feat = customer_features(log, cutoff_day, horizon_days)
        start = int(log["day"].min())
        window = min(horizon_days, cutoff_day - start)
        recent = log[(log["day"] >= cutoff_day - window) & (log["day"] < cutoff_day)]
        spend = recent.groupby("customer")["amount"].sum().reindex(feat.index, fill_value=0.0).clip(lower=0)
        notes = []
        if window < horizon_days:
            notes.append(f"history of {window} days scaled to the {horizon_days}-day horizon")
        return Forecast(
            value=spend * (horizon_days / max(window, 1)),
            churn_score=feat["recency_days"].astype(float),
            churn_probability=None,
            horizon_days=horizon_days,
            notes=notes,
        )


class GBMForecaster(_Forecaster):
    """Gradient boosting on time-shifted windows of the log (see the module docstring).

    ``loss="two_part"``: P(purchase) x E[spend | purchase] (gamma loss);
    ``loss="poisson"``: one regressor on spend with Poisson loss (and the same
    classifier for the churn probability). Training windows use at most
    ``max_train_customers`` customers (a deterministic sample) and
    ``max_train_rows`` rows; predictions are for every customer. ``n_threads``
    limits OpenMP threads while fitting (``None``: scikit-learn's default).
    """

    name = "gbm_two_part"
    label = "gradient boosting, P(buy) x spend"
    MIN_TRAIN_CUSTOMERS = 50
    MIN_BUYERS = 20

    def __init__(
        self,
        random_state: int = 0,
        loss: str = "two_part",
        max_windows: int = 4,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_train_rows: int = 100_000,
        max_train_customers: int = 50_000,
        n_threads: int | None = 1,
        feature_cache: dict[tuple[int, int, int], pd.DataFrame] | None = None,
    ) -> None:
        super().__init__(random_state)
        if loss not in ("two_part", "poisson"):
            raise ValueError("loss must be 'two_part' or 'poisson'")
        self.loss = loss
        self.max_windows = max_windows
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_train_rows = max_train_rows
        self.max_train_customers = max_train_customers
        self.n_threads = n_threads
        # features of one log at (cutoff, window, start): candidates fitted on the same log share them
        self.feature_cache = feature_cache if feature_cache is not None else {}

    def window_plan(self, start_day: int, cutoff_day: int, horizon_days: int) -> tuple[int, list[int]]:
        """``(window_days, cutoffs)`` of the training windows, latest first.

        The window is the horizon, or half the history when that is shorter; the
        windows end at ``cutoff_day`` and step back by a third of the window, as
        long as at least half a window of history lies before each.
        """
        history = cutoff_day - start_day
        window = int(min(horizon_days, history // 2))
        if window < 7:
            raise InsufficientDataError(f"{history} days of history are too few to learn from")
        step = max(7, window // 3)
        cutoffs = []
        c = cutoff_day - window
        while len(cutoffs) < self.max_windows and c - start_day >= max(window // 2, 7):
            cutoffs.append(c)
            c -= step
        if not cutoffs:
            raise InsufficientDataError("no training window fits in the history")
        return window, cutoffs

    def _models(self) -> tuple[Any, Any]:
        common = {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": 15,
            "min_samples_leaf": 40,
            "l2_regularization": 1.0,
            "random_state": self.random_state,
            "early_stopping": False,
        }
        if self.loss == "poisson":
            return HistGradientBoostingClassifier(**common), HistGradientBoostingRegressor(loss="poisson", **common)
        return HistGradientBoostingClassifier(**common), HistGradientBoostingRegressor(loss="gamma", **common)

    def _features(self, log: pd.DataFrame, cutoff: int, window: int, start: int) -> pd.DataFrame:
        key = (int(cutoff), int(window), int(start))
        if key not in self.feature_cache:
            feat = customer_features(log, cutoff, window, start_day=start)
            self.feature_cache[key] = self._with_btyd(feat, window, self.random_state) if not feat.empty else feat
        return self.feature_cache[key]

    @staticmethod
    def _with_btyd(feat: pd.DataFrame, window_days: int, random_state: int) -> pd.DataFrame:
        out = feat.copy()
        try:
            btyd = _BTYD(random_state=random_state).fit(feat)
            out["btyd_p_alive"] = btyd.p_alive(feat)
            out["btyd_purchases"] = btyd.purchases(feat, window_days)
            out["btyd_value"] = out["btyd_purchases"] * btyd.spend_per_purchase(feat)
        except (InsufficientDataError, CLVFitError, ValueError):
            out["btyd_p_alive"] = np.nan
            out["btyd_purchases"] = np.nan
            out["btyd_value"] = np.nan
        return out

    def fit_predict(self, log: pd.DataFrame, cutoff_day: int, horizon_days: int) -> Forecast:
        start = int(log["day"].min())
        window, cutoffs = self.window_plan(start, cutoff_day, horizon_days)
        # learn from a deterministic sample of customers in big shops; predict for everyone
        train_log = log
        customers = pd.unique(log["customer"])
        if len(customers) > self.max_train_customers:
            rng = np.random.default_rng(self.random_state)
            keep = rng.choice(len(customers), self.max_train_customers, replace=False)
            train_log = log[log["customer"].isin(customers[keep])]
        frames, labels_spend, labels_buy = [], [], []
        for c in cutoffs:
            feat = self._features(train_log, c, window, start)
            if feat.empty:
                continue
            act = holdout_actuals(train_log, feat.index, c, c + window)
            frames.append(feat)
            labels_spend.append(act["spend"].to_numpy())
            labels_buy.append(act["purchase_days"].to_numpy() > 0)
        if not frames:
            raise InsufficientDataError("no customers in the training windows")
        X = pd.concat(frames, ignore_index=True)
        y_spend = np.concatenate(labels_spend)
        y_buy = np.concatenate(labels_buy)
        if len(X) > self.max_train_rows:
            keep = np.sort(np.random.default_rng(self.random_state).choice(len(X), self.max_train_rows, replace=False))
            X, y_spend, y_buy = X.iloc[keep], y_spend[keep], y_buy[keep]
        if len(X) < self.MIN_TRAIN_CUSTOMERS or y_buy.sum() < self.MIN_BUYERS or (~y_buy).sum() < self.MIN_BUYERS:
            raise InsufficientDataError(
                f"too few training rows ({len(X)}, {int(y_buy.sum())} with a purchase) for gradient boosting"
            )
        # a column without a single value (e.g. last year's season in a young shop) carries nothing
        self.feature_names_ = [c for c in X.columns if X[c].notna().any()]
        X = X[self.feature_names_]
        self.window_days_, self.cutoffs_ = window, cutoffs
        clf, reg = self._models()
        feat_now = self._features(log, cutoff_day, window, start)
        X_now = feat_now[self.feature_names_]
        # one OpenMP thread by default: a Celery worker shares its machine, and gradient boosting's
        # threads spin-wait, which costs 10-30x on a busy host (measured on 2 cores)
        with warnings.catch_warnings(), threadpool_limits(limits=self.n_threads, user_api="openmp"):
            warnings.simplefilter("ignore", UserWarning)
            if self.loss == "two_part":
                clf.fit(X, y_buy)
                pos = y_buy & (y_spend > 0)
                reg.fit(X[pos], y_spend[pos])
                p_buy = clf.predict_proba(X_now)[:, list(clf.classes_).index(True)]
                value_w = p_buy * reg.predict(X_now)
            else:  # the value from the Poisson regressor; the churn probability from the same features
                reg.fit(X, y_spend)
                value_w = reg.predict(X_now)
                clf.fit(X, y_buy)
                p_buy = clf.predict_proba(X_now)[:, list(clf.classes_).index(True)]
        notes = [f"trained on {len(cutoffs)} windows of {window} days ({len(X)} rows)"]
        value, p_no = np.asarray(value_w, dtype=float), None
        if p_buy is not None:
            p_no = 1.0 - np.clip(p_buy, 0.0, 1.0)
        if window < horizon_days:
            scale = np.full(len(feat_now), horizon_days / window)
            try:
                btyd = _BTYD(random_state=self.random_state).fit(feat_now)
                num, den = btyd.purchases(feat_now, horizon_days), btyd.purchases(feat_now, window)
                ok = np.isfinite(num) & np.isfinite(den) & (den > 0)
                scale = np.where(ok, num / np.where(ok, den, 1.0), scale)
                notes.append(f"carried from {window} to {horizon_days} days with the BG/NBD ratio")
            except (InsufficientDataError, CLVFitError, ValueError):
                notes.append(f"carried from {window} to {horizon_days} days in proportion")
            value = value * scale
            if p_no is not None:
                p_no = p_no ** (horizon_days / window)  # constant hazard
        churn_p = pd.Series(p_no, index=feat_now.index) if p_no is not None else None
        churn_score = churn_p if churn_p is not None else pd.Series(-value, index=feat_now.index)
        return Forecast(
            value=pd.Series(np.clip(value, 0, None), index=feat_now.index),
            churn_score=churn_score,
            churn_probability=churn_p,
            horizon_days=horizon_days,
            notes=notes,
        )


class GBMPoissonForecaster(GBMForecaster):
    name = "gbm_poisson"
    label = "gradient boosting, Poisson loss on spend"

    def __init__(self, random_state: int = 0, **kwargs: Any) -> None:
        super().__init__(random_state, loss="poisson", **kwargs)


CANDIDATES: dict[str, type[_Forecaster]] = {
    cls.name: cls for cls in (BGNBDForecaster, LastPeriodForecaster, GBMForecaster, GBMPoissonForecaster)
}


def make_forecaster(
    name: str, random_state: int = 0, feature_cache: dict[tuple[int, int, int], pd.DataFrame] | None = None
) -> _Forecaster:
    """A candidate by name; ``feature_cache`` (a dict) lets the gradient boosting ones fitted on
    the same log compute their window features once."""
    if name not in CANDIDATES:
        raise ValueError(f"unknown forecast candidate {name!r}; choose from {sorted(CANDIDATES)}")
    cls = CANDIDATES[name]
    if issubclass(cls, GBMForecaster):
        return cls(random_state=random_state, feature_cache=feature_cache)
    return cls(random_state=random_state)
