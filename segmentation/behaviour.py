"""The shop's behaviour at a glance: grouped queries over orders and captured events.

Everything is counted in the database (grouped queries); only the small grouped
results are shaped in pandas. :func:`shop_behaviour` caches the result under a
key that changes whenever an order or event is added, so a warm page costs two
indexed ``MAX`` queries.

* ``activity``: product views, basket additions (``recommender`` events) and
  orders by weekday (1 = Monday) x hour, in the site's time zone.
* ``weekly``: orders and revenue per week, the 52 weeks to the latest order
  against the 52 weeks before.
* ``funnel``: views -> basket additions -> purchases (order lines) per category
  and for the top products, products that are not goods (``RECOMMENDER``'s
  ``EXCLUDED_PRODUCT_CLASSES`` and ``EXCLUDED_UPCS``: postage, fees) left out. A step's
  share of the step before is given only where both were measured on the same shoppers:
  views and basket additions are captured events, so the purchases in the ratios are
  the lines of orders whose purchase was captured too (``captured_purchases``); the
  lines of imported or untracked orders count in ``purchases`` only. Where a share
  cannot be given, ``<ratio>_note`` says why.
* ``cohorts``: customers by month of first order; the share who ordered again
  in each later month.
* ``new_returning``: per month, customers ordering for the first time and
  customers who had ordered before.

:func:`purchase_intent` reads the live purchase-intent model (the ``recommender`` app's
``next_action`` version) for the page's last section; it is not cached (one indexed query).

Orders are those segmentation counts (``EXCLUDED_STATUSES``, ``INCLUDE_GUESTS``);
credit notes (negative totals) reduce revenue and are never an order.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.apps import apps
from django.core.cache import cache
from django.db.models import Case, Count, Max, Q, Sum, Value, When
from django.db.models.functions import (
    ExtractHour,
    ExtractIsoWeekDay,
    Lower,
    TruncMonth,
    TruncWeek,
)
from django.utils import timezone
from django.utils.translation import gettext
from oscar.core.loading import get_model

from recommender.queries import non_merchandise
from segmentation.conf import app_settings
from segmentation.services.aggregation import counted_orders

__all__ = ["TABLES", "behaviour_csv_rows", "compute_behaviour", "purchase_intent", "shop_behaviour"]

CACHE_PREFIX = "segmentation:shop-behaviour"
TOP_PRODUCTS = 20
COHORT_MONTHS = 12
TABLES = ("activity", "weekly", "funnel_categories", "funnel_products", "cohorts", "new_returning")
#: a funnel row's counts: views and basket additions (events), order lines and units of every
#: counted order, and the order lines of the orders whose purchase was captured as an event
COUNTS = ("view", "basket", "purchases", "units", "captured_purchases")


def _orders(using: str = "default") -> Any:
    """Orders that count (as segmentation counts them), up to now."""
    return counted_orders(timezone.now().date() + timedelta(days=1), using)


def _events(using: str = "default") -> Any:
    Event = get_model("recommender", "Event")
    return Event._default_manager.using(using)


def fingerprint(using: str = "default") -> str:
    """Changes whenever an order or an event is added or removed (two indexed aggregates)."""
    Order = get_model("order", "Order")
    o = Order._default_manager.using(using).aggregate(m=Max("pk"), n=Count("pk"))
    e = _events(using).aggregate(m=Max("pk"))
    return f"{o['m']}-{o['n']}-{e['m']}"


def shop_behaviour(using: str = "default") -> dict[str, Any]:
    """:func:`compute_behaviour`, cached until the next order or event (``CACHE_TIMEOUT`` at most)."""
    key = f"{CACHE_PREFIX}:{fingerprint(using)}"
    data = cache.get(key)
    if data is None:
        data = compute_behaviour(using)
        cache.set(key, data, app_settings.CACHE_TIMEOUT)
    return data


def _activity(using: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    events = (
        _events(using)
        .filter(kind__in=["view", "basket"])
        .annotate(weekday=ExtractIsoWeekDay("created"), hour=ExtractHour("created"))
        .values("kind", "weekday", "hour")
        .annotate(n=Count("pk"))
        .order_by()
    )
    rows += [{"kind": r["kind"], "weekday": r["weekday"], "hour": r["hour"], "n": r["n"]} for r in events]
    orders = (
        _orders(using)
        .filter(total_incl_tax__gte=0)
        .annotate(weekday=ExtractIsoWeekDay("date_placed"), hour=ExtractHour("date_placed"))
        .values("weekday", "hour")
        .annotate(n=Count("pk"))
        .order_by()
    )
    rows += [{"kind": "order", "weekday": r["weekday"], "hour": r["hour"], "n": r["n"]} for r in orders]
    return rows


def _weekly(using: str) -> dict[str, Any]:
    rows = list(
        _orders(using)
        .annotate(week=TruncWeek("date_placed"))
        .values("week")
        .annotate(orders=Count("pk", filter=Q(total_incl_tax__gte=0)), revenue=Sum("total_incl_tax"))
        .order_by("week")
    )
    if not rows:
        return {"rows": [], "end": None}
    frame = pd.DataFrame(rows)
    frame["week"] = pd.to_datetime(frame["week"], utc=True).dt.tz_localize(None).dt.normalize()
    frame["revenue"] = frame["revenue"].astype(float)
    last = frame["week"].max()
    out = []
    for i in range(52):
        this_week = last - pd.Timedelta(weeks=51 - i)
        prev_week = this_week - pd.Timedelta(weeks=52)
        this = frame[frame["week"] == this_week]
        prev = frame[frame["week"] == prev_week]
        out.append(
            {
                "week": this_week.date().isoformat(),
                "orders": int(this["orders"].sum()),
                "revenue": round(float(this["revenue"].sum()), 2),
                "orders_last_year": int(prev["orders"].sum()),
                "revenue_last_year": round(float(prev["revenue"].sum()), 2),
            }
        )
    return {"rows": out, "end": last.date().isoformat()}


def _funnel(using: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    Line = get_model("order", "Line")
    ProductCategory = get_model("catalogue", "ProductCategory")
    Product = get_model("catalogue", "Product")
    ev = pd.DataFrame(
        list(
            _events(using)
            .filter(kind__in=["view", "basket"], product__isnull=False)
            .values("product_id", "kind")
            .annotate(n=Count("pk"))
            .order_by()
        ),
        columns=["product_id", "kind", "n"],
    )
    order_ids = _orders(using).filter(total_incl_tax__gte=0).values("pk")
    captured = _events(using).filter(kind="purchase").exclude(order_number="").values("order_number")
    bought = pd.DataFrame(
        list(
            Line._default_manager.using(using)
            .filter(order__in=order_ids, product__isnull=False)
            .values("product_id")
            .annotate(
                purchases=Count("pk"),
                units=Sum("quantity"),
                captured_purchases=Count("pk", filter=Q(order__number__in=captured)),
            )
            .order_by()
        ),
        columns=["product_id", "purchases", "units", "captured_purchases"],
    )
    per_product = (
        ev.pivot_table(index="product_id", columns="kind", values="n", aggfunc="sum", fill_value=0)
        if len(ev)
        else pd.DataFrame(index=pd.Index([], name="product_id"))
    )
    for col in ("view", "basket"):
        if col not in per_product.columns:
            per_product[col] = 0
    per_product = per_product[["view", "basket"]].join(bought.set_index("product_id"), how="outer").fillna(0)
    per_product = per_product.astype({k: np.int64 for k in COUNTS})
    excluded = non_merchandise()
    if excluded:  # postage, fees: not goods, never ranked
        skip = Product._default_manager.using(using).filter(excluded).values_list("pk", flat=True)
        per_product = per_product.drop(index=list(skip), errors="ignore")
    if per_product.empty:
        return [], []
    cats = pd.DataFrame(
        list(
            ProductCategory._default_manager.using(using)
            .filter(product_id__in=list(per_product.index))
            .values_list("product_id", "category__name")
        ),
        columns=["product_id", "category"],
    )
    joined = per_product.reset_index().merge(cats, on="product_id", how="left")
    joined["category"] = joined["category"].fillna("(no category)")
    by_cat = joined.groupby("category")[list(COUNTS)].sum().reset_index()
    by_cat = by_cat.sort_values(["purchases", "view", "category"], ascending=[False, False, True])
    top = per_product.sort_values(["purchases", "view"], ascending=False).head(TOP_PRODUCTS)
    titles = dict(Product._default_manager.using(using).filter(pk__in=list(top.index)).values_list("pk", "title"))
    categories = [
        _rates({k: (int(v) if k != "category" else str(v)) for k, v in row.items()})
        for row in by_cat.to_dict("records")
    ]
    products = [
        _rates({"product_id": int(pid), "title": titles.get(int(pid), str(pid)), **{k: int(row[k]) for k in COUNTS}})
        for pid, row in top.iterrows()
    ]
    return categories, products


def _share(part: int, whole: int, part_name: str, whole_name: str) -> tuple[float | None, str]:
    """``part / whole`` as a share of a funnel step, or ``None`` and why there is none."""
    if not whole:
        return None, f"not measured: no {whole_name} captured"
    if part > whole:
        return None, f"not a share: more {part_name} than {whole_name} captured"
    return part / whole, ""


def _rates(rec: dict[str, Any]) -> dict[str, Any]:
    """The shares of one funnel row, each over counts of the same (tracked) shoppers."""
    v, b, p = rec["view"], rec["basket"], rec["captured_purchases"]
    untracked = rec["purchases"] - p  # lines of imported orders, or of orders placed untracked
    for key, part, whole, part_name, whole_name in (
        ("basket_per_view", b, v, "basket additions", "views"),
        ("purchase_per_basket", p, b, "purchases", "basket additions"),
        ("purchase_per_view", p, v, "purchases", "views"),
    ):
        rec[key], rec[f"{key}_note"] = _share(part, whole, part_name, whole_name)
        if not whole and untracked:
            rec[f"{key}_note"] += f" for {untracked:,} purchases of imported or untracked orders"
    return rec


def _customer_months(using: str) -> pd.DataFrame:
    rows = list(
        _orders(using)
        .filter(total_incl_tax__gte=0)
        .annotate(
            guest=Case(When(user__isnull=True, then=Lower("guest_email")), default=Value("")),
            month=TruncMonth("date_placed"),
        )
        .values_list("user_id", "guest", "month")
        .distinct()
    )
    frame = pd.DataFrame(rows, columns=["user_id", "guest", "month"])
    if frame.empty:
        return frame.assign(customer=[], m=[])
    frame["customer"] = np.where(
        frame["user_id"].notna(), "u" + frame["user_id"].astype("Int64").astype(str), "g" + frame["guest"]
    )
    months = pd.to_datetime(frame["month"], utc=True).dt.tz_localize(None)
    frame["m"] = months.dt.year * 12 + months.dt.month - 1  # month number
    return frame[["customer", "m"]].drop_duplicates()


def _month_label(m: int) -> str:
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def _cohorts(pairs: pd.DataFrame) -> dict[str, Any]:
    if pairs.empty:
        return {"rows": [], "offsets": []}
    first = pairs.groupby("customer")["m"].min().rename("cohort")
    p = pairs.join(first, on="customer")
    p["offset"] = p["m"] - p["cohort"]
    size = first.value_counts().sort_index()
    active = p[p["offset"] <= COHORT_MONTHS].groupby(["cohort", "offset"])["customer"].nunique()
    last_month = int(pairs["m"].max())
    rows = []
    for cohort, n in size.items():
        shares = []
        for k in range(COHORT_MONTHS + 1):
            if cohort + k > last_month:
                shares.append(None)  # not observed yet
            else:
                shares.append(float(active.get((cohort, k), 0)) / float(n))
        rows.append({"cohort": _month_label(int(cohort)), "customers": int(n), "retention": shares})
    return {"rows": rows[-COHORT_MONTHS * 2 :], "offsets": list(range(COHORT_MONTHS + 1))}


def _new_returning(pairs: pd.DataFrame) -> list[dict[str, Any]]:
    if pairs.empty:
        return []
    first = pairs.groupby("customer")["m"].min().rename("cohort")
    p = pairs.join(first, on="customer")
    p["new"] = p["m"] == p["cohort"]
    g = p.groupby("m")["new"].agg(["sum", "size"])
    return [
        {"month": _month_label(int(m)), "new": int(r["sum"]), "returning": int(r["size"] - r["sum"])}
        for m, r in g.iterrows()
    ]


def compute_behaviour(using: str = "default") -> dict[str, Any]:
    """Every table of the page (see the module docstring), with the seconds each took."""
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    activity = _activity(using)
    seconds["activity"] = time.perf_counter() - t
    t = time.perf_counter()
    weekly = _weekly(using)
    seconds["weekly"] = time.perf_counter() - t
    t = time.perf_counter()
    categories, products = _funnel(using)
    seconds["funnel"] = time.perf_counter() - t
    t = time.perf_counter()
    pairs = _customer_months(using)
    cohorts = _cohorts(pairs)
    new_returning = _new_returning(pairs)
    seconds["cohorts"] = time.perf_counter() - t
    return {
        "computed": timezone.now().isoformat(),
        "time_zone": timezone.get_current_timezone_name(),
        "activity": activity,
        "weekly": weekly,
        "funnel_categories": categories,
        "funnel_products": products,
        "cohorts": cohorts,
        "new_returning": new_returning,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def activity_grid(activity: list[dict[str, Any]], kind: str) -> list[list[int]]:
    """7 x 24 counts (rows Monday..Sunday, columns hours 0..23) of one kind."""
    grid = [[0] * 24 for _ in range(7)]
    for r in activity:
        if r["kind"] == kind and r["weekday"] and r["hour"] is not None:
            grid[int(r["weekday"]) - 1][int(r["hour"])] += int(r["n"])
    return grid


def behaviour_csv_rows(data: dict[str, Any], table: str) -> list[list[Any]]:
    """One table of the page as CSV rows (header first)."""
    if table == "activity":
        return [["kind", "weekday", "hour", "count"]] + [
            [r["kind"], r["weekday"], r["hour"], r["n"]]
            for r in sorted(data["activity"], key=lambda r: (r["kind"], r["weekday"], r["hour"]))
        ]
    if table == "weekly":
        keys = ["week", "orders", "revenue", "orders_last_year", "revenue_last_year"]
        return [keys] + [[r[k] for k in keys] for r in data["weekly"]["rows"]]
    if table in ("funnel_categories", "funnel_products"):
        first = ["category"] if table == "funnel_categories" else ["product_id", "title"]
        keys = [*first, *COUNTS]
        return [keys] + [[r[k] for k in keys] for r in data[table]]
    if table == "cohorts":
        offsets = data["cohorts"]["offsets"]
        return [["cohort", "customers", *[f"month_{k}" for k in offsets]]] + [
            [r["cohort"], r["customers"], *["" if s is None else round(s, 4) for s in r["retention"]]]
            for r in data["cohorts"]["rows"]
        ]
    if table == "new_returning":
        return [["month", "new", "returning"]] + [[r["month"], r["new"], r["returning"]] for r in data["new_returning"]]
    raise ValueError(f"unknown table {table!r}; one of {', '.join(TABLES)}")


def as_of_label(data: dict[str, Any]) -> str:
    end = (data.get("weekly") or {}).get("end")
    return end or date.today().isoformat()


#: the next actions the purchase-intent model predicts, in its metrics' order
INTENT_ACTIONS = ("view", "basket", "purchase", "leave")


def _intent_models(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The model comparison table's rows: the live network, the other cell and the two baselines."""
    names = {
        "candidate": gettext("The live model (%(cell)s)"),
        "other_cell": gettext("The other network (%(cell)s)"),
        "majority": gettext("Always the most common action"),
        "repeat_last": gettext("Repeat the last action"),
    }
    rows = []
    for key, name in names.items():
        scores = metrics.get(key) or {}
        if not scores:
            continue
        per_class = scores.get("per_class_f1") or {}
        rows.append(
            {
                "key": key.replace("_", "-"),
                "name": name % {"cell": str(scores.get("cell", "")).upper()},
                "macro_f1": scores.get("macro_f1"),
                "per_class_f1": [{"action": a, "f1": per_class.get(a)} for a in INTENT_ACTIONS],
            }
        )
    return rows


def purchase_intent(using: str = "default") -> dict[str, Any] | None:
    """The live purchase-intent model's figures for the page: ``None`` without the ``recommender``
    app, ``{"version": None}`` while no ``next_action`` version is live, else the version, its
    intent distribution and bands, calibration, visitors per band and the model comparison."""
    if not apps.is_installed("recommender"):
        return None
    from recommender.abstract_models import ModelKind, VersionStatus

    ModelVersion = get_model("recommender", "ModelVersion")
    version = (
        ModelVersion._default_manager.using(using)
        .filter(kind=ModelKind.NEXT_ACTION, status=VersionStatus.LIVE)
        .order_by("-created", "-pk")
        .first()
    )
    if version is None:
        return {"version": None}
    metrics = version.metrics or {}
    intent = metrics.get("intent") or {}
    bands = intent.get("bands") or {}
    by_band = intent.get("visitors_by_band") or {}
    counts = by_band.get("counts") or {}
    return {
        "version": version,
        "n_cases": metrics.get("n_cases"),
        "class_counts": metrics.get("class_counts") or {},
        "calibration": metrics.get("calibration") or {},
        "distribution": intent.get("distribution") or {},
        "quantiles": intent.get("quantiles") or [],
        "bands": bands,
        # the offer form's default range: the medium band, in percent
        "offer_from": round(100 * float(bands.get("medium") or 0), 2),
        "offer_below": round(100 * float(bands.get("high") or 1), 2),
        "band_rows": [
            {"band": "low", "name": gettext("low"), "below": bands.get("medium"), "visitors": counts.get("low")},
            {
                "band": "medium",
                "name": gettext("medium"),
                "from": bands.get("medium"),
                "below": bands.get("high"),
                "visitors": counts.get("medium"),
            },
            {"band": "high", "name": gettext("high"), "from": bands.get("high"), "visitors": counts.get("high")},
        ],
        "active_days": by_band.get("days"),
        "models": _intent_models(metrics),
    }
