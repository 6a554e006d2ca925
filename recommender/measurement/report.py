"""The staff report: what the blocks earn, per placement and arm, and the A/B comparison.

One call, :func:`report`, for the dashboard page, its CSV export and the API; every figure is
counted in the database (``GROUP BY`` with conditional aggregates), only the small grouped result
comes back to Python, and the result is cached for :data:`CACHE_SECONDS` under a key made of the
filter. For a date range (whole days in the shop's time zone) and, optionally, an experiment:

* **per placement and arm** (impressions, clicks and attributed lines of the range): impressions,
  clicks, CTR (clicks / impressions, an impression-level share shown without an interval: one
  visitor's impressions are not independent), click-to-order conversion (attributed lines /
  clicks), attributed quantity and revenue; and the same per day (the CTR plot);
* **per arm** (an experiment only): the people first shown a block in the range (their
  :class:`Exposure` rows), with the orders and revenue they placed since (to date): visitors,
  conversion rate (share with an order), orders per visitor, revenue per visitor; treatment
  against control for each through :func:`recommender.ml.experiments.compare_proportions` and
  :func:`~recommender.ml.experiments.compare_means`, from ``COUNT``, ``SUM(x)``, ``SUM(x * x)``
  per arm, with the visitors each arm needs to detect the given relative uplift
  (:func:`~recommender.ml.experiments.sample_size_per_arm`, passed as the plan so the verdict says
  "too early" until it is reached).

The arm ``""`` is traffic outside any experiment (no experiment was running).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from oscar.core.loading import get_model

from recommender.abstract_models import Arm
from recommender.measurement.assignment import running_experiment
from recommender.serving.safety import safe

if TYPE_CHECKING:  # the statistics (SciPy, statsmodels) load when a report is computed, not with the URLs
    from recommender.ml.experiments import Comparison, SampleSize

__all__ = [
    "CACHE_SECONDS",
    "CSV_COLUMNS",
    "DEFAULT_DAYS",
    "DEFAULT_UPLIFT",
    "RUNNING",
    "ReportFilter",
    "arm_label",
    "build_report",
    "csv_rows",
    "make_filter",
    "report",
]

CACHE_PREFIX = "recommender:report"
#: how long a computed report is served from the cache (seconds)
CACHE_SECONDS = 60
#: the range without an experiment: the last 30 days
DEFAULT_DAYS = 30
#: the relative uplift the sample size is computed for (+5 %)
DEFAULT_UPLIFT = 0.05
ALPHA = 0.05
POWER = 0.8
#: ``make_filter(experiment=RUNNING)``: the experiment running now, if any
RUNNING: Any = object()

ARM_ORDER = (Arm.TREATMENT.value, Arm.CONTROL.value, "")
ARM_LABELS = {**{a.value: str(a.label) for a in Arm}, "": "outside any experiment"}

#: the per-placement-and-arm table: (CSV column, key of a row of ``report()["placements"]``)
CSV_COLUMNS = (
    ("placement", "placement"),
    ("arm", "arm"),
    ("impressions", "impressions"),
    ("clicks", "clicks"),
    ("ctr", "ctr"),
    ("attributed_lines", "attributed_lines"),
    ("click_to_order", "click_to_order"),
    ("attributed_quantity", "attributed_quantity"),
    ("attributed_revenue", "attributed_revenue"),
)


def arm_label(arm: str) -> str:
    return ARM_LABELS.get(arm, arm)


@dataclass(frozen=True)
class ReportFilter:
    """What a report covers: whole days ``start`` to ``end`` (the shop's time zone), the
    experiment (None: all traffic) and the relative uplift the sample size is computed for."""

    start: date
    end: date
    experiment: Any | None = None
    uplift: float = DEFAULT_UPLIFT

    @property
    def key(self) -> str:
        exp = "-"
        if self.experiment is not None:  # ending it changes the report (its "running" flag)
            ended = self.experiment.ended
            exp = f"{self.experiment.pk}.{int(ended.timestamp()) if ended else 'open'}"
        return f"{CACHE_PREFIX}:{exp}:{self.start.isoformat()}:{self.end.isoformat()}:{self.uplift:.6g}"

    def bounds(self) -> tuple[datetime, datetime]:
        """``[from, to)`` as aware datetimes: midnight of ``start`` to midnight after ``end``."""
        tz = timezone.get_current_timezone()
        lo = timezone.make_aware(datetime.combine(self.start, clock.min), tz)
        hi = timezone.make_aware(datetime.combine(self.end + timedelta(days=1), clock.min), tz)
        return lo, hi


def _local_day(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def make_filter(
    start: date | None = None,
    end: date | None = None,
    experiment: Any = RUNNING,
    uplift: float | None = None,
) -> ReportFilter:
    """A filter with the defaults filled in.

    ``experiment``: an ``Experiment``, its id, None (all traffic) or :data:`RUNNING` (the one
    running now, else None; an unknown id raises ``Experiment.DoesNotExist``). Without dates the
    range is the experiment's span (its first day to its last, or today while it runs), else the
    last :data:`DEFAULT_DAYS` days. ``uplift`` is relative (0.05 = +5 %). ``ValueError`` when
    ``start`` is after ``end`` or the uplift is not positive.
    """
    Experiment = get_model("recommender", "Experiment")
    if experiment is RUNNING:
        experiment = running_experiment()
    elif experiment is not None and not isinstance(experiment, Experiment):
        experiment = Experiment.objects.get(pk=int(experiment))
    today = timezone.localdate()
    if experiment is not None:
        first = _local_day(experiment.started)
        last = _local_day(experiment.ended) if experiment.ended else max(today, first)
    else:
        first, last = today - timedelta(days=DEFAULT_DAYS - 1), today
    start = start or (first if end is None or first <= end else end)
    end = end or max(last, start)
    if start > end:
        raise ValueError("the first day is after the last day")
    uplift = DEFAULT_UPLIFT if uplift is None else float(uplift)
    if not uplift > 0:
        raise ValueError("the uplift to detect must be positive")
    return ReportFilter(start=start, end=end, experiment=experiment, uplift=uplift)


def report(flt: ReportFilter, use_cache: bool = True) -> dict[str, Any]:
    """:func:`build_report`, cached for :data:`CACHE_SECONDS` under the filter's key."""
    if not use_cache:
        return build_report(flt)
    data = safe(lambda: cache.get(flt.key), None, "cache")
    if data is None:
        data = build_report(flt)
        safe(lambda: cache.set(flt.key, data, CACHE_SECONDS), None, "cache")
    return data


def forget(flt: ReportFilter) -> None:
    """Drop the cached report of this filter."""
    safe(lambda: cache.delete(flt.key), None, "cache")


def _ratio(num: float | int | None, den: float | int | None) -> float | None:
    return float(num) / float(den) if num is not None and den else None


def _arm_rank(arm: str) -> int:
    return ARM_ORDER.index(arm) if arm in ARM_ORDER else len(ARM_ORDER)


def _titles() -> dict[str, str]:
    from recommender.serving import service

    return safe(lambda: {name: p.title for name, p in service.placements().items()}, {}, "placements")


def _placement_figures(flt: ReportFilter, lo: datetime, hi: datetime) -> tuple[list, list, list]:
    """Per placement and arm, per arm, and per day, placement and arm: three grouped queries."""
    Impression = get_model("recommender", "Impression")
    Click = get_model("recommender", "Click")
    AttributedLine = get_model("recommender", "AttributedLine")
    scope = Q(created__gte=lo, created__lt=hi)
    if flt.experiment is not None:
        scope &= Q(experiment_id=flt.experiment.pk)
    shown, clicked = _daily_counts(Impression, scope), _daily_counts(Click, scope)
    bought = {
        (r["placement"], r["arm"]): r
        for r in AttributedLine.objects.filter(scope)
        .values("placement", "arm")
        .annotate(lines=Count("*"), quantity=Sum("quantity"), revenue=Sum("revenue"))
        .order_by()
    }
    titles = _titles()
    sums: dict[tuple[str, str], dict[str, Any]] = {}
    days = []
    for key in sorted(set(shown) | set(clicked), key=lambda k: (k[2], k[0], _arm_rank(k[1]))):
        impressions, clicks = shown.get(key, 0), clicked.get(key, 0)
        placement, arm, day = key
        days.append(
            {
                "day": day,
                "placement": placement,
                "arm": arm,
                "impressions": impressions,
                "clicks": clicks,
                "ctr": _ratio(clicks, impressions),
            }
        )
        total = sums.setdefault((placement, arm), {"impressions": 0, "clicks": 0})
        total["impressions"] += impressions
        total["clicks"] += clicks
    for key in bought:
        sums.setdefault(key, {"impressions": 0, "clicks": 0})

    placements, per_arm = [], {}
    for placement, arm in sorted(sums, key=lambda k: (k[0], _arm_rank(k[1]))):
        s, b = sums[(placement, arm)], bought.get((placement, arm), {})
        figures = (
            s["impressions"],
            s["clicks"],
            b.get("lines") or 0,
            b.get("quantity") or 0,
            float(b.get("revenue") or 0),
        )
        placements.append(_figures_row(titles, placement, arm, *figures))
        acc = per_arm.setdefault(arm, [0, 0, 0, 0, 0.0])
        for i, value in enumerate(figures):
            acc[i] += value
    totals = [_figures_row(titles, "", arm, *per_arm[arm]) for arm in sorted(per_arm, key=_arm_rank)]
    return placements, totals, days


def _daily_counts(model: Any, scope: Q) -> dict[tuple[str, str, date], int]:
    """Rows of ``model`` in ``scope`` per placement, arm and day (in the shop's time zone): one grouped query."""
    rows = (
        model.objects.filter(scope)
        .annotate(day=TruncDate("created", tzinfo=timezone.get_current_timezone()))
        .values("placement", "arm", "day")
        .annotate(n=Count("*"))
        .order_by()
    )
    return {(r["placement"], r["arm"], r["day"]): r["n"] for r in rows}


def _figures_row(
    titles: dict[str, str],
    placement: str,
    arm: str,
    impressions: int,
    clicks: int,
    lines: int,
    qty: int,
    revenue: float,
) -> dict[str, Any]:
    """One row of the per-placement table (``placement`` "": the arm's total)."""
    return {
        "placement": placement,
        "title": titles.get(placement, placement) if placement else "all placements",
        "arm": arm,
        "arm_label": arm_label(arm),
        "impressions": impressions,
        "clicks": clicks,
        "ctr": _ratio(clicks, impressions),
        "attributed_lines": lines,
        "click_to_order": _ratio(lines, clicks),
        "attributed_quantity": qty,
        "attributed_revenue": round(revenue, 2),
    }


@dataclass(frozen=True)
class _ArmSums:
    visitors: int = 0
    buyers: int = 0
    orders: float = 0.0
    orders_sq: float = 0.0
    revenue: float = 0.0
    revenue_sq: float = 0.0


def _arm_sums(flt: ReportFilter, lo: datetime, hi: datetime) -> dict[str, _ArmSums]:
    """``COUNT``, ``SUM(x)`` and ``SUM(x * x)`` of orders and revenue per arm (one grouped query)."""
    Exposure = get_model("recommender", "Exposure")
    rows = (
        Exposure.objects.filter(experiment_id=flt.experiment.pk, first_seen__gte=lo, first_seen__lt=hi)
        .values("arm")
        .annotate(
            n_visitors=Count("*"),
            n_buyers=Count("pk", filter=Q(orders__gt=0)),
            sum_orders=Sum("orders"),
            sum_orders_sq=Sum(F("orders") * F("orders")),
            sum_revenue=Sum("revenue"),
            sum_revenue_sq=Sum(F("revenue") * F("revenue")),
        )
        .order_by()
    )
    return {
        r["arm"]: _ArmSums(
            visitors=r["n_visitors"],
            buyers=r["n_buyers"],
            orders=float(r["sum_orders"] or 0),
            orders_sq=float(r["sum_orders_sq"] or 0),
            revenue=float(r["sum_revenue"] or 0),
            revenue_sq=float(r["sum_revenue_sq"] or 0),
        )
        for r in rows
    }


def mean_interval(n: int, total: float, total_sq: float, alpha: float = ALPHA) -> tuple[float | None, float | None]:
    """The Student t interval of one arm's mean from its sufficient statistics (SciPy's ``t.interval``);
    ``(None, None)`` with fewer than two visitors or no spread."""
    from scipy import stats

    from recommender.ml.experiments import mean_and_sd

    if n < 2:
        return None, None
    mean, sd = mean_and_sd(n, total, total_sq)
    if sd == 0:
        return None, None
    low, high = stats.t.interval(1 - alpha, n - 1, loc=mean, scale=sd / n**0.5)
    return float(low), float(high)


def _arm_row(arm: str, s: _ArmSums) -> dict[str, Any]:
    low, high = mean_interval(s.visitors, s.revenue, s.revenue_sq)
    return {
        "arm": arm,
        "arm_label": arm_label(arm),
        "visitors": s.visitors,
        "buyers": s.buyers,
        "orders": int(s.orders),
        "revenue": round(s.revenue, 2),
        "conversion_rate": _ratio(s.buyers, s.visitors),
        "orders_per_visitor": _ratio(s.orders, s.visitors),
        "revenue_per_visitor": _ratio(s.revenue, s.visitors),
        "revenue_per_visitor_low": low,
        "revenue_per_visitor_high": high,
    }


def _plan(make: Any) -> SampleSize | None:
    """``make()``, or None when the sample size cannot be solved for (``ValueError``, no finite answer)."""
    try:
        return make()
    except (ValueError, ArithmeticError):
        return None


CONVERSION_NOTE = "The control group needs visitors with and without an order before a sample size can be estimated."
MEAN_NOTE = "The control group needs orders before a sample size can be estimated."


def _comparisons(flt: ReportFilter, arms: dict[str, _ArmSums]) -> list[dict[str, Any]]:
    """Conversion rate, orders per visitor and revenue per visitor: treatment against control, each
    with the visitors per arm needed to detect ``flt.uplift`` (the plan its verdict waits for)."""
    from recommender.ml.experiments import compare_means, compare_proportions, mean_and_sd, sample_size_per_arm

    c, t = arms.get(Arm.CONTROL.value, _ArmSums()), arms.get(Arm.TREATMENT.value, _ArmSums())
    share, uplift = float(flt.experiment.control_share), flt.uplift

    size, note = None, CONVERSION_NOTE
    if c.visitors and 0 < c.buyers < c.visitors:
        rate = c.buyers / c.visitors
        size = _plan(lambda: sample_size_per_arm(rate, uplift, control_share=share, alpha=ALPHA, power=POWER))
        note = "" if size else f"A conversion rate of {rate:.1%} cannot rise by {uplift:.0%}."
    conversion = compare_proportions(
        c.buyers, c.visitors, t.buyers, t.visitors, ALPHA, metric="conversion rate", unit="visitors", required=size
    )
    out = [_with_plan(conversion, size, note)]

    for metric, field in (("orders per visitor", "orders"), ("revenue per visitor", "revenue")):
        sum_c, sq_c = getattr(c, field), getattr(c, f"{field}_sq")
        sum_t, sq_t = getattr(t, field), getattr(t, f"{field}_sq")
        size = None
        if c.visitors and sum_c > 0:
            # the spread per visitor over the whole test (the control alone is small and noisy)
            _, sd = mean_and_sd(c.visitors + t.visitors, sum_c + sum_t, sq_c + sq_t)
            baseline = sum_c / c.visitors
            size = _plan(
                lambda b=baseline, s=sd: sample_size_per_arm(
                    b, uplift, sd=s, control_share=share, alpha=ALPHA, power=POWER
                )
            )
        comparison = compare_means(
            c.visitors, sum_c, sq_c, t.visitors, sum_t, sq_t, ALPHA, metric=metric, unit="visitors", required=size
        )
        out.append(_with_plan(comparison, size, MEAN_NOTE))
    return out


def _with_plan(comparison: Comparison, size: SampleSize | None, note: str) -> dict[str, Any]:
    data = comparison.as_dict()
    data["sample_size"] = asdict(size) if size is not None else None
    data["sample_size_note"] = "" if size is not None else note
    return data


def _experiment_info(experiment: Any) -> dict[str, Any] | None:
    if experiment is None:
        return None
    now = timezone.now()
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "started": experiment.started,
        "ended": experiment.ended,
        "control_share": float(experiment.control_share),
        "running": experiment.started <= now and (experiment.ended is None or experiment.ended > now),
    }


def build_report(flt: ReportFilter) -> dict[str, Any]:
    """The report for ``flt``, computed now (see the module's docstring for its figures)."""
    began = time.perf_counter()
    lo, hi = flt.bounds()
    placements, totals, days = _placement_figures(flt, lo, hi)
    arms: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    if flt.experiment is not None:
        sums = _arm_sums(flt, lo, hi)
        arms = [_arm_row(arm, sums.get(arm, _ArmSums())) for arm in (Arm.TREATMENT.value, Arm.CONTROL.value)]
        comparisons = _comparisons(flt, sums)
    headline = next((c["verdict"] for c in comparisons if c["metric"] == "revenue per visitor"), "")
    return {
        "start": flt.start,
        "end": flt.end,
        "experiment": _experiment_info(flt.experiment),
        "relative_uplift": flt.uplift,
        "currency": getattr(settings, "OSCAR_DEFAULT_CURRENCY", ""),
        "computed": timezone.now(),
        "placements": placements,
        "placement_totals": totals,
        "days": days,
        "arms": arms,
        "comparisons": comparisons,
        "verdict": headline,
        "seconds": round(time.perf_counter() - began, 3),
    }


def csv_rows(data: dict[str, Any]) -> list[list[Any]]:
    """The per-placement-and-arm table of a report as CSV rows (a header first)."""
    rows: list[list[Any]] = [[name for name, _ in CSV_COLUMNS]]
    for row in data["placements"]:
        rows.append(["" if row[key] is None else row[key] for _, key in CSV_COLUMNS])
    return rows
