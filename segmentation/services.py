"""Segmentation runs: aggregate orders in SQL, score, cluster, predict value, store history.

The batch logic lives here as plain functions and one class (:class:`Segmenter`);
the Celery task and the management command are thin wrappers around
:func:`run_segmentation`.

Orders -> customers
-------------------
One grouped query over ``order.Order`` (no Python loop over orders), grouped by
customer: the ``user`` for registered customers, the lower-cased ``guest_email``
for guest orders. Per customer it returns the first and last purchase, the number
of purchases (orders: distinct purchase days are not counted, see ``n_days``) and the
net spend:

* orders in ``EXCLUDED_STATUSES`` (default ``["Cancelled"]``) are ignored, and so are orders
  of persons whose personal data was erased (``recommender.services.personal_data``);
* a *purchase* is an order with a total >= 0; orders with a negative total (credit
  notes, e.g. imported cancellation invoices) are netted against spend only;
* orders in ``REFUNDED_STATUSES`` (default ``["Refunded"]``) count as purchases but
  add nothing to spend (paid, then refunded); partial refunds recorded on Oscar's
  ``payment.Source.amount_refunded`` are subtracted (``SUBTRACT_PAYMENT_REFUNDS``);
* orders in a currency other than ``OSCAR_DEFAULT_CURRENCY`` are converted with
  ``CURRENCY_RATES`` or, without a rate, left out and counted in
  ``run.parameters["excluded_orders"]``.
"""

from __future__ import annotations

import io
import logging
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone
from oscar.core.loading import get_model

from recommender.services.personal_data import without_erased_orders
from segmentation.conf import app_settings

logger = logging.getLogger(__name__)

STAGES = ("aggregate", "score", "cluster", "predict", "write", "publish")
CURRENT_RUN_CACHE_KEY = "segmentation:current-run"
MONEY = DecimalField(max_digits=14, decimal_places=2)
SCATTER_POINTS = 2000

ProgressCallback = Callable[[str], None]


class NoCustomersError(ValueError):
    """No customer has a counted order on or before the as-of date."""


# --------------------------------------------------------------------------- aggregation


def _rates() -> dict[str, Decimal]:
    default = settings.OSCAR_DEFAULT_CURRENCY
    rates = {default: Decimal(1)}
    for code, rate in app_settings.CURRENCY_RATES.items():
        if code != default:
            rates[str(code)] = Decimal(str(rate))
    return rates


def as_of_bounds(as_of: date) -> tuple[datetime, datetime | None]:
    """``(end, start)``: orders placed before the midnight after ``as_of`` (and after ``start``)."""
    end = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    days = app_settings.LOOKBACK_DAYS
    return end, (end - timedelta(days=days) if days else None)


def counted_orders(as_of: date, using: str = "default") -> QuerySet:
    """Orders that count for the as-of date, before the currency filter."""
    Order = get_model("order", "Order")
    end, start = as_of_bounds(as_of)
    qs = Order._default_manager.using(using).filter(date_placed__lt=end)
    if start is not None:
        qs = qs.filter(date_placed__gte=start)
    excluded = list(app_settings.EXCLUDED_STATUSES)
    if excluded:
        qs = qs.exclude(status__in=excluded)
    qs = without_erased_orders(qs, "pk", using)  # their customer's personal data was erased
    if not app_settings.INCLUDE_GUESTS:
        return qs.filter(user__isnull=False)
    return qs.filter(Q(user__isnull=False) | ~Q(guest_email=""))


def _net_spend(using: str) -> Any:
    """An order's net spend in the default currency (refunds, credit notes and rates applied)."""
    rates = _rates()
    total = F("total_incl_tax")
    Source = get_model("payment", "Source")
    if (
        app_settings.SUBTRACT_PAYMENT_REFUNDS
        and Source._default_manager.using(using).filter(amount_refunded__gt=0).exists()
    ):
        # a correlated subquery inside the one grouped query (only when some refund exists)
        refunded = (
            Source._default_manager.filter(order=OuterRef("pk"))
            .values("order")
            .annotate(s=Sum("amount_refunded"))
            .values("s")[:1]
        )
        paid = ExpressionWrapper(total - Coalesce(Subquery(refunded, output_field=MONEY), Value(Decimal(0))), MONEY)
    else:
        paid = total
    whens = [When(total_incl_tax__lt=0, then=total)]
    if app_settings.REFUNDED_STATUSES:
        whens.append(When(status__in=list(app_settings.REFUNDED_STATUSES), then=Value(Decimal(0))))
    net = Case(*whens, default=paid, output_field=MONEY)
    if len(rates) > 1:
        net = Case(
            *[
                When(currency=code, then=ExpressionWrapper(net * Value(rate), MONEY))
                for code, rate in rates.items()
                if rate != 1
            ],
            default=net,
            output_field=MONEY,
        )
    return net


def customer_rfm_queryset(as_of: date, using: str = "default") -> QuerySet:
    """The ONE grouped query: a row per customer with last/first purchase, counts and net spend.

    Columns: ``user_id``, ``guest`` (lower-cased guest email, ``""`` for registered
    customers), ``last_order``, ``first_order``, ``n_orders``, ``monetary``.
    """
    qs = counted_orders(as_of, using).filter(currency__in=list(_rates()))
    net = _net_spend(using)
    purchase = Q(total_incl_tax__gte=0)
    return (
        qs.annotate(guest=Case(When(user__isnull=True, then=Lower("guest_email")), default=Value("")))
        .values("user_id", "guest")
        .annotate(
            last_order=Max("date_placed", filter=purchase),
            first_order=Min("date_placed", filter=purchase),
            n_orders=Count("id", filter=purchase),
            monetary=Sum(net, output_field=MONEY),
        )
        .filter(n_orders__gt=0)
        .order_by()
    )


COLUMNS = ("user_id", "guest", "last_order", "first_order", "n_orders", "monetary")


def _fetch_postgresql(qs: QuerySet, using: str) -> pd.DataFrame:
    """COPY the grouped query's result out as CSV (epoch seconds, floats): fast for millions."""
    sql, params = qs.query.get_compiler(using).as_sql()
    conn = connections[using]
    with transaction.atomic(using=using), conn.cursor() as cursor:
        # room for a hash aggregate over millions of customers (this transaction only)
        cursor.execute("SET LOCAL work_mem = %s", [app_settings.PG_WORK_MEM])
        raw = cursor.cursor
        inner = raw.mogrify(sql, params)
        outer = (
            "COPY (SELECT s.user_id, s.guest, extract(epoch from s.last_order)::float8, "
            "extract(epoch from s.first_order)::float8, s.n_orders, s.monetary::float8 "
            f"FROM ({inner}) s) TO STDOUT WITH (FORMAT csv)"
        )
        buf = io.BytesIO()
        started = time.perf_counter()
        with raw.copy(outer) as copy:
            for chunk in copy:
                buf.write(chunk)
        if conn.queries_logged:  # psycopg's COPY bypasses Django's debug cursor; log it the same way
            conn.queries_log.append({"sql": outer, "time": f"{time.perf_counter() - started:.3f}"})
    buf.seek(0)
    if buf.getbuffer().nbytes == 0:
        return _empty_frame()
    return pd.read_csv(
        buf,
        header=None,
        names=list(COLUMNS),
        dtype={"user_id": "float64", "guest": "object"},
        keep_default_na=False,
        na_values={"user_id": [""]},
    )


def _fetch_generic(qs: QuerySet) -> pd.DataFrame:
    rows = list(qs.values_list(*COLUMNS))
    if not rows:
        return _empty_frame()
    df = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    for col in ("last_order", "first_order"):
        df[col] = (pd.to_datetime(df[col], utc=True) - epoch) / pd.Timedelta(seconds=1)
    df["user_id"] = df["user_id"].astype("float64")
    df["monetary"] = df["monetary"].astype("float64")
    return df


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object" if c == "guest" else "float64") for c in COLUMNS})


def aggregate_customers(as_of: date, using: str = "default") -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-customer raw figures as of ``as_of`` and facts about what was left out.

    Returns a frame with ``user_id`` (float, NaN for guests), ``guest``,
    ``recency_days``, ``frequency`` (orders), ``monetary`` (net spend in the
    default currency), ``n_days`` (the purchases the CLV models count: one per order, the same
    as ``frequency``), ``first_day``, ``last_day`` and ``T_days``
    (days from the first purchase to the as-of date, for the CLV model).
    """
    rates = _rates()
    excluded = counted_orders(as_of, using).exclude(currency__in=list(rates)).count()
    qs = customer_rfm_queryset(as_of, using)
    vendor = connections[using].vendor
    df = _fetch_postgresql(qs, using) if vendor == "postgresql" else _fetch_generic(qs)
    end, _start = as_of_bounds(as_of)
    end_day = int(end.timestamp() // 86400)
    last_day = np.floor(df["last_order"].to_numpy(dtype=float) / 86400).astype(np.int64)
    first_day = np.floor(df["first_order"].to_numpy(dtype=float) / 86400).astype(np.int64)
    out = pd.DataFrame(
        {
            "user_id": df["user_id"].to_numpy(dtype=float),
            "guest": df["guest"].fillna("").astype(str).to_numpy(),
            # days between the last purchase and the as-of date (0 = bought on the as-of date)
            "recency_days": (end_day - 1 - last_day).clip(min=0),
            "frequency": df["n_orders"].to_numpy(dtype=np.int64),
            # BG/NBD counts repeat *orders* (x = orders - 1): a COUNT(DISTINCT day) would force
            # a sort-based aggregate, several times slower on millions of orders
            "n_days": df["n_orders"].to_numpy(dtype=np.int64),
            "monetary": np.round(df["monetary"].to_numpy(dtype=float), 2),
            "first_day": first_day,
            "last_day": last_day,
            "T_days": (end_day - first_day).astype(float),
        }
    )
    info = {
        "excluded_orders_currency": int(excluded),
        "currencies": sorted(rates),
        "vendor": vendor,
    }
    return out, info


def order_day_log(as_of: date, using: str = "default") -> pd.DataFrame:
    """The orders behind :func:`aggregate_customers`, one row per customer and day (a grouped query).

    Columns as :func:`segmentation.ml.forecast.daily_log`: ``customer`` (the key of
    :func:`customer_keys`), ``day`` (days since 1970-01-01, UTC), ``amount`` (net
    spend that day) and ``purchase`` (the day had an order with a total >= 0).
    """
    from django.db.models.functions import TruncDate

    qs = (
        counted_orders(as_of, using)
        .filter(currency__in=list(_rates()))
        .annotate(
            guest=Case(When(user__isnull=True, then=Lower("guest_email")), default=Value("")),
            day=TruncDate("date_placed", tzinfo=UTC),
        )
        .values("user_id", "guest", "day")
        .annotate(
            amount=Sum(_net_spend(using), output_field=MONEY), purchases=Count("id", filter=Q(total_incl_tax__gte=0))
        )
        .order_by()
    )
    rows = list(qs.values_list("user_id", "guest", "day", "amount", "purchases"))
    if not rows:
        return pd.DataFrame({"customer": [], "day": [], "amount": [], "purchase": []})
    frame = pd.DataFrame.from_records(rows, columns=["user_id", "guest", "day", "amount", "purchases"])
    frame["user_id"] = frame["user_id"].astype("float64")
    days = (pd.to_datetime(frame["day"]) - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)
    out = pd.DataFrame(
        {
            "customer": customer_keys(frame),
            "day": days.astype(np.int64).to_numpy(),
            "amount": frame["amount"].astype(float).to_numpy(),
            "purchase": frame["purchases"].to_numpy() > 0,
        }
    )
    return out.sort_values(["customer", "day"], kind="stable").reset_index(drop=True)


def customer_keys(df: pd.DataFrame) -> np.ndarray:
    """One string per customer: ``u<user id>`` or ``g<guest email>`` (joins the log to the run's rows)."""
    uid = df["user_id"].to_numpy(dtype=float)
    guest = df["guest"].fillna("").astype(str).to_numpy()
    has_user = np.isfinite(uid)
    users = np.char.add("u", np.where(has_user, uid, 0).astype(np.int64).astype(str))
    return np.where(has_user, users, np.char.add("g", guest.astype(str))).astype(object)


# --------------------------------------------------------------------------- the run


@dataclass
class RunResult:
    frame: pd.DataFrame
    k: int | None = None
    silhouette: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def _finite_or_none(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def current_parameters() -> dict[str, Any]:
    """Everything that shapes a run's result, stored with the run (and used for idempotency)."""
    from segmentation.ml.rfm import DEFAULT_SEGMENT_RULES

    s = app_settings
    rules = s.SEGMENT_RULES if s.SEGMENT_RULES is not None else DEFAULT_SEGMENT_RULES
    return {
        "currency": settings.OSCAR_DEFAULT_CURRENCY,
        "currency_rates": {k: str(v) for k, v in s.CURRENCY_RATES.items()},
        "excluded_statuses": list(s.EXCLUDED_STATUSES),
        "refunded_statuses": list(s.REFUNDED_STATUSES),
        "subtract_payment_refunds": s.SUBTRACT_PAYMENT_REFUNDS,
        "lookback_days": s.LOOKBACK_DAYS,
        "include_guests": s.INCLUDE_GUESTS,
        "rules": [dict(r) for r in rules],
        "fallback_segment": s.FALLBACK_SEGMENT,
        "k_range": [s.K_MIN, s.K_MAX],
        "cluster_sample_size": s.CLUSTER_SAMPLE_SIZE,
        "random_state": s.RANDOM_STATE,
        "clv_enabled": s.CLV_ENABLED,
        "clv_months": s.CLV_MONTHS,
        "clv_horizon_days": s.CLV_HORIZON_DAYS,
        "clv_penalizer": s.CLV_PENALIZER,
        "clv_fit_sample_size": s.CLV_FIT_SAMPLE_SIZE,
        "clv_monthly_discount_rate": s.CLV_MONTHLY_DISCOUNT_RATE,
        "forecast_model": s.FORECAST_MODEL,
        "forecast_candidates": list(s.FORECAST_CANDIDATES),
        "backtest_enabled": s.BACKTEST_ENABLED,
        "backtest_months": s.BACKTEST_MONTHS,
        "backtest_min_customers": s.BACKTEST_MIN_CUSTOMERS,
        "backtest_sample_customers": s.BACKTEST_SAMPLE_CUSTOMERS,
        "churn_probability_above": s.CHURN_PROBABILITY_ABOVE,
        "churn_p_alive_below": s.CHURN_P_ALIVE_BELOW,
        "churn_overdue_gaps": s.CHURN_OVERDUE_GAPS,
    }


class Segmenter:
    """Scores, segments, clusters and values a frame from :func:`aggregate_customers`."""

    def __init__(self, parameters: dict[str, Any]) -> None:
        self.p = parameters

    def score(self, df: pd.DataFrame) -> pd.DataFrame:
        from segmentation.ml.rfm import score_rfm

        scored = score_rfm(
            df["recency_days"].to_numpy(dtype=float),
            df["frequency"].to_numpy(dtype=float),
            df["monetary"].to_numpy(dtype=float),
            rules=self.p["rules"],
            fallback_segment=self.p["fallback_segment"],
        )
        df["r_score"] = scored["r_score"].to_numpy()
        df["f_score"] = scored["f_score"].to_numpy()
        df["m_score"] = scored["m_score"].to_numpy()
        df["segment"] = scored["segment"].to_numpy()
        return df

    def cluster(self, df: pd.DataFrame, summary: dict[str, Any]) -> tuple[int | None, float | None]:
        from segmentation.ml.clustering import RFMClusterer

        k_min, k_max = self.p["k_range"]
        clusterer = RFMClusterer(
            k_range=(k_min, k_max),
            random_state=self.p["random_state"],
            fit_sample_size=self.p["cluster_sample_size"],
            silhouette_sample_size=min(5000, self.p["cluster_sample_size"]),
        ).fit(df["recency_days"], df["frequency"], df["monetary"])
        df["cluster"] = clusterer.labels_.astype(np.int64)
        sil = clusterer.silhouette_scores_.get(clusterer.n_clusters_)
        clusters = clusterer.cluster_summary_.to_dict(orient="records")
        summary["clusters"] = [{k: _json_value(v) for k, v in row.items()} for row in clusters]
        summary["silhouette_by_k"] = {str(k): _finite_or_none(v) for k, v in clusterer.silhouette_scores_.items()}
        summary["cluster_note"] = clusterer.degenerate_reason_ or ""
        # enough to place a new customer in a cluster (see what_if): scaling and centres
        summary["cluster_model"] = {
            "mean": [float(v) for v in clusterer.mean_],
            "scale": [float(v) for v in clusterer.scale_],
            "centers": np.asarray(clusterer.cluster_centers_, dtype=float).round(6).tolist(),
        }
        n = len(df)
        rng = np.random.default_rng(self.p["random_state"])
        idx = np.sort(rng.choice(n, SCATTER_POINTS, replace=False)) if n > SCATTER_POINTS else np.arange(n)
        coords = np.nan_to_num(clusterer.coords_[idx].astype(float))
        summary["scatter"] = {
            "x": [round(float(v), 4) for v in coords[:, 0]],
            "y": [round(float(v), 4) for v in coords[:, 1]],
            "cluster": [int(v) for v in clusterer.labels_[idx]],
            "centers": np.nan_to_num(clusterer.center_coords_.astype(float)).round(4).tolist(),
            "axis_labels": list(clusterer.axis_labels_),
        }
        return int(clusterer.n_clusters_), _finite_or_none(sil) if sil is not None else None

    def horizon_days(self) -> int:
        from segmentation.ml.clv import DAYS_PER_MONTH

        return round(self.p["clv_months"] * DAYS_PER_MONTH)

    def choose_forecast(self, log: pd.DataFrame | None, end_day: int, summary: dict[str, Any]) -> str:
        """The forecast model for this run: the winner of the backtest on the shop's own orders
        (``FORECAST_MODEL = "auto"``) or the configured one; the backtest goes to ``summary``."""
        from segmentation.ml.backtest import backtest
        from segmentation.ml.clv import DAYS_PER_MONTH, CLVFitError, InsufficientDataError

        configured = self.p.get("forecast_model", "auto")
        candidates = list(self.p.get("forecast_candidates") or [])
        bt: dict[str, Any] = {"status": "skipped", "message": ""}
        summary["backtest"] = bt
        if not self.p.get("backtest_enabled", True):
            bt["message"] = "switched off (SEGMENTATION['BACKTEST_ENABLED'] = False)"
        elif log is None or log.empty:
            bt["message"] = "no orders"
        else:
            horizon = round(self.p["backtest_months"] * DAYS_PER_MONTH)
            cutoff = end_day - horizon
            known = log.loc[(log["day"] < cutoff) & log["purchase"], "customer"].nunique()
            if known < self.p.get("backtest_min_customers", 50):
                bt["message"] = (
                    f"{known} customers bought before {_day_iso(cutoff)}, fewer than "
                    f"BACKTEST_MIN_CUSTOMERS = {self.p.get('backtest_min_customers', 50)}"
                )
            else:
                sample = self.p.get("backtest_sample_customers") or 0
                customers = pd.unique(log["customer"])
                if sample and len(customers) > sample:
                    keep = np.random.default_rng(self.p["random_state"]).choice(len(customers), sample, replace=False)
                    log = log[log["customer"].isin(customers[keep])]
                    bt["sampled_customers"] = sample
                try:
                    result = backtest(log, cutoff, horizon, candidates, random_state=self.p["random_state"])
                    bt.update(_json_safe(result))
                    bt["status"] = "done"
                    bt["cutoff"] = _day_iso(cutoff)
                    bt["end"] = _day_iso(end_day)
                except (InsufficientDataError, CLVFitError, ValueError) as exc:
                    bt["message"] = f"backtest failed: {exc}"
        if configured != "auto":
            summary["forecast_choice"] = f"set in SEGMENTATION['FORECAST_MODEL'] = {configured!r}"
            return configured
        if bt.get("winner"):
            summary["forecast_choice"] = "won the backtest on this shop's orders"
            return str(bt["winner"])
        summary["forecast_choice"] = "BG/NBD + Gamma-Gamma (no backtest to choose by)"
        return "bgnbd"

    def predict(
        self, df: pd.DataFrame, summary: dict[str, Any], log: pd.DataFrame | None = None, end_day: int | None = None
    ) -> None:
        """Predicted value and churn of every customer; null fields with a reason on failure.

        BG/NBD + Gamma-Gamma always give probability active and expected purchases.
        The predicted value and churn probability come from the forecast model
        :meth:`choose_forecast` picks (``log`` is :func:`order_day_log`); when that
        model cannot be fitted the BG/NBD figures are used and the run says so.
        ``end_day`` is the day after the as-of date (day number, UTC).
        """
        from segmentation.ml.clv import (
            BetaGeoModel,
            CLVFitError,
            GammaGammaModel,
            InsufficientDataError,
            customer_lifetime_value,
            overdue_gaps,
            probability_active_below,
        )

        n = len(df)
        df["p_alive"] = np.nan
        df["expected_purchases_90d"] = np.nan
        df["predicted_value_12m"] = np.nan
        df["churn_probability"] = np.nan
        week = 7.0
        x = (df["n_days"].to_numpy(dtype=float) - 1).clip(min=0)
        t_x = np.where(x > 0, (df["last_day"] - df["first_day"]).to_numpy(dtype=float), 0.0) / week
        big_t = np.maximum(df["T_days"].to_numpy(dtype=float) / week, t_x)
        # mean spend per purchase day: the Gamma-Gamma input (spend of repeat days only is not
        # separable in one grouped query; the average over all days is the usual stand-in)
        mean_value = df["monetary"].to_numpy(dtype=float) / df["n_days"].clip(lower=1).to_numpy(dtype=float)
        clv: dict[str, Any] = {"status": "skipped", "message": "", "params": {}}
        if not self.p["clv_enabled"]:
            clv["message"] = "predicted value is switched off (SEGMENTATION['CLV_ENABLED'] = False)"
        elif n == 0:
            clv["message"] = "no customers"
        else:
            sample = self.p.get("clv_fit_sample_size") or n
            fit = (
                np.sort(np.random.default_rng(self.p["random_state"]).choice(n, sample, replace=False))
                if n > sample
                else slice(None)
            )
            try:
                bg = BetaGeoModel(penalizer=self.p["clv_penalizer"], days_per_unit=week).fit(
                    x[fit], t_x[fit], big_t[fit]
                )
                p_alive = bg.probability_alive(x, t_x, big_t)
                expected = bg.expected_purchases(self.p["clv_horizon_days"] / week, x, t_x, big_t)
                gg = None
                gg_note = ""
                try:
                    gg = GammaGammaModel(penalizer=self.p["clv_penalizer"]).fit(x[fit], mean_value[fit])
                    gg.expected_average_spend(x[:1], mean_value[:1])  # raises if q <= 1
                except (InsufficientDataError, CLVFitError, ValueError) as exc:
                    gg, gg_note = None, f"Gamma-Gamma not fitted ({exc}); each customer's own mean spend is used"
                value = customer_lifetime_value(
                    bg,
                    gg,
                    x,
                    t_x,
                    big_t,
                    np.clip(mean_value, 0, None),
                    months=self.p["clv_months"],
                    days_per_unit=week,
                    monthly_discount_rate=self.p["clv_monthly_discount_rate"],
                )
                finite = np.isfinite(p_alive) & np.isfinite(expected) & np.isfinite(value)
                df["p_alive"] = np.where(finite, p_alive, np.nan)
                df["expected_purchases_90d"] = np.where(finite, expected, np.nan)
                df["predicted_value_12m"] = np.where(finite, np.round(value, 2), np.nan)
                clv["status"] = "fitted"
                clv["params"] = {"bgnbd": bg.params_, **({"gamma_gamma": gg.params_} if gg is not None else {})}
                clv["message"] = gg_note
                if not finite.all():
                    clv["message"] += f" {int((~finite).sum())} customers without a finite prediction were left empty."
                df["churn_probability"] = np.where(
                    finite, bg.probability_no_purchase(self.horizon_days() / week, x, t_x, big_t), np.nan
                )
                clv["model"] = "bgnbd"
            except (InsufficientDataError, CLVFitError, ValueError, FloatingPointError) as exc:
                clv["status"] = "not fitted"
                clv["message"] = f"predicted value not available: {exc}"
        summary["clv"] = clv
        if clv["status"] == "fitted" and log is not None and not log.empty:
            self._apply_forecast(df, log, int(end_day if end_day is not None else log["day"].max() + 1), summary, clv)

        # churn flags
        p_alive = df["p_alive"].to_numpy(dtype=float)
        has_p = np.isfinite(p_alive)
        low = np.zeros(n, dtype=bool)
        if has_p.any():
            low[has_p] = probability_active_below(p_alive[has_p], self.p["churn_p_alive_below"])
        span = (df["last_day"] - df["first_day"]).to_numpy(dtype=float)
        if n:
            gaps = overdue_gaps(
                df["recency_days"].to_numpy(dtype=float),
                df["n_days"].to_numpy(dtype=float),
                span,
                overdue_after=self.p["churn_overdue_gaps"],
            )
            df["overdue_gaps"] = np.round(gaps["overdue_gaps"].to_numpy(dtype=float), 3)
            df["churn_overdue"] = gaps["overdue"].to_numpy(dtype=bool)
        else:
            df["overdue_gaps"] = np.zeros(0)
            df["churn_overdue"] = np.zeros(0, dtype=bool)
        df.loc[~np.isfinite(df["overdue_gaps"]), "overdue_gaps"] = np.nan
        df["churn_p_alive"] = low
        # one model gives both the value and the churn probability, so the flag agrees with the
        # forecast; without a probability the older rule (low P(active) or overdue) stands in
        churn_p = df["churn_probability"].to_numpy(dtype=float)
        has_prob = np.isfinite(churn_p)
        old_rule = low | df["churn_overdue"].to_numpy(dtype=bool)
        df["churn_risk"] = np.where(has_prob, np.nan_to_num(churn_p) > self.p["churn_probability_above"], old_rule)

    def _apply_forecast(
        self, df: pd.DataFrame, log: pd.DataFrame, end_day: int, summary: dict[str, Any], clv: dict[str, Any]
    ) -> None:
        """Replace the BG/NBD value and churn probability with the chosen model's, when it is another."""
        from segmentation.ml.clv import CLVFitError, InsufficientDataError
        from segmentation.ml.forecast import make_forecaster

        chosen = self.choose_forecast(log, end_day, summary)
        clv["model"] = "bgnbd"
        if chosen == "bgnbd":
            return
        try:
            fc = make_forecaster(chosen, self.p["random_state"]).fit_predict(log, end_day, self.horizon_days())
        except (InsufficientDataError, CLVFitError, ValueError) as exc:
            clv["message"] = (
                clv.get("message", "") + f" {chosen} could not be fitted ({exc}); BG/NBD is used."
            ).strip()
            return
        keys = customer_keys(df)
        value = fc.value.reindex(keys).to_numpy(dtype=float)
        ok = np.isfinite(value)
        df["predicted_value_12m"] = np.where(ok, np.round(value, 2), df["predicted_value_12m"])
        if fc.churn_probability is not None:
            prob = fc.churn_probability.reindex(keys).to_numpy(dtype=float)
            df["churn_probability"] = np.where(np.isfinite(prob), prob, df["churn_probability"])
        clv["model"] = chosen
        clv["notes"] = list(fc.notes)


def _day_iso(day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=int(day))).isoformat()


def _json_safe(value: Any) -> Any:
    """Plain JSON: NaN and inf become None, NumPy scalars become Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return _finite_or_none(value)
    return value


def _json_value(v: Any) -> Any:
    if isinstance(v, np.integer | int):
        return int(v)
    if isinstance(v, np.floating | float):
        return _finite_or_none(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def summarise(df: pd.DataFrame, summary: dict[str, Any]) -> dict[str, int]:
    """Per-segment figures, the R-by-F heat map and the churn share (stored in ``run.summary``)."""
    n = len(df)
    total_revenue = float(df["monetary"].clip(lower=0).sum()) if n else 0.0
    segments = []
    if n:
        g = df.groupby("segment", sort=False)
        agg = g.agg(
            customers=("segment", "size"),
            revenue=("monetary", "sum"),
            mean_recency=("recency_days", "mean"),
            mean_frequency=("frequency", "mean"),
            mean_monetary=("monetary", "mean"),
            mean_r=("r_score", "mean"),
            mean_f=("f_score", "mean"),
            mean_m=("m_score", "mean"),
            mean_predicted_value=("predicted_value_12m", "mean"),
            mean_churn_probability=("churn_probability", "mean"),
            churn_risk=("churn_risk", "mean"),
        ).sort_values("customers", ascending=False)
        for name, row in agg.iterrows():
            rec = {k: _json_value(v) for k, v in row.items()}
            rec["segment"] = str(name)
            rec["customers"] = int(row["customers"])
            rec["share"] = float(row["customers"]) / n
            rec["revenue_share"] = (max(float(row["revenue"]), 0.0) / total_revenue) if total_revenue > 0 else None
            segments.append(rec)
    summary["segments"] = segments
    heat = np.zeros((5, 5), dtype=np.int64)  # rows R 1..5, columns F 1..5
    if n:
        np.add.at(heat, (df["r_score"].to_numpy(dtype=int) - 1, df["f_score"].to_numpy(dtype=int) - 1), 1)
    summary["heatmap_rf"] = heat.tolist()
    summary["heatmap_notes"] = _heatmap_notes(df) if n else []
    summary["forecast_disagreements"] = forecast_disagreements(segments)
    summary["churn_share"] = float(df["churn_risk"].mean()) if n else None
    summary["revenue"] = round(total_revenue, 2)
    summary["guests"] = int((df["guest"] != "").sum()) if n else 0
    return {s["segment"]: s["customers"] for s in segments}


def _heatmap_notes(df: pd.DataFrame) -> list[str]:
    from segmentation.ml.rfm import empty_score_reasons

    return empty_score_reasons(
        df["recency_days"].to_numpy(dtype=float), df["r_score"].to_numpy(), letter="R", unit="days since the last order"
    ) + empty_score_reasons(
        df["frequency"].to_numpy(dtype=float), df["f_score"].to_numpy(), letter="F", unit="number of orders"
    )


def forecast_disagreements(segments: list[dict[str, Any]], at_risk_share: float = 0.9) -> list[str]:
    """Segments nearly all at churn risk yet forecast to spend more than they ever did (should be none)."""
    out = []
    for s in segments:
        risk, value, spent = s.get("churn_risk"), s.get("mean_predicted_value"), s.get("mean_monetary")
        if risk is None or value is None or spent is None:
            continue
        if risk >= at_risk_share and value > max(spent, 0.0):
            out.append(
                f"{s['segment']}: {100 * risk:.0f} % at churn risk, but forecast to spend {value:,.2f} "
                f"against {spent:,.2f} so far"
            )
    return out


# --------------------------------------------------------------------------- writing


MEMBERSHIP_FIELDS = (
    "user_id",
    "guest_email",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "segment",
    "cluster",
    "p_alive",
    "expected_purchases_90d",
    "predicted_value_12m",
    "overdue_gaps",
    "churn_probability",
    "churn_p_alive",
    "churn_overdue",
    "churn_risk",
)


def _membership_frame(df: pd.DataFrame, run_id: int) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "run_id": run_id,
            "user_id": pd.array(np.where(np.isfinite(df["user_id"]), df["user_id"], np.nan)).astype("Int64"),
            "guest_email": df["guest"].to_numpy(),
            "recency_days": df["recency_days"].to_numpy(dtype=np.int64),
            "frequency": df["frequency"].to_numpy(dtype=np.int64),
            "monetary": df["monetary"].to_numpy(dtype=float),
            "r_score": df["r_score"].to_numpy(dtype=np.int64),
            "f_score": df["f_score"].to_numpy(dtype=np.int64),
            "m_score": df["m_score"].to_numpy(dtype=np.int64),
            "segment": df["segment"].to_numpy(),
            "cluster": df["cluster"].to_numpy(dtype=np.int64),
            "p_alive": df["p_alive"].to_numpy(dtype=float),
            "expected_purchases_90d": df["expected_purchases_90d"].to_numpy(dtype=float),
            "predicted_value_12m": df["predicted_value_12m"].to_numpy(dtype=float),
            "overdue_gaps": df["overdue_gaps"].to_numpy(dtype=float),
            "churn_probability": df["churn_probability"].to_numpy(dtype=float),
            "churn_p_alive": df["churn_p_alive"].to_numpy(dtype=bool),
            "churn_overdue": df["churn_overdue"].to_numpy(dtype=bool),
            "churn_risk": df["churn_risk"].to_numpy(dtype=bool),
        }
    )
    return out


def write_memberships(
    run: Any, df: pd.DataFrame, using: str = "default", progress: ProgressCallback | None = None
) -> int:
    """Store one membership row per customer: COPY on PostgreSQL, batched bulk_create elsewhere."""
    from segmentation.models import CustomerSegment

    rows = _membership_frame(df, run.pk)
    if not len(rows):
        return 0
    if connections[using].vendor == "postgresql":
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        table = connections[using].ops.quote_name(CustomerSegment._meta.db_table)
        cols = ["run_id", *MEMBERSHIP_FIELDS]
        step = 250_000
        options = pa_csv.WriteOptions(include_header=False)  # null -> empty field, "" -> quoted ""
        with connections[using].cursor() as cursor:
            raw = cursor.cursor
            with raw.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv)") as copy:
                for start in range(0, len(rows), step):
                    buf = io.BytesIO()
                    chunk = pa.Table.from_pandas(rows.iloc[start : start + step][cols], preserve_index=False)
                    pa_csv.write_csv(chunk, buf, options)
                    copy.write(buf.getvalue())
        return len(rows)
    batch = app_settings.BATCH_SIZE
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    objs = []
    for rec in records:
        for key in ("monetary", "predicted_value_12m"):
            if rec[key] is not None:
                rec[key] = Decimal(str(round(rec[key], 2)))
        objs.append(CustomerSegment(**rec))
    for start in range(0, len(objs), batch):
        CustomerSegment.objects.using(using).bulk_create(objs[start : start + batch], batch_size=batch)
    return len(objs)


# --------------------------------------------------------------------------- orchestration


def _mark_stale_runs(using: str) -> None:
    from segmentation.models import RunStatus, SegmentationRun

    stale = timezone.now() - timedelta(seconds=app_settings.TASK_LOCK_TIMEOUT)
    SegmentationRun.objects.using(using).filter(status=RunStatus.RUNNING, created__lt=stale).update(
        status=RunStatus.FAILED, error="interrupted (worker lost before the run finished)", finished=timezone.now()
    )


def find_equivalent_run(as_of: date, using: str = "default") -> Any | None:
    """The current run if it is for ``as_of`` with today's parameters (so a retry can skip work)."""
    from segmentation.models import SegmentationRun

    run = SegmentationRun.objects.using(using).filter(is_current=True).first()
    if run and run.as_of == as_of and run.parameters.get("settings") == _json_roundtrip(current_parameters()):
        return run
    return None


def _json_roundtrip(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def run_segmentation(
    as_of: date | None = None,
    *,
    using: str = "default",
    progress: ProgressCallback | None = None,
    skip_if_done: bool = False,
) -> Any:
    """Segment every customer as of ``as_of`` (default: today) and make the run current on success.

    Returns the :class:`SegmentationRun`. On any error the run is stored as
    ``failed`` with the error and the previous current run stays current;
    the exception is re-raised for the caller (task retry, command exit code).
    """
    from segmentation.models import RunStatus, SegmentationRun

    as_of = as_of or timezone.localdate()
    if skip_if_done:
        done = find_equivalent_run(as_of, using)
        if done is not None:
            return done
    _mark_stale_runs(using)
    params = current_parameters()
    run = SegmentationRun.objects.using(using).create(
        as_of=as_of, status=RunStatus.RUNNING, parameters={"settings": _json_roundtrip(params)}
    )
    timings: dict[str, float] = {}
    summary: dict[str, Any] = {}

    def stage(name: str, t0: float) -> float:
        timings[name] = round(time.perf_counter() - t0, 3)
        if progress:
            progress(name)
        return time.perf_counter()

    t_start = t = time.perf_counter()
    try:
        df, info = aggregate_customers(as_of, using)
        run.parameters.update(info)
        t = stage("aggregate", t)
        if df.empty:
            raise NoCustomersError(
                f"no customer has a counted order on or before {as_of:%Y-%m-%d} "
                f"({info['excluded_orders_currency']} orders excluded for their currency)"
            )
        seg = Segmenter(params)
        seg.score(df)
        t = stage("score", t)
        k, silhouette = seg.cluster(df, summary)
        t = stage("cluster", t)
        log = order_day_log(as_of, using) if params["clv_enabled"] else None
        seg.predict(df, summary, log, end_day=int(as_of_bounds(as_of)[0].timestamp() // 86400))
        t = stage("predict", t)
        counts = summarise(df, summary)
        written = write_memberships(run, df, using)
        t = stage("write", t)
        with transaction.atomic(using=using):
            SegmentationRun.objects.using(using).filter(is_current=True).exclude(pk=run.pk).update(is_current=False)
            run.status = RunStatus.SUCCEEDED
            run.is_current = True
            run.finished = timezone.now()
            run.n_customers = written
            run.k = k
            run.silhouette = silhouette
            run.segment_counts = counts
            run.summary = summary
            timings["publish"] = 0.0
            timings["total"] = round(time.perf_counter() - t_start, 3)
            run.timings = timings
            run.save(using=using)
            transaction.on_commit(lambda: cache.delete(CURRENT_RUN_CACHE_KEY), using=using)
        t = stage("publish", t)
        prune_runs(using)
        timings["prune"] = round(time.perf_counter() - t, 3)
        SegmentationRun.objects.using(using).filter(pk=run.pk).update(timings=timings)
        logger.info("segmentation run %s as of %s: %d customers, k=%s", run.pk, as_of, written, k)
        return run
    except Exception as exc:
        delete_memberships([run.pk], using)
        run.status = RunStatus.FAILED
        run.is_current = False
        run.finished = timezone.now()
        run.error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, NoCustomersError):
            run.error += "\n\n" + traceback.format_exc(limit=8)
        timings["total"] = round(time.perf_counter() - t_start, 3)
        run.timings = timings
        run.save(using=using)
        logger.warning("segmentation run %s failed: %s", run.pk, exc)
        raise


def prune_runs(using: str = "default") -> int:
    """Delete runs beyond ``KEEP_RUNS`` (never the current one); one DELETE per table."""
    from segmentation.models import SegmentationRun

    keep = app_settings.KEEP_RUNS
    if keep is None:
        return 0
    ids = list(SegmentationRun.objects.using(using).order_by("-created", "-pk").values_list("pk", flat=True))
    old = [pk for pk in ids[keep:]]
    old = list(SegmentationRun.objects.using(using).filter(pk__in=old, is_current=False).values_list("pk", flat=True))
    if old:
        delete_memberships(old, using)
        SegmentationRun.objects.using(using).filter(pk__in=old).delete()
    return len(old)


def delete_memberships(run_ids: list[int], using: str = "default") -> int:
    """One SQL DELETE for the memberships of ``run_ids``.

    ``QuerySet.delete()`` would load every row into memory whenever any app
    listens to ``pre_delete``/``post_delete`` (gigabytes for a million rows);
    memberships have no dependants and no signals of their own, so a plain
    DELETE is equivalent.
    """
    from segmentation.models import CustomerSegment

    if not run_ids:
        return 0
    conn = connections[using]
    table = conn.ops.quote_name(CustomerSegment._meta.db_table)
    placeholders = ", ".join(["%s"] * len(run_ids))
    with conn.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE run_id IN ({placeholders})", list(run_ids))
        return cursor.rowcount


# --------------------------------------------------------------------------- reading


def current_run(using: str = "default") -> Any | None:
    from segmentation.models import SegmentationRun

    return SegmentationRun.objects.using(using).filter(is_current=True).first()


def _current_run_id() -> int | None:
    run_id = cache.get(CURRENT_RUN_CACHE_KEY)
    if run_id is None:
        run = current_run()
        run_id = run.pk if run else 0
        cache.set(CURRENT_RUN_CACHE_KEY, run_id, app_settings.CACHE_TIMEOUT)
    return run_id or None


def current_membership(user: Any) -> Any | None:
    """The user's row in the current run (one indexed query), or None."""
    from segmentation.models import CustomerSegment

    if user is None or not getattr(user, "is_authenticated", False):
        return None
    run_id = _current_run_id()
    if run_id is None:
        return None
    return CustomerSegment.objects.filter(run_id=run_id, user_id=user.pk).first()


def current_segment(user: Any) -> str | None:
    """The user's segment name in the current run, cached per run (cheap enough for every basket)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    run_id = _current_run_id()
    if run_id is None:
        return None
    key = _segment_cache_key(run_id, user.pk)
    value = cache.get(key)
    if value is None:
        from segmentation.models import CustomerSegment

        value = (
            CustomerSegment.objects.filter(run_id=run_id, user_id=user.pk).values_list("segment", flat=True).first()
            or ""
        )
        cache.set(key, value, app_settings.CACHE_TIMEOUT)
    return value or None


def _segment_cache_key(run_id: int, user_id: int) -> str:
    return f"segmentation:segment:{run_id}:{user_id}"


def forget_cached_segments(user_ids: set[int], using: str = "default") -> None:
    """Drop the cached segment of these users in every stored run (after their memberships were erased)."""
    from segmentation.models import SegmentationRun

    if not user_ids:
        return
    run_ids = SegmentationRun.objects.using(using).values_list("pk", flat=True)
    cache.delete_many([_segment_cache_key(r, u) for r in run_ids for u in user_ids])


def transitions(from_run: Any, to_run: Any, using: str = "default") -> list[tuple[str | None, str | None, int]]:
    """How many customers moved from each segment of ``from_run`` to each of ``to_run``.

    One grouped query joining the two runs' memberships on the customer
    (user, or guest email); ``None`` stands for "not a customer in that run"
    (new customers, or customers whose orders fell out of the window).
    """
    from segmentation.models import CustomerSegment

    conn = connections[using]
    qn = conn.ops.quote_name
    table = qn(CustomerSegment._meta.db_table)
    sql = f"""
        SELECT a.segment, b.segment, COUNT(*)
        FROM (SELECT user_id, guest_email, segment FROM {table} WHERE run_id = %s) a
        FULL OUTER JOIN (SELECT user_id, guest_email, segment FROM {table} WHERE run_id = %s) b
          ON COALESCE(a.user_id, 0) = COALESCE(b.user_id, 0) AND a.guest_email = b.guest_email
        GROUP BY a.segment, b.segment
        ORDER BY 3 DESC
    """
    with conn.cursor() as cursor:
        cursor.execute(sql, [from_run.pk, to_run.pk])
        return [(a, b, int(c)) for a, b, c in cursor.fetchall()]


def transition_matrix(from_run: Any, to_run: Any) -> dict[str, Any]:
    """:func:`transitions` as a table: rows = previous segment, columns = new segment.

    Runs never change once written, so the table is cached for a day per pair of runs
    (the grouped join takes seconds for a million customers).
    """
    key = f"segmentation:transitions:{from_run.pk}:{to_run.pk}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    cells = transitions(from_run, to_run)
    new_label, gone_label = "(new customer)", "(no longer active)"
    rows = sorted({a or new_label for a, _b, _c in cells}, key=lambda s: (s == new_label, s))
    cols = sorted({b or gone_label for _a, b, _c in cells}, key=lambda s: (s == gone_label, s))
    lookup = {(a or new_label, b or gone_label): c for a, b, c in cells}
    result = {
        "rows": rows,
        "columns": cols,
        "table": [[lookup.get((r, c), 0) for c in cols] for r in rows],
    }
    cache.set(key, result, 24 * 3600)
    return result


def what_if(run: Any, recency_days: int, frequency: int, monetary: Decimal) -> dict[str, Any]:
    """Scores, segment and cluster a customer with these figures would get in ``run``.

    Scored against the run's customers exactly as the run scored them (one
    aggregate query counting worse and equal values per dimension), segmented
    with the run's rule table and placed at the nearest of the run's cluster
    centres. ``cluster`` is None for runs stored before centres were kept.
    """
    from segmentation.ml.clustering import rfm_features
    from segmentation.ml.rfm import assign_segments, score_against
    from segmentation.models import CustomerSegment

    m = Decimal(monetary)
    counts = CustomerSegment.objects.filter(run=run).aggregate(
        n=Count("pk"),
        r_worse=Count("pk", filter=Q(recency_days__gt=recency_days)),
        r_equal=Count("pk", filter=Q(recency_days=recency_days)),
        f_worse=Count("pk", filter=Q(frequency__lt=frequency)),
        f_equal=Count("pk", filter=Q(frequency=frequency)),
        m_worse=Count("pk", filter=Q(monetary__lt=m)),
        m_equal=Count("pk", filter=Q(monetary=m)),
    )
    n = counts["n"]
    r, f, m_score = (score_against(counts[f"{d}_worse"], counts[f"{d}_equal"], n) for d in ("r", "f", "m"))
    params = run.parameters.get("settings", {})
    seg = assign_segments(
        [r], [f], [m_score], params.get("rules"), fallback_segment=params.get("fallback_segment", "Unclassified")
    )
    cluster = None
    model = (run.summary or {}).get("cluster_model")
    if model:
        z = (rfm_features([recency_days], [frequency], [float(m)])[0] - np.array(model["mean"])) / np.array(
            model["scale"]
        )
        centers = np.array(model["centers"], dtype=float)
        cluster = int(((centers - z) ** 2).sum(axis=1).argmin())
    descriptions = {c.get("cluster"): c.get("description", "") for c in (run.summary or {}).get("clusters", [])}
    return {
        "r_score": r,
        "f_score": f,
        "m_score": m_score,
        "segment": str(seg["segment"].iloc[0]),
        "why": str(seg["why"].iloc[0]),
        "cluster": cluster,
        "cluster_description": descriptions.get(cluster, "") if cluster is not None else "",
        "customers": n,
    }


def explain(membership: Any) -> str:
    """Why a customer is in their segment (the rule table of the run that placed them)."""
    from segmentation.ml.rfm import assign_segments

    params = membership.run.parameters.get("settings", {})
    try:
        res = assign_segments(
            [membership.r_score],
            [membership.f_score],
            [membership.m_score],
            params.get("rules"),
            fallback_segment=params.get("fallback_segment", "Unclassified"),
        )
        return str(res["why"].iloc[0])
    except Exception:  # an old run with a rule table this version cannot read
        return f"{membership.segment}: R={membership.r_score}, F={membership.f_score}, M={membership.m_score}"
