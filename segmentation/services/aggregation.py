"""Orders -> customers: the figures a segmentation run starts from, aggregated in SQL.

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

:func:`aggregate_customers` fetches the per-customer figures (``COPY`` on PostgreSQL, the ORM
elsewhere); :func:`order_day_log` is the same orders per customer and day, for the forecasts
and their backtest; :func:`customer_keys` joins the two.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connections
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
from django.db.models.functions import Coalesce, Lower, TruncDate
from oscar.core.loading import get_model

from personalization_core.pgcopy import copy_query_to_frame
from recommender.queries import without_erased_orders
from segmentation.conf import app_settings

Order = get_model("order", "Order")
Source = get_model("payment", "Source")

MONEY = DecimalField(max_digits=14, decimal_places=2)


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
    df = copy_query_to_frame(
        qs,
        [
            "s.user_id",
            "s.guest",
            "extract(epoch from s.last_order)::float8",
            "extract(epoch from s.first_order)::float8",
            "s.n_orders",
            "s.monetary::float8",
        ],
        COLUMNS,
        using,
        dtype={"user_id": "float64", "guest": "object"},
        na_values={"user_id": [""]},
        # room for a hash aggregate over millions of customers (this transaction only)
        work_mem=app_settings.PG_WORK_MEM,
    )
    return df if len(df) else _empty_frame()


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
