"""The A/B report's statistics (:mod:`recommender.ml.experiments`): no database, fast.

Each figure is checked against published values or against SciPy / statsmodels run directly on
the raw per-visitor arrays, never against the module itself.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_effectsize
from statsmodels.stats.weightstats import CompareMeans

from recommender.ml.experiments import (
    Comparison,
    RatioSums,
    compare_means,
    compare_proportions,
    compare_ratios,
    mean_and_sd,
    sample_size_per_arm,
)

Z = stats.norm.ppf(0.975)


def _sums(x: np.ndarray) -> tuple[int, float, float]:
    return len(x), float(x.sum()), float((x * x).sum())


def _shown_to_staff(r: Comparison) -> None:
    """Nothing a staff member reads is NaN or infinite, and the verdict is a sentence."""
    for key, value in r.as_dict().items():
        if isinstance(value, float):
            assert math.isfinite(value), (key, value)
    assert r.verdict and r.verdict.endswith(".")
    assert not re.search(r"\b(nan|inf)\b", r.verdict, re.IGNORECASE), r.verdict


def _heavy_tailed(rng: np.random.Generator, n: int, buy: float, mu: float = 4.0) -> np.ndarray:
    """Revenue per visitor: mostly zeros, log-normal baskets."""
    return np.where(rng.random(n) < buy, rng.lognormal(mu, 1.0, n), 0.0)


# ------------------------------------------------------------------------------------------ proportions


@pytest.mark.parametrize(
    ("treatment", "control", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17, Table II, method 10 (hybrid score)
        ((56, 70), (48, 80), 0.0524, 0.3339),
        ((9, 10), (3, 10), 0.1705, 0.8090),
        ((6, 7), (2, 7), 0.0582, 0.8062),
        ((5, 56), (0, 29), -0.0381, 0.1926),
    ],
)
def test_difference_interval_matches_newcombe(treatment, control, low, high) -> None:
    r = compare_proportions(control[0], control[1], treatment[0], treatment[1])
    assert r.diff == pytest.approx(treatment[0] / treatment[1] - control[0] / control[1])
    assert (round(r.diff_low, 4), round(r.diff_high, 4)) == (low, high)


def test_proportions_against_raw_visitors() -> None:
    rng = np.random.default_rng(1)
    control = rng.random(4_000) < 0.040
    treatment = rng.random(36_000) < 0.048
    r = compare_proportions(int(control.sum()), control.size, int(treatment.sum()), treatment.size)
    assert r.control == pytest.approx(control.mean()) and r.treatment == pytest.approx(treatment.mean())
    assert r.uplift == pytest.approx(treatment.mean() / control.mean() - 1)
    # the score test of "no difference" is the pooled chi-square test of the 2 x 2 table (up to n / (n - 1))
    table = [[control.sum(), (~control).sum()], [treatment.sum(), (~treatment).sum()]]
    chi2 = stats.chi2_contingency(table, correction=False)
    assert r.p_value == pytest.approx(chi2.pvalue, rel=2e-3)
    # at this size the score intervals are close to the textbook Wald and Katz log intervals
    p_c, p_t = control.mean(), treatment.mean()
    se = math.sqrt(p_c * (1 - p_c) / control.size + p_t * (1 - p_t) / treatment.size)
    assert r.diff_low == pytest.approx(p_t - p_c - Z * se, abs=5e-4)
    assert r.diff_high == pytest.approx(p_t - p_c + Z * se, abs=5e-4)
    x_c, x_t = control.sum(), treatment.sum()
    se_log = math.sqrt(1 / x_t - 1 / treatment.size + 1 / x_c - 1 / control.size)
    assert r.uplift_low == pytest.approx(math.exp(math.log(p_t / p_c) - Z * se_log) - 1, abs=0.01)
    assert r.uplift_high == pytest.approx(math.exp(math.log(p_t / p_c) + Z * se_log) - 1, abs=0.01)


def test_clear_uplift_is_conclusive_and_says_so() -> None:
    r = compare_proportions(400, 10_000, 5_400, 90_000)  # 4 % against 6 %
    assert r.conclusive and r.p_value < 1e-6
    assert r.uplift == pytest.approx(0.5) and 0 < r.uplift_low < 0.5 < r.uplift_high
    assert r.verdict.startswith("Conversion rate is higher with treatment")
    assert "+50.0 %" in r.verdict
    lower = compare_proportions(600, 10_000, 3_600, 90_000)
    assert lower.conclusive and lower.verdict.startswith("Conversion rate is lower with treatment")


@pytest.mark.parametrize(
    "counts",
    [
        (0, 0, 5, 100),  # no visitor in control
        (5, 100, 0, 0),  # none in treatment
        (0, 0, 0, 0),
        (0, 4_000, 0, 36_000),  # no conversion anywhere
        (4_000, 4_000, 36_000, 36_000),  # every visitor converted
        (40, 1_000, 40, 1_000),  # identical arms
        (0, 100, 5, 100),  # too few conversions for the approximations
        (1, 1, 0, 5),
        (5, 100, 0, 100),
    ],
)
def test_proportion_edge_cases_are_inconclusive_never_nan(counts) -> None:
    r = compare_proportions(*counts)
    assert not r.conclusive
    _shown_to_staff(r)


def test_proportion_edge_case_verdicts_say_why() -> None:
    assert "0 visitors in control" in compare_proportions(0, 0, 5, 100).verdict
    assert compare_proportions(0, 4_000, 0, 36_000).verdict.startswith("Too early to conclude")
    assert compare_proportions(40, 1_000, 40, 1_000).verdict.startswith("No clear difference yet")
    assert "too small" in compare_proportions(0, 100, 5, 100).verdict
    with pytest.raises(ValueError, match="exceed"):
        compare_proportions(5, 4, 1, 10)
    with pytest.raises(ValueError, match="negative"):
        compare_proportions(-1, 4, 1, 10)


def test_required_sample_keeps_the_verdict_at_too_early() -> None:
    plan = sample_size_per_arm(0.04, 0.10, control_share=0.1)
    early = compare_proportions(400, 10_000, 5_400, 90_000, required=plan)
    assert not early.conclusive and early.verdict.startswith("Too early to conclude")
    assert f"{plan.control:,}" in early.verdict and early.p_value < 1e-6  # the figures are still there
    done = compare_proportions(
        int(plan.control * 0.04), plan.control, int(plan.treatment * 0.044), plan.treatment, required=plan
    )
    assert done.conclusive


# ------------------------------------------------------------------------------------------ means


def test_means_from_sums_equal_scipy_and_statsmodels_on_raw_arrays() -> None:
    rng = np.random.default_rng(2)
    control, treatment = _heavy_tailed(rng, 4_000, 0.04), _heavy_tailed(rng, 36_000, 0.05)
    r = compare_means(*_sums(control), *_sums(treatment))
    welch = stats.ttest_ind(treatment, control, equal_var=False)
    assert r.p_value == pytest.approx(welch.pvalue, rel=1e-9)
    ci = welch.confidence_interval()
    assert (r.diff_low, r.diff_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    cm = CompareMeans.from_data(treatment, control)
    assert (r.diff_low, r.diff_high) == pytest.approx(cm.tconfint_diff(usevar="unequal"), rel=1e-9)
    assert r.control == pytest.approx(control.mean()) and r.treatment == pytest.approx(treatment.mean())
    assert r.uplift == pytest.approx(treatment.mean() / control.mean() - 1)
    assert mean_and_sd(*_sums(control)) == pytest.approx((control.mean(), control.std(ddof=1)))
    # Fieller: at each bound of the ratio, the Welch-type statistic of "treatment = ratio x control" is the quantile
    v_t, v_c = treatment.var(ddof=1) / treatment.size, control.var(ddof=1) / control.size
    q = stats.t.ppf(0.975, welch.df)
    for bound in (r.uplift_low, r.uplift_high):
        ratio = 1 + bound
        t_stat = (treatment.mean() - ratio * control.mean()) / math.sqrt(v_t + ratio**2 * v_c)
        assert abs(t_stat) == pytest.approx(q, rel=1e-9)


def test_means_accept_what_sql_returns() -> None:
    a = compare_means(1000, Decimal("2500.50"), Decimal("190000.25"), 9000, Decimal("25000.00"), Decimal("1900000"))
    b = compare_means(1000, 2500.50, 190000.25, 9000, 25000.0, 1900000.0)
    assert a == b


def test_means_do_not_call_an_effect_that_only_the_small_arms_spread_supports() -> None:
    # control: 50 visitors, little spread; treatment: 5,000 with a few huge values. Welch trusts the
    # control's small spread (p < 0.01); pooled, the difference is nowhere near significant.
    rng = np.random.default_rng(3)
    control = rng.normal(1.0, 0.5, 50)
    treatment = rng.normal(1.3, 5.0, 5_000)
    r = compare_means(*_sums(control), *_sums(treatment))
    assert stats.ttest_ind(treatment, control, equal_var=False).pvalue < 0.05
    assert stats.ttest_ind(treatment, control, equal_var=True).pvalue > 0.05
    assert r.diff_low > 0 and not r.conclusive
    assert r.verdict.startswith("Too early to conclude: the difference leans on a few large values")


def test_clear_revenue_uplift_is_conclusive() -> None:
    rng = np.random.default_rng(4)
    control, treatment = _heavy_tailed(rng, 50_000, 0.03), _heavy_tailed(rng, 50_000, 0.04)
    r = compare_means(*_sums(control), *_sums(treatment))
    assert r.conclusive and r.verdict.startswith("Revenue per visitor is higher with treatment")


@pytest.mark.parametrize(
    "sums",
    [
        (0, 0, 0, 100, 50, 500),  # nobody in control
        (1, 5, 25, 100, 50, 500),  # one visitor: no spread to measure
        (300, 0, 0, 3_000, 500, 50_000),  # no order in control yet
        (300, 0, 0, 3_000, 0, 0),  # no order at all
        (1_000, 2_000, 40_000, 1_000, 2_000, 40_000),  # identical arms
        (1_000, 0, 0, 1_000, 0, 0),
    ],
)
def test_mean_edge_cases_are_inconclusive_never_nan(sums) -> None:
    r = compare_means(*sums)
    assert not r.conclusive
    _shown_to_staff(r)
    assert r.verdict.startswith(("Not enough data", "Too early", "No clear difference"))


def test_fieller_interval_is_unbounded_while_control_is_indistinguishable_from_zero() -> None:
    # control: 2 buyers in 300 visitors; treatment clearly above 0
    r = compare_means(300, 120, 7_200, 3_000, 6_000, 360_000)
    assert r.uplift is not None and r.uplift_low is None and r.uplift_high is None
    assert "difference" in r.verdict  # it reports the absolute difference instead
    _shown_to_staff(r)


# ------------------------------------------------------------------------------------------ ratios (CTR)


def test_ratio_delta_method_against_the_linearised_raw_arrays() -> None:
    rng = np.random.default_rng(5)

    def arm(n: int, ctr: float) -> tuple[np.ndarray, np.ndarray]:
        shown = rng.geometric(0.25, n) * 4
        return rng.binomial(shown, np.minimum(ctr * rng.gamma(2.0, 0.5, n), 1)), shown

    def sums(x: np.ndarray, y: np.ndarray) -> RatioSums:
        return RatioSums(len(x), x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum())

    (xc, yc), (xt, yt) = arm(4_000, 0.015), arm(36_000, 0.02)
    r = compare_ratios(sums(xc, yc), sums(xt, yt))

    def variance(x: np.ndarray, y: np.ndarray) -> float:  # the variance of the mean of (x - R y) / mean(y)
        ratio = x.sum() / y.sum()
        return float(np.var((x - ratio * y) / y.mean(), ddof=1) / len(x))

    se = math.sqrt(variance(xc, yc) + variance(xt, yt))
    diff = xt.sum() / yt.sum() - xc.sum() / yc.sum()
    assert r.diff == pytest.approx(diff)
    assert (r.diff_low, r.diff_high) == pytest.approx((diff - Z * se, diff + Z * se), rel=1e-9)
    assert r.p_value == pytest.approx(2 * stats.norm.sf(abs(diff) / se), rel=1e-9)
    # visitors who click much more than others: the per-impression interval is narrower than the right one
    per_impression = compare_proportions(xc.sum(), yc.sum(), xt.sum(), yt.sum(), metric="CTR", unit="impressions")
    assert per_impression.diff_high - per_impression.diff_low < r.diff_high - r.diff_low


@pytest.mark.parametrize(
    ("control", "treatment"),
    [
        (RatioSums(0, 0, 0, 0, 0, 0), RatioSums(10, 2, 40, 2, 160, 8)),
        (RatioSums(10, 0, 0, 0, 0, 0), RatioSums(10, 2, 40, 2, 160, 8)),  # no impressions in control
        (RatioSums(10, 0, 40, 0, 160, 0), RatioSums(10, 0, 40, 0, 160, 0)),  # no clicks
        (RatioSums(100, 5, 400, 5, 1_600, 20), RatioSums(100, 5, 400, 5, 1_600, 20)),
    ],
)
def test_ratio_edge_cases_are_inconclusive_never_nan(control, treatment) -> None:
    r = compare_ratios(control, treatment)
    assert not r.conclusive
    _shown_to_staff(r)


# ------------------------------------------------------------------------------------------ sample size


def test_sample_size_for_rates_is_the_textbook_formula() -> None:
    # equal arms: n = 2 ((z_{1 - alpha / 2} + z_{power}) / h)^2, Cohen's h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1));
    # 10 % -> 12 %: 3,835 per arm (Evan Miller's calculator, another approximation, says 3,841)
    h = 2 * math.asin(math.sqrt(0.12)) - 2 * math.asin(math.sqrt(0.10))
    n = 2 * ((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / h) ** 2
    size = sample_size_per_arm(0.10, 0.20)
    assert size.control == size.treatment == math.ceil(n) and size.total == 2 * math.ceil(n)
    assert abs(float(proportion_effectsize(0.12, 0.10))) == pytest.approx(h)
    # a 10 % holdout: n_control = (1 + 1/9) (z + z)^2 / h^2, nine treatment visitors per control visitor
    holdout = sample_size_per_arm(0.10, 0.20, control_share=0.1)
    assert holdout.control == math.ceil(n / 2 * (1 + 1 / 9))
    assert holdout.treatment == pytest.approx(9 * holdout.control, abs=9)


def test_sample_size_for_means_is_the_textbook_formula() -> None:
    # equal arms: n = 2 (z + z)^2 sd^2 / delta^2
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.9)
    size = sample_size_per_arm(3.0, 0.10, sd=25.0, power=0.9)
    assert size.control == math.ceil(2 * z**2 * 25.0**2 / 0.3**2)
    assert sample_size_per_arm(3.0, -0.10, sd=25.0, power=0.9).control == size.control
    for bad in [dict(baseline=0.0, relative_uplift=0.1), dict(baseline=0.5, relative_uplift=1.5)]:
        with pytest.raises(ValueError):
            sample_size_per_arm(**bad)
    with pytest.raises(ValueError):
        sample_size_per_arm(0.1, 0.0)
    with pytest.raises(ValueError):
        sample_size_per_arm(3.0, 0.1, sd=0.0)


# ------------------------------------------------------------------------------------------ properties


def _le(a: float, b: float) -> bool:
    """``a <= b`` up to rounding."""
    return a <= b + 1e-9 * max(1.0, abs(a), abs(b))


def _contains(low: float | None, high: float | None, value: float) -> bool:
    return (low is None or _le(low, value)) and (high is None or _le(value, high))


def _nested(wide: Comparison, narrow: Comparison) -> bool:
    """``wide``'s intervals contain ``narrow``'s (a missing bound is unbounded)."""
    for lo, hi in (("diff_low", "diff_high"), ("uplift_low", "uplift_high")):
        w_lo, w_hi, n_lo, n_hi = (getattr(wide, lo), getattr(wide, hi), getattr(narrow, lo), getattr(narrow, hi))
        if n_lo is None and n_hi is None:
            continue
        assert w_lo is None or (n_lo is not None and _le(w_lo, n_lo)), (lo, w_lo, n_lo)
        assert w_hi is None or (n_hi is not None and _le(n_hi, w_hi)), (hi, w_hi, n_hi)
    return True


@st.composite
def _counts(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n_c = draw(st.integers(1, 50_000))
    n_t = draw(st.integers(1, 50_000))
    return draw(st.integers(0, n_c)), n_c, draw(st.integers(0, n_t)), n_t


@settings(max_examples=150, deadline=None)
@given(counts=_counts(), alphas=st.tuples(st.floats(0.001, 0.3), st.floats(0.001, 0.3)))
def test_proportion_intervals_hold_the_estimate_and_widen_as_alpha_shrinks(counts, alphas) -> None:
    small, large = sorted(alphas)
    wide, narrow = compare_proportions(*counts, alpha=small), compare_proportions(*counts, alpha=large)
    for r in (wide, narrow):
        _shown_to_staff(r)
        if r.diff_low is not None:
            assert _contains(r.diff_low, r.diff_high, r.diff)
        if r.uplift is not None:
            assert _contains(r.uplift_low, r.uplift_high, r.uplift)
        if r.conclusive:  # never an effect the intervals do not support
            assert r.diff_low > 0 or r.diff_high < 0
            assert r.p_value < r.alpha
    assert _nested(wide, narrow)


@st.composite
def _mean_sums(draw: st.DrawFn) -> tuple[float, ...]:
    out: list[float] = []
    for _ in range(2):
        n = draw(st.integers(2, 100_000))
        mean = draw(st.floats(0, 50))
        sd = draw(st.floats(0, 200))
        out += [n, mean * n, (n - 1) * sd * sd + n * mean * mean]
    return tuple(out)


@settings(max_examples=150, deadline=None)
@given(sums=_mean_sums(), alphas=st.tuples(st.floats(0.001, 0.3), st.floats(0.001, 0.3)))
def test_mean_intervals_hold_the_estimate_and_widen_as_alpha_shrinks(sums, alphas) -> None:
    small, large = sorted(alphas)
    wide, narrow = compare_means(*sums, alpha=small), compare_means(*sums, alpha=large)
    for r in (wide, narrow):
        _shown_to_staff(r)
        if r.diff_low is not None:
            assert _contains(r.diff_low, r.diff_high, r.diff)
        if r.uplift is not None and (r.uplift_low is not None or r.uplift_high is not None):
            assert _contains(r.uplift_low, r.uplift_high, r.uplift)
        if r.conclusive:
            assert r.diff_low > 0 or r.diff_high < 0
    assert _nested(wide, narrow)
