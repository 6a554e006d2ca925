"""The statistics of an A/B test (treatment against a control holdout), from sufficient statistics.

Every function takes counts and sums, never rows, so the report can aggregate in SQL however many
impressions or orders there are:

* :func:`compare_proportions` for a share of independent units that did something (conversion
  rate: visitors with an order / visitors): ``successes`` and ``n`` per arm.
* :func:`compare_means` for a per-visitor amount (revenue per visitor, orders per visitor; mostly
  zeros, heavy-tailed): per arm the number of visitors ``n``, the sum of the per-visitor values and
  the sum of their squares (``SUM(v)``, ``SUM(v * v)`` over a ``GROUP BY visitor`` subquery; a
  visitor without an order counts with 0, so ``n`` is every visitor of the arm, not only buyers).
* :func:`compare_ratios` for a ratio of two per-visitor sums with the visitor as the unit (CTR:
  clicks / impressions, where one visitor's impressions are not independent): per arm a
  :class:`RatioSums` of ``n`` and the sums of ``x``, ``y``, ``x * x``, ``y * y`` and ``x * y``.
* :func:`sample_size_per_arm`: the visitors each arm needs to detect a given relative uplift.

The comparisons return a :class:`Comparison`: the two values, the relative uplift of treatment
over control and the absolute difference, each with a ``1 - alpha`` confidence interval, the
p-value of "no difference", and a plain-English :attr:`Comparison.verdict` for a shop owner.
``conclusive`` is true only when both intervals exclude "no difference" in the same direction, the
p-value is below ``alpha``, the sample is large enough for the method (below) and the planned
sample, when one is given, is reached: the verdict never claims an effect the intervals do not
support. A missing, empty or degenerate arm gives an inconclusive verdict with ``None`` figures,
never an exception or a NaN.

Methods (the simulation ``benchmarks/uplift_simulation.py`` measures their coverage):

* proportions: statsmodels' ``confint_proportions_2indep``: Newcombe's hybrid score (Wilson)
  interval for the difference (``method="newcomb"``), Katz's log interval for the ratio
  (``method="log"``; none while an arm has no success) and the score test of "no difference"
  (``test_proportions_2indep(method="score")``); ``conclusive`` asks all three, and at least
  ``MIN_EXPECTED`` expected successes and failures in each arm. statsmodels' own score intervals
  (``method="score"``) were tried and dropped: the difference's fails to bracket its root when a
  bound lies near 0, the ratio's (Koopman) returns complex, NaN or non-nested bounds near 0 % and
  100 % (statsmodels 0.15).
* means: Welch's t interval and test (statsmodels ``CompareMeans`` with ``usevar="unequal"`` on
  ``DescrStatsW``, built from the sufficient statistics) for the difference; Fieller's interval for
  the ratio of the two means, with the same Welch quantile, so the ratio's interval excludes 1
  exactly when Welch's test rejects. Fieller's interval has no upper (or lower) bound while the
  control mean is not itself distinguishable from 0: the bound is then ``None``. With a small
  control arm and heavy-tailed values Welch's interval errs towards "higher with treatment" (the
  control arm that missed the rare large orders looks low *and* certain): a difference is only
  called when the equal-variance t test of "no effect" (both arms' spread pooled) agrees.
* ratios (:func:`compare_ratios`): delta-method variance of each arm's ratio from the per-visitor
  sums, a normal interval and test for the difference, Fieller's interval for the relative uplift.

These intervals hold for one look at the data. Reading the report every day and stopping at the
first "conclusive" raises the false alarm rate: size the test first (:func:`sample_size_per_arm`)
and pass the plan as ``required`` so the verdict says "too early" until it is reached.

CTR: :func:`compare_proportions` treats its ``n`` units as independent. Impressions of one visitor
are not (some visitors click much more than others), so a CTR interval over impressions is too
narrow (the simulation: the A/A interval covers 0 about 91 % of the time instead of 95 %); use
:func:`compare_ratios` for CTR, or show an impression-level CTR without an interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    test_proportions_2indep,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

__all__ = [
    "Comparison",
    "RatioSums",
    "SampleSize",
    "compare_means",
    "compare_proportions",
    "compare_ratios",
    "mean_and_sd",
    "sample_size_per_arm",
]

MIN_EXPECTED = 5  # compare_proportions: fewer expected successes (or failures) in an arm is "too early"


@dataclass(frozen=True)
class SampleSize:
    """Visitors needed in each arm (and in all) to detect an uplift with the given power."""

    control: int
    treatment: int
    total: int
    baseline: float
    relative_uplift: float
    alpha: float
    power: float

    def reached(self, n_control: int, n_treatment: int) -> bool:
        return n_control >= self.control and n_treatment >= self.treatment


@dataclass(frozen=True)
class Comparison:
    """Treatment against control for one metric. Figures that cannot be computed are ``None``.

    ``uplift`` is relative (``treatment / control - 1``: 0.05 is +5 %), ``diff`` absolute
    (``treatment - control``); ``*_low`` / ``*_high`` are the bounds of their ``1 - alpha``
    confidence interval (``None`` when unbounded or unknown).
    """

    metric: str
    kind: str  # "proportion", "mean" or "ratio"
    method: str
    alpha: float
    n_control: int
    n_treatment: int
    control: float | None
    treatment: float | None
    uplift: float | None
    uplift_low: float | None
    uplift_high: float | None
    diff: float | None
    diff_low: float | None
    diff_high: float | None
    p_value: float | None
    conclusive: bool
    verdict: str

    @property
    def confidence(self) -> float:
        return 1 - self.alpha

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _pct(x: float, signed: bool = False) -> str:
    return f"{x * 100:+.1f} %" if signed else f"{x * 100:.2f} %"


def _points(x: float, signed: bool = True) -> str:
    return f"{x * 100:+.2f} percentage points"


def _number(x: float, signed: bool = False) -> str:
    return f"{x:+,.2f}" if signed else f"{x:,.2f}"


def _check_n(*ns: Any) -> None:
    for n in ns:
        if n < 0:
            raise ValueError(f"a count cannot be negative: {n}")


def _result(
    *,
    metric: str,
    kind: str,
    method: str,
    alpha: float,
    n_c: int,
    n_t: int,
    control: float | None = None,
    treatment: float | None = None,
    uplift: float | None = None,
    uplift_ci: tuple[Any, Any] = (None, None),
    diff: float | None = None,
    diff_ci: tuple[Any, Any] = (None, None),
    p_value: float | None = None,
    required: SampleSize | None = None,
    unit: str,
    fmt: Callable[..., str],
    diff_fmt: Callable[[float], str],
    reason: str | None = None,
    too_few: str | None = None,
) -> Comparison:
    """Assemble the comparison, decide whether it is conclusive and write its verdict.

    ``reason``: nothing to compare (the figures stay as given, the verdict is ``reason``);
    ``too_few``: the figures stand but the sample is too small to trust the interval.
    """
    control, treatment, uplift, diff, p_value = map(_finite, (control, treatment, uplift, diff, p_value))
    u_low, u_high = map(_finite, uplift_ci)
    d_low, d_high = map(_finite, diff_ci)
    if uplift is None:
        u_low = u_high = None  # an interval around an undefined point would only confuse

    if reason is not None:  # nothing to compare
        verdict, conclusive = reason, False
    else:
        verdict, conclusive = _judge(
            metric,
            alpha,
            n_c,
            n_t,
            control,
            treatment,
            (uplift, u_low, u_high),
            (diff, d_low, d_high),
            p_value,
            required,
            unit,
            fmt,
            diff_fmt,
            too_few,
        )
    return Comparison(
        metric=metric,
        kind=kind,
        method=method,
        alpha=alpha,
        n_control=int(n_c),
        n_treatment=int(n_t),
        control=control,
        treatment=treatment,
        uplift=uplift,
        uplift_low=u_low,
        uplift_high=u_high,
        diff=diff,
        diff_low=d_low,
        diff_high=d_high,
        p_value=p_value,
        conclusive=conclusive,
        verdict=verdict,
    )


def _judge(
    metric: str,
    alpha: float,
    n_c: int,
    n_t: int,
    control: float | None,
    treatment: float | None,
    relative_change: tuple[float | None, float | None, float | None],
    absolute_change: tuple[float | None, float | None, float | None],
    p_value: float | None,
    required: SampleSize | None,
    unit: str,
    fmt: Callable[..., str],
    diff_fmt: Callable[[float], str],
    too_few: str | None,
) -> tuple[str, bool]:
    """The verdict for staff and whether the comparison is conclusive (see :class:`Comparison`)."""
    uplift, u_low, u_high = relative_change
    diff, d_low, d_high = absolute_change
    level = f"{(1 - alpha) * 100:g} %"
    d_dir = _direction(d_low, d_high)
    relative = uplift is not None and (u_low is not None or u_high is not None)
    # both intervals (the relative one where it is bounded) must exclude "no change", in the same direction
    supported = d_dir != 0 and (not relative or _direction(u_low, u_high) == d_dir)
    supported = supported and p_value is not None and p_value < alpha
    if relative:
        signed_pct = lambda x: _pct(x, signed=True)  # noqa: E731
        change = f"{signed_pct(uplift)}, {level} interval {_interval(u_low, u_high, signed_pct)}"
    else:
        change = f"difference {diff_fmt(diff)}, {level} interval {_interval(d_low, d_high, diff_fmt)}"
    values = f"{metric} is {fmt(treatment)} in treatment against {fmt(control)} in control ({change})"
    conclusive = False
    if required is not None and not required.reached(n_c, n_t):
        verdict = (
            f"Too early to conclude: the test has {n_c:,} of the {required.control:,} {unit} it needs in "
            f"control and {n_t:,} of {required.treatment:,} in treatment (planned to detect "
            f"{_pct(required.relative_uplift, signed=True)}). So far {values}."
        )
    elif too_few is not None:
        verdict = f"Too early to conclude: {too_few}. So far {values}."
    elif supported:
        verdict = f"{metric[:1].upper()}{metric[1:]} is {'higher' if d_dir > 0 else 'lower'} with treatment: "
        verdict += values.removeprefix(f"{metric} is ") + "."
        conclusive = True
    else:
        shown = _direction(u_low, u_high) if relative else d_dir
        why = (
            "The interval includes no change"
            if shown == 0
            else "The result sits at the border of significance (the intervals and the test disagree)"
        )
        verdict = (
            f"No clear difference yet: {values}. {why}, so this sample cannot tell whether treatment is better or worse"
        )
        verdict += (
            "; it has reached its planned size, so an effect as large as planned is unlikely." if required else "."
        )
    return verdict, conclusive


def _direction(low: float | None, high: float | None) -> int:
    """+1 when the interval lies above 0, -1 below, 0 when it includes 0 (or is unknown)."""
    if low is not None and low > 0:
        return 1
    if high is not None and high < 0:
        return -1
    return 0


def _interval(low: float | None, high: float | None, fmt: Callable[[float], str]) -> str:
    lo = fmt(low) if low is not None else "no lower bound"
    hi = fmt(high) if high is not None else "no upper bound"
    return f"{lo} to {hi}"


def _one(unit: str) -> str:
    return unit[:-1] if unit.endswith("s") else unit


def _empty_arm(n_c: int, n_t: int, unit: str, minimum: int = 1) -> str | None:
    short = [
        f"{n:,} {_one(unit) if n == 1 else unit} in {arm}"
        for arm, n in (("control", n_c), ("treatment", n_t))
        if n < minimum
    ]
    if short:
        return f"Not enough data to compare yet: {' and '.join(short)}."
    return None


def compare_proportions(
    successes_control: int,
    n_control: int,
    successes_treatment: int,
    n_treatment: int,
    alpha: float = 0.05,
    *,
    metric: str = "conversion rate",
    unit: str = "visitors",
    required: SampleSize | None = None,
) -> Comparison:
    """Compare two rates (``successes / n`` per arm): score-based intervals and the score test.

    ``metric`` and ``unit`` name the rate and what ``n`` counts in the verdict; ``required``
    (from :func:`sample_size_per_arm`) keeps the verdict at "too early" until both arms reach it.
    """
    x_c, n_c, x_t, n_t = (int(v) for v in (successes_control, n_control, successes_treatment, n_treatment))
    _check_n(x_c, n_c, x_t, n_t)
    if x_c > n_c or x_t > n_t:
        raise ValueError("successes cannot exceed n")
    common = dict(
        metric=metric,
        kind="proportion",
        method="Newcombe hybrid score (difference), Katz log (ratio), score test",
        alpha=alpha,
    )
    common |= dict(n_c=n_c, n_t=n_t, required=required, unit=unit, fmt=_pct, diff_fmt=_points)
    reason = _empty_arm(n_c, n_t, unit)
    if reason:
        return _result(**common, reason=reason)
    p_c, p_t = x_c / n_c, x_t / n_t
    if (x_c == 0 and x_t == 0) or (x_c == n_c and x_t == n_t):
        return _result(
            **common,
            control=p_c,
            treatment=p_t,
            diff=0.0,
            reason=f"Too early to conclude: {metric} is {_pct(p_c)} in both groups so far "
            f"({n_c:,} {unit} in control, {n_t:,} in treatment), so there is no difference to measure yet.",
        )
    uplift = p_t / p_c - 1 if p_c > 0 else None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        d_ci = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="newcomb", compare="diff", alpha=alpha)
        p_value = test_proportions_2indep(x_t, n_t, x_c, n_c, method="score", compare="diff").pvalue
        u_ci: tuple[float | None, float | None] = (None, None)
        if x_t > 0 and x_c > 0:  # the log interval needs a success in each arm; else the verdict uses the difference
            r_low, r_high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="log", compare="ratio", alpha=alpha)
            u_ci = (float(r_low) - 1, float(r_high) - 1)
    # the classic rule for the normal approximations: at least 5 expected successes and failures in each arm
    pooled = (x_c + x_t) / (n_c + n_t)
    too_few = None
    if min(n_c, n_t) * min(pooled, 1 - pooled) < MIN_EXPECTED:
        too_few = (
            f"the groups are too small for a reliable interval ({x_c:,} of {n_c:,} {unit} in control, "
            f"{x_t:,} of {n_t:,} in treatment)"
        )
    return _result(
        **common,
        too_few=too_few,
        control=p_c,
        treatment=p_t,
        uplift=uplift,
        uplift_ci=u_ci,
        diff=p_t - p_c,
        diff_ci=d_ci,
        p_value=p_value,
    )


def mean_and_sd(n: int, total: float, total_sq: float) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) from ``n``, ``SUM(v)`` and ``SUM(v * v)``."""
    n, total, total_sq = int(n), float(total), float(total_sq)
    if n < 1:
        raise ValueError("n must be at least 1")
    mean = total / n
    if n < 2:
        return mean, 0.0
    m2 = max(total_sq - total * mean, 0.0)  # rounding can make a zero spread slightly negative
    return mean, math.sqrt(m2 / (n - 1))


def _descr(n: int, total: float, total_sq: float) -> DescrStatsW:
    """A weighted two-point sample with exactly this ``n``, mean and variance (statsmodels' own view of data)."""
    mean, sd = mean_and_sd(n, total, total_sq)
    half = sd * math.sqrt((n - 1) / n)  # weights n/2 at mean - half and mean + half: sum of squares = n * half**2
    return DescrStatsW(np.array([mean - half, mean + half]), weights=np.array([n / 2, n / 2]), ddof=0)


def _fieller(m_t: float, v_t: float, m_c: float, v_c: float, q: float) -> tuple[float | None, float | None]:
    """Fieller's interval for ``m_t / m_c`` (independent means, variances of the means ``v_*``, quantile ``q``).

    The set of ratios ``r`` with ``(m_t - r m_c)^2 <= q^2 (v_t + r^2 v_c)``; bounded only when the
    control mean is itself significantly away from 0 (``m_c^2 > q^2 v_c``).
    """
    scale = max(abs(m_t), abs(m_c), math.sqrt(v_t), math.sqrt(v_c))
    if not scale:
        return None, None
    m_t, m_c, v_t, v_c = m_t / scale, m_c / scale, v_t / scale**2, v_c / scale**2  # no underflow in the squares
    a = m_c * m_c - q * q * v_c
    if a <= 0:
        return None, None
    b = m_t * m_c
    c = m_t * m_t - q * q * v_t
    root = math.sqrt(max(b * b - a * c, 0.0))
    return (b - root) / a, (b + root) / a


def compare_means(
    n_c: int,
    sum_c: float,
    sumsq_c: float,
    n_t: int,
    sum_t: float,
    sumsq_t: float,
    alpha: float = 0.05,
    *,
    metric: str = "revenue per visitor",
    unit: str = "visitors",
    required: SampleSize | None = None,
    fmt: Callable[..., str] = _number,
) -> Comparison:
    """Compare two per-visitor means from ``n``, ``SUM(v)``, ``SUM(v * v)`` per arm.

    Welch's t interval and test for the difference, Fieller's interval (same quantile) for the
    ratio. ``fmt(value, signed=False)`` formats a value for the verdict (2 decimals by default).
    """
    n_c, n_t = int(n_c), int(n_t)
    _check_n(n_c, n_t)
    common = dict(metric=metric, kind="mean", method="Welch t; Fieller ratio", alpha=alpha)
    common |= dict(n_c=n_c, n_t=n_t, required=required, unit=unit, fmt=fmt, diff_fmt=lambda x: fmt(x, signed=True))
    reason = _empty_arm(n_c, n_t, unit, minimum=2)
    if reason:
        return _result(**common, reason=reason)
    d_c, d_t = _descr(n_c, sum_c, sumsq_c), _descr(n_t, sum_t, sumsq_t)
    m_c, m_t = float(d_c.mean), float(d_t.mean)
    v_c, v_t = float(d_c.std_mean) ** 2, float(d_t.std_mean) ** 2
    uplift = m_t / m_c - 1 if m_c != 0 else None
    if v_c == 0 or v_t == 0:
        # one arm has no spread (typically no order at all yet): its uncertainty is unknown, not zero
        flat = " and ".join(arm for arm, v in (("control", v_c), ("treatment", v_t)) if v == 0)
        return _result(
            **common,
            control=m_c,
            treatment=m_t,
            uplift=uplift,
            diff=m_t - m_c,
            reason=f"Too early to conclude: {metric} is {fmt(m_c if v_c == 0 else m_t)} for every {_one(unit)} in "
            f"{flat} so far, so there is nothing yet to measure its spread with.",
        )
    cm = CompareMeans(d_t, d_c)
    _, p_value, df = cm.ttest_ind(usevar="unequal")
    d_low, d_high = cm.tconfint_diff(alpha=alpha, usevar="unequal")
    q = float(stats.t.ppf(1 - alpha / 2, df))
    r_low, r_high = _fieller(m_t, v_t, m_c, v_c, q)
    # Welch's interval leans on each arm's own spread: a small control arm that happened to miss the rare
    # large orders looks both low and certain, so Welch alone says "higher with treatment" too often. The
    # test of "no effect at all" with both arms' spread pooled does not have that bias; ask it too.
    _, p_pooled, _ = cm.ttest_ind(usevar="pooled")
    too_few = None
    if p_value < alpha <= p_pooled:
        too_few = (
            f"the difference leans on a few large values in one group (it is not confirmed when both groups' "
            f"spread is pooled, p = {p_pooled:.2g})"
        )
    return _result(
        **common,
        too_few=too_few,
        control=m_c,
        treatment=m_t,
        uplift=uplift,
        uplift_ci=(None if r_low is None else r_low - 1, None if r_high is None else r_high - 1),
        diff=m_t - m_c,
        diff_ci=(d_low, d_high),
        p_value=p_value,
    )


class RatioSums(NamedTuple):
    """One arm of a ratio metric with the visitor as the unit, e.g. CTR = clicks / impressions.

    Per visitor ``x`` (clicks) and ``y`` (impressions); over the arm's visitors: ``n`` visitors,
    ``SUM(x)``, ``SUM(y)``, ``SUM(x * x)``, ``SUM(y * y)``, ``SUM(x * y)``.
    """

    n: int
    x: float
    y: float
    xx: float
    yy: float
    xy: float


def _ratio_and_variance(a: RatioSums) -> tuple[float, float]:
    """``SUM(x) / SUM(y)`` and its delta-method variance (visitors independent, their events not)."""
    n = a.n
    mx, my = a.x / n, a.y / n
    r = a.x / a.y
    cov = np.array([[a.xx - n * mx * mx, a.xy - n * mx * my], [a.xy - n * mx * my, a.yy - n * my * my]]) / (n - 1)
    grad = np.array([1 / my, -r / my])  # d(mx / my) / d(mx, my)
    return r, max(float(grad @ cov @ grad) / n, 0.0)


def compare_ratios(
    control: RatioSums,
    treatment: RatioSums,
    alpha: float = 0.05,
    *,
    metric: str = "CTR",
    unit: str = "visitors",
    required: SampleSize | None = None,
) -> Comparison:
    """Compare ``SUM(x) / SUM(y)`` (CTR: clicks / impressions) between arms, the visitor as the unit.

    The impressions of one visitor are not independent (some visitors click far more than others),
    so :func:`compare_proportions` over impressions gives too narrow an interval; here each arm's
    ratio gets its delta-method variance from the per-visitor sums, the difference a normal
    interval and test, the relative uplift Fieller's interval with the same quantile.
    """
    c, t = RatioSums(*control), RatioSums(*treatment)
    _check_n(c.n, t.n, c.x, t.x, c.y, t.y)
    common = dict(metric=metric, kind="ratio", method="delta method (visitor clusters); Fieller ratio", alpha=alpha)
    common |= dict(n_c=c.n, n_t=t.n, required=required, unit=unit, fmt=_pct, diff_fmt=_points)
    reason = _empty_arm(c.n, t.n, unit, minimum=2)
    if reason is None and (c.y <= 0 or t.y <= 0):
        reason = f"Not enough data to compare yet: no {metric} denominator (impressions) in one group."
    if reason:
        return _result(**common, reason=reason)
    r_c, v_c = _ratio_and_variance(c)
    r_t, v_t = _ratio_and_variance(t)
    uplift = r_t / r_c - 1 if r_c > 0 else None
    if v_c == 0 or v_t == 0:
        flat = " and ".join(arm for arm, v in (("control", v_c), ("treatment", v_t)) if v == 0)
        return _result(
            **common,
            control=r_c,
            treatment=r_t,
            uplift=uplift,
            diff=r_t - r_c,
            reason=f"Too early to conclude: {metric} does not vary between {unit} in {flat} so far "
            f"({_pct(r_c if v_c == 0 else r_t)}), so there is nothing yet to measure its spread with.",
        )
    se = math.sqrt(v_c + v_t)
    z = float(stats.norm.ppf(1 - alpha / 2))
    diff = r_t - r_c
    p_value = float(2 * stats.norm.sf(abs(diff) / se))
    q_low, q_high = _fieller(r_t, v_t, r_c, v_c, z)
    pooled = (c.x + t.x) / (c.y + t.y)
    too_few = None
    if min(c.y, t.y) * pooled < MIN_EXPECTED:  # expected events in the smaller arm, as for proportions
        too_few = f"the groups are too small for a reliable interval ({c.x:,.0f} and {t.x:,.0f} events)"
    return _result(
        **common,
        too_few=too_few,
        control=r_c,
        treatment=r_t,
        uplift=uplift,
        uplift_ci=(None if q_low is None else q_low - 1, None if q_high is None else q_high - 1),
        diff=diff,
        diff_ci=(diff - z * se, diff + z * se),
        p_value=p_value,
    )


def sample_size_per_arm(
    baseline: float,
    relative_uplift: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    control_share: float = 0.5,
) -> SampleSize:
    """Visitors each arm needs to detect ``relative_uplift`` (0.05 = +5 %) two-sided at ``alpha`` with ``power``.

    Without ``sd`` the metric is a rate: ``baseline`` is the control's rate (0.03 = 3 %), the
    effect is Cohen's h (``proportion_effectsize``). With ``sd`` it is a mean: ``baseline`` the
    control's mean per visitor and ``sd`` its standard deviation per visitor (the same in both
    arms), effect ``baseline * relative_uplift / sd``. ``control_share`` is the share of visitors in
    control (the holdout, 0.1 for 10 %). Solved by statsmodels' ``NormalIndPower``.
    """
    if not 0 < control_share < 1:
        raise ValueError("control_share must be between 0 and 1")
    if relative_uplift == 0:
        raise ValueError("a zero uplift cannot be detected")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must be between 0 and 1")
    target = baseline * (1 + relative_uplift)
    if sd is None:
        if not (0 < baseline < 1 and 0 < target < 1):
            raise ValueError("a rate and its uplifted value must be between 0 and 1")
        effect = abs(float(proportion_effectsize(target, baseline)))
    else:
        if sd <= 0 or baseline == 0:
            raise ValueError("sd must be positive and the baseline mean non-zero")
        effect = abs(baseline * relative_uplift) / sd
    ratio = (1 - control_share) / control_share  # treatment visitors per control visitor
    n_control = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=ratio)
    control = math.ceil(float(np.squeeze(n_control)))
    treatment = math.ceil(control * ratio)
    return SampleSize(
        control=control,
        treatment=treatment,
        total=control + treatment,
        baseline=float(baseline),
        relative_uplift=float(relative_uplift),
        alpha=alpha,
        power=power,
    )
