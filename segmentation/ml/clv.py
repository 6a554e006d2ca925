"""Customer lifetime value: BG/NBD, Gamma-Gamma, predicted value and churn helpers.

Models (maximum likelihood with SciPy, no extra dependency):

* BG/NBD - Fader, Hardie & Lee (2005), "Counting your customers the easy way:
  an alternative to the Pareto/NBD model", Marketing Science 24(2). Repeat
  purchases while alive follow a Poisson process (rate ~ Gamma(r, alpha));
  after each purchase the customer drops out with probability p ~ Beta(a, b).
* Gamma-Gamma - Fader & Hardie (2013), "The Gamma-Gamma model of monetary
  value". Spend per transaction ~ Gamma(p, nu), nu ~ Gamma(q, gamma); fitted on
  customers with repeat purchases and their *mean repeat transaction value*.

Inputs follow the BTYD convention (see :func:`summarise_transactions`):
``frequency`` x = number of repeat purchase periods (days with a purchase
after the first), ``recency`` t_x = time of the last purchase since the first,
``T`` = time from the first purchase to the end of calibration, all in one
time unit (weeks for the published CDNOW figures; days work equally well).

Parameters are fitted on the log scale (all must be positive), likelihoods use
``gammaln`` / ``betaln`` / log-sum-exp, and identical (x, t_x, T) rows are
aggregated with weights so large shops fit quickly.

The unmaintained ``lifetimes`` package (last release 2020) implements the same
formulas; it is used only as a cross-check in development, not as a dependency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1, logsumexp

__all__ = [
    "DAYS_PER_MONTH",
    "BetaGeoModel",
    "CLVFitError",
    "GammaGammaModel",
    "InsufficientDataError",
    "customer_lifetime_value",
    "overdue_gaps",
    "probability_active_below",
    "summarise_transactions",
]

DAYS_PER_MONTH = 365.25 / 12


class InsufficientDataError(ValueError):
    """Too little data to fit a model (e.g. fewer than 2 customers with repeat purchases).

    Callers should catch this and fall back (e.g. to RFM only, or to each
    customer's historical average spend).
    """


class CLVFitError(RuntimeError):
    """The optimiser did not reach finite, plausible parameters."""


# --------------------------------------------------------------------------- helpers


def _as_1d(name: str, values: ArrayLike) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _check_rft(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, big_t = _as_1d("frequency", frequency), _as_1d("recency", recency), _as_1d("T", T)
    if not (x.shape == t_x.shape == big_t.shape):
        raise ValueError("frequency, recency and T must have the same length")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must hold non-negative integers (repeat purchase counts)")
    if np.any(t_x < 0) or np.any(t_x > big_t + 1e-9):
        raise ValueError("need 0 <= recency <= T for every customer")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("customers with frequency 0 must have recency 0")
    return x, t_x, big_t


def _aggregate(*columns: np.ndarray, weights: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the given columns (sorted) and their summed weights."""
    frame = pd.DataFrame({f"c{j}": np.asarray(c, dtype=float) for j, c in enumerate(columns)})
    frame["_w"] = np.ones(len(frame)) if weights is None else np.asarray(weights, dtype=float)
    grouped = frame.groupby([f"c{j}" for j in range(len(columns))], sort=True)["_w"].sum()
    uniq = grouped.index.to_frame(index=False).to_numpy(dtype=float)
    return [uniq[:, j] for j in range(uniq.shape[1])], grouped.to_numpy(dtype=float)


def _subsample(n: int, max_rows: int | None, random_state: int) -> np.ndarray | None:
    """Sorted deterministic sample of row indices, or None when all rows are kept."""
    if max_rows is None or n <= max_rows:
        return None
    return np.sort(np.random.default_rng(random_state).choice(n, max_rows, replace=False))


def _fit_log_params(neg_ll_and_grad, x0: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Minimise ``neg_ll_and_grad(log_params) -> (value, gradient)``.

    L-BFGS-B with the analytic gradient; a Nelder-Mead run (value only) is the
    fallback when L-BFGS-B reports failure.
    """
    res = minimize(
        neg_ll_and_grad, x0, jac=True, method="L-BFGS-B", options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9}
    )
    best = res if np.isfinite(res.fun) and np.all(np.isfinite(res.x)) else None
    # a line-search "failure" right at the optimum (tiny gradient) is a success
    converged = best is not None and (res.success or float(np.max(np.abs(res.jac))) < 1e-6)
    if not converged:
        res2 = minimize(
            lambda theta: neg_ll_and_grad(theta)[0],
            best.x if best is not None else x0,
            method="Nelder-Mead",
            options={"xatol": 1e-7, "fatol": 1e-10, "maxfev": 4000},
        )
        if np.isfinite(res2.fun) and (best is None or res2.fun <= best.fun):
            best = res2
    if best is None or not np.all(np.isfinite(best.x)):
        raise CLVFitError("the likelihood could not be evaluated; check the inputs")
    if np.any(np.abs(best.x) > np.log(1e7)):
        raise CLVFitError(
            "parameters ran off to extreme values ("
            + ", ".join(f"{n}={v:.3g}" for n, v in zip(names, np.exp(best.x), strict=True))
            + "); the data cannot identify the model (e.g. every customer behaves identically)"
        )
    return np.exp(best.x)


def _objective(loglik_and_grad, n: float, penalizer: float):
    """Mean negative log-likelihood in log-parameters, with its gradient."""

    def f(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        ll, grad = loglik_and_grad(params)
        value = -ll / n + penalizer * float(np.sum(log_params**2))
        g = -grad * params / n + 2.0 * penalizer * log_params  # chain rule d/dlog(theta) = theta * d/dtheta
        if not np.isfinite(value) or not np.all(np.isfinite(g)):
            return np.inf, np.zeros_like(log_params)
        return value, g

    return f


# --------------------------------------------------------------------------- BG/NBD


def bgnbd_log_likelihood(params: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (FHL 2005, eq. 6) for ``params = (r, alpha, a, b)``."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    term_alive = betaln(a, b + x) - (r + x) * np.log(alpha + big_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        term_dropped = np.where(
            x > 0, betaln(a + 1, np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf
        )
    return common + logsumexp(np.stack([term_alive, term_dropped]), axis=0)


@dataclass
class _Rows:
    """Aggregated fitting rows plus the index of each row's frequency among the unique ones.

    Everything that depends on the parameters and x only (gammaln, betaln,
    digamma) is evaluated once per distinct x, then gathered; this makes a
    likelihood evaluation cost a handful of vector operations per row.
    """

    x: np.ndarray
    w: np.ndarray
    cols: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        self.ux, inverse = np.unique(self.x, return_inverse=True)
        self.xi = inverse.ravel()
        self.wx = np.bincount(self.xi, weights=self.w, minlength=len(self.ux))


def _bgnbd_total_and_grad(params: np.ndarray, d: _Rows) -> tuple[float, np.ndarray]:
    """Weighted total BG/NBD log-likelihood and its gradient in (r, alpha, a, b)."""
    r, alpha, a, b = (float(v) for v in params)
    t_x, big_t = d.cols
    ux, xi, w = d.ux, d.xi, d.w
    rep_u = ux > 0
    bx1_u = np.where(rep_u, b + ux - 1, 1.0)  # placeholder where x = 0 (term unused)
    lb1_u = betaln(a, b + ux)
    lb2_u = np.where(rep_u, betaln(a + 1, bx1_u), -np.inf)
    psi_abx_u = digamma(a + b + ux)
    rx = r + d.x
    ln_at, ln_atx = np.log(alpha + big_t), np.log(alpha + t_x)
    a1 = lb1_u[xi] - rx * ln_at
    a2 = lb2_u[xi] - rx * ln_atx  # -inf for x = 0: no "dropped after last purchase" term
    lse = np.logaddexp(a1, a2)
    w1, w2 = np.exp(a1 - lse), np.exp(a2 - lse)
    n = d.wx.sum()
    ll = d.wx @ gammaln(r + ux) + n * (r * np.log(alpha) - gammaln(r) - betaln(a, b)) + w @ lse
    ww1, ww2 = w * w1, w * w2
    s1_u = np.bincount(xi, weights=ww1, minlength=len(ux))  # sum of w * w1 per distinct x
    s2_u = np.bincount(xi, weights=ww2, minlength=len(ux))
    d_r = d.wx @ digamma(r + ux) + n * (np.log(alpha) - digamma(r)) - (ww1 @ ln_at + ww2 @ ln_atx)
    d_alpha = n * r / alpha - (ww1 * rx) @ (1.0 / (alpha + big_t)) - (ww2 * rx) @ (1.0 / (alpha + t_x))
    d_a = -n * (digamma(a) - digamma(a + b)) + s1_u @ (digamma(a) - psi_abx_u) + s2_u @ (digamma(a + 1) - psi_abx_u)
    d_b = (
        -n * (digamma(b) - digamma(a + b))
        + s1_u @ (digamma(b + ux) - psi_abx_u)
        + s2_u @ np.where(rep_u, digamma(bx1_u) - psi_abx_u, 0.0)
    )
    return float(ll), np.array([d_r, d_alpha, d_a, d_b])


@dataclass
class BetaGeoModel:
    """BG/NBD model of repeat purchases and dropout (Fader, Hardie & Lee 2005).

    >>> model = BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])
    >>> model.params_              # {"r": ..., "alpha": ..., "a": ..., "b": ...}
    >>> model.probability_alive(f, rec, T)
    >>> model.expected_purchases(52, f, rec, T)   # next 52 time units

    ``penalizer`` adds ``penalizer * sum(log(param)**2)`` to the negative
    log-likelihood (0 = plain maximum likelihood, as published). With more
    than ``max_fit_rows`` input rows the fit uses a deterministic random sample
    of that many rows (``random_state``); 200,000 customers pin the four
    parameters far more tightly than the model is right, and keep a
    million-customer shop to a few seconds. Predictions are for every customer.
    """

    penalizer: float = 0.0
    min_repeat_customers: int = 2
    max_fit_rows: int | None = 200_000
    random_state: int = 0
    #: length in days of the time unit of recency, T and every horizon (7 = weeks, 1 = days).
    #: :func:`customer_lifetime_value` reads it, so a model fitted in days cannot be valued in weeks.
    days_per_unit: float = 7.0

    def __post_init__(self) -> None:
        if not (isinstance(self.days_per_unit, int | float) and self.days_per_unit > 0):
            raise ValueError(f"days_per_unit must be a positive number of days, not {self.days_per_unit!r}")

    @classmethod
    def for_summary(cls, summary: pd.DataFrame, **kwargs: object) -> BetaGeoModel:
        """A model in the time unit of a :func:`summarise_transactions` frame (``summary.attrs``)."""
        unit = summary.attrs.get("days_per_unit")
        if unit is None:
            raise ValueError("the summary does not say its time unit; build it with summarise_transactions")
        return cls(days_per_unit=float(unit), **kwargs)  # type: ignore[arg-type]

    def fit(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
    ) -> BetaGeoModel:
        """Fit by maximum likelihood. ``weights`` counts customers per row (aggregated input).

        Raises :class:`InsufficientDataError` with fewer than
        ``min_repeat_customers`` customers with repeat purchases, and
        :class:`CLVFitError` when the optimum is not identified.
        """
        x, t_x, big_t = _check_rft(frequency, recency, T)
        w = np.ones_like(x) if weights is None else _as_1d("weights", weights)
        if len(w) != len(x) or np.any(w < 0):
            raise ValueError("weights must be non-negative and as long as frequency")
        n_customers = float(w.sum())
        n_repeat = float(w[x > 0].sum())
        if n_customers < 2 or n_repeat < self.min_repeat_customers:
            raise InsufficientDataError(
                f"BG/NBD needs at least {self.min_repeat_customers} customers with repeat purchases "
                f"(have {n_repeat:g} of {n_customers:g} customers)"
            )
        if float(big_t[w > 0].max()) <= 0:
            raise InsufficientDataError("every customer has age T = 0; nothing to learn from")
        sample = _subsample(len(x), self.max_fit_rows, self.random_state)
        if sample is not None:
            x, t_x, big_t, w = x[sample], t_x[sample], big_t[sample], w[sample]
            n_customers = float(w.sum())
        (x, t_x, big_t), w = _aggregate(x, t_x, big_t, weights=w)
        scale = float(np.average(big_t, weights=w)) or 1.0  # start alpha near the typical age

        rows = _Rows(x, w, (t_x, big_t))
        neg_ll = _objective(lambda p: _bgnbd_total_and_grad(p, rows), n_customers, self.penalizer)

        x0 = np.log([1.0, scale, 1.0, 1.0])
        r, alpha, a, b = _fit_log_params(neg_ll, x0, ("r", "alpha", "a", "b"))
        self.params_ = {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b)}
        self.log_likelihood_ = _bgnbd_total_and_grad(np.array([r, alpha, a, b]), rows)[0]
        self.n_fit_customers_ = round(n_customers)
        return self

    def _p(self) -> tuple[float, float, float, float]:
        if not hasattr(self, "params_"):
            raise RuntimeError("call fit() first")
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def _log_dropout_odds(self, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
        """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x): odds of "dropped out after the last purchase"."""
        r, alpha, a, b = self._p()
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (
                np.log(a)
                - np.log(np.maximum(b + x - 1, 1e-300))
                + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
            )
        return np.where(x > 0, np.minimum(out, 700.0), -np.inf)

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """P(customer still active at T | x, t_x, T) (FHL 2005, eq. 13); 1 for x = 0."""
        x, t_x, big_t = _check_rft(frequency, recency, T)
        return 1.0 / (1.0 + np.exp(self._log_dropout_odds(x, t_x, big_t)))

    @staticmethod
    def _distinct_pairs(x: np.ndarray, big_t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Factorise (x, T) pairs: ``codes`` per customer and the distinct ``x``, ``T``."""
        t_codes, t_uniques = pd.factorize(big_t)
        key = x.astype(np.int64) * len(t_uniques) + t_codes
        codes, key_uniques = pd.factorize(key)
        return codes, (key_uniques // len(t_uniques)).astype(float), t_uniques[key_uniques % len(t_uniques)]

    def _unconditional_part(self, t: float | np.ndarray, x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
        """Numerator of FHL eq. 10. It depends on (x, T) only: callers with many customers
        evaluate it on :meth:`_distinct_pairs` so that hyp2f1 runs once per distinct pair."""
        r, alpha, a, b = self._p()
        if abs(a - 1.0) < 1e-7:  # removable singularity of the closed form at a = 1
            a = 1.0 + 1e-7
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + big_t + t))
        bracket = 1.0 - np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t))) * hyp
        return (a + b + x - 1) / (a - 1) * bracket

    def expected_purchases(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """E[repeat purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10).

        ``t`` is a horizon in the model's time unit, one number or one per customer.
        """
        x, t_x, big_t = _check_rft(frequency, recency, T)
        denominator = 1.0 + np.exp(self._log_dropout_odds(x, t_x, big_t))
        if np.ndim(t) == 0:
            if float(t) <= 0:
                return np.zeros_like(x)
            codes, ux, ut = self._distinct_pairs(x, big_t)
            return self._unconditional_part(float(t), ux, ut)[codes] / denominator
        t_arr = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
        return np.where(t_arr > 0, self._unconditional_part(np.maximum(t_arr, 0.0), x, big_t) / denominator, 0.0)

    def probability_no_purchase(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """P(no purchase in (T, T + t] | x, t_x, T): a churn probability for every customer.

        Dropped out, or still active with no purchase in the next ``t`` units::

            1 - P(alive) + P(alive) * ((alpha + T) / (alpha + T + t)) ** (r + x)

        (given active, the purchase rate is Gamma(r + x, alpha + T) a posteriori).
        Unlike :meth:`probability_alive`, it is below 1 for one-time buyers too.
        """
        x, t_x, big_t = _check_rft(frequency, recency, T)
        r, alpha, _a, _b = self._p()
        t_arr = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
        if np.any(t_arr < 0):
            raise ValueError("t must be >= 0")
        alive = 1.0 / (1.0 + np.exp(self._log_dropout_odds(x, t_x, big_t)))
        quiet = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t_arr)))
        return 1.0 - alive + alive * quiet

    def expected_purchases_new_customer(self, t: float | ArrayLike) -> np.ndarray:
        """E[X(t)] for a customer just acquired (FHL 2005, eq. 9)."""
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        hyp = hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1.0 - (alpha / (alpha + t)) ** r * hyp)


# --------------------------------------------------------------------------- Gamma-Gamma


def gamma_gamma_log_likelihood(params: ArrayLike, frequency: ArrayLike, monetary: ArrayLike) -> np.ndarray:
    """Per-customer log density of the mean spend ``monetary`` over ``frequency`` transactions.

    ``params = (p, q, gamma)``; Fader & Hardie (2013), eq. 3 (density of the
    sample mean z = m_x given x transactions).
    """
    p, q, gam = (float(v) for v in params)
    x, m = np.asarray(frequency, dtype=float), np.asarray(monetary, dtype=float)
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(gam)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(gam + m * x)
    )


def _gamma_gamma_total_and_grad(params: np.ndarray, d: _Rows) -> tuple[float, np.ndarray]:
    """Weighted total Gamma-Gamma log-likelihood and its gradient in (p, q, gamma)."""
    p, q, gam = (float(v) for v in params)
    (m, ln_m) = d.cols
    ux, wx, w, x = d.ux, d.wx, d.w, d.x
    pux = p * ux
    ln_ux = np.log(ux)
    ln_gmx = np.log(gam + m * x)
    n = wx.sum()
    ll = (
        wx @ (gammaln(pux + q) - gammaln(pux) + pux * ln_ux)
        + n * (q * np.log(gam) - gammaln(q))
        + w @ ((p * x - 1) * ln_m - (p * x + q) * ln_gmx)
    )
    psi_u = digamma(pux + q)
    d_p = wx @ (ux * (psi_u - digamma(pux) + ln_ux)) + (w * x) @ (ln_m - ln_gmx)
    d_q = wx @ psi_u + n * (np.log(gam) - digamma(q)) - w @ ln_gmx
    d_gamma = n * q / gam - w @ ((p * x + q) / (gam + m * x))
    return float(ll), np.array([d_p, d_q, d_gamma])


@dataclass
class GammaGammaModel:
    """Gamma-Gamma model of spend per transaction (Fader & Hardie 2013).

    Fit on customers with ``frequency > 0`` and their mean *repeat* transaction
    value; rows with frequency 0 or non-positive spend are ignored (the model
    is for positive amounts). ``max_fit_rows`` / ``random_state``: as in
    :class:`BetaGeoModel`. Assumes spend is independent of frequency - check
    ``np.corrcoef(frequency, monetary)`` is small.
    """

    penalizer: float = 0.0
    min_customers: int = 2
    max_fit_rows: int | None = 200_000
    random_state: int = 0

    def fit(self, frequency: ArrayLike, monetary: ArrayLike, weights: ArrayLike | None = None) -> GammaGammaModel:
        x, m = _as_1d("frequency", frequency), _as_1d("monetary", monetary)
        if x.shape != m.shape:
            raise ValueError("frequency and monetary must have the same length")
        w = np.ones_like(x) if weights is None else _as_1d("weights", weights)
        keep = (x > 0) & (m > 0) & (w > 0)
        x, m, w = x[keep], m[keep], w[keep]
        sample = _subsample(len(x), self.max_fit_rows, self.random_state)
        if sample is not None:
            x, m, w = x[sample], m[sample], w[sample]
        n = float(w.sum())
        if n < self.min_customers or len(np.unique(m)) < 2:
            raise InsufficientDataError(
                f"Gamma-Gamma needs at least {self.min_customers} customers with repeat purchases and "
                f"positive, not all identical, spend (have {n:g})"
            )
        (x, m), w = _aggregate(x, m, weights=w)
        mean_m = float(np.average(m, weights=w))

        rows = _Rows(x, w, (m, np.log(m)))
        neg_ll = _objective(lambda prm: _gamma_gamma_total_and_grad(prm, rows), n, self.penalizer)

        x0 = np.log([1.0, 2.0, mean_m])  # with q = 2, E[spend] = p * gamma / (q - 1) = mean_m
        p, q, gam = _fit_log_params(neg_ll, x0, ("p", "q", "gamma"))
        self.params_ = {"p": float(p), "q": float(q), "gamma": float(gam)}
        self.log_likelihood_ = _gamma_gamma_total_and_grad(np.array([p, q, gam]), rows)[0]
        self.n_fit_customers_ = round(n)
        return self

    def expected_average_spend(self, frequency: ArrayLike, monetary: ArrayLike) -> np.ndarray:
        """E[spend per transaction | x, m_x] (FH 2013, eq. 5); the population mean for x = 0.

        A weighted average of the population mean ``p * gamma / (q - 1)`` and
        the customer's own mean, with more weight on the own mean the more
        transactions it rests on. Needs q > 1 (finite population mean).
        """
        if not hasattr(self, "params_"):
            raise RuntimeError("call fit() first")
        p, q, gam = self.params_["p"], self.params_["q"], self.params_["gamma"]
        if q <= 1:
            raise CLVFitError(f"q = {q:.3g} <= 1: the fitted population mean spend is infinite")
        x = _as_1d("frequency", frequency)
        m = np.clip(_as_1d("monetary", monetary), 0, None)
        m = np.where(x > 0, m, 0.0)
        return p * (gam + x * m) / (p * x + q - 1)

    @property
    def population_mean_spend_(self) -> float:
        p, q, gam = self.params_["p"], self.params_["q"], self.params_["gamma"]
        return p * gam / (q - 1) if q > 1 else float("inf")


# --------------------------------------------------------------------------- CLV


def customer_lifetime_value(
    bgnbd: BetaGeoModel,
    gamma_gamma: GammaGammaModel | None,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary: ArrayLike,
    *,
    months: int = 12,
    days_per_unit: float | None = None,
    monthly_discount_rate: float = 0.0,
) -> np.ndarray:
    """Predicted value of each customer over the next ``months`` months.

    Expected repeat transactions per month (BG/NBD) x expected spend per
    transaction (Gamma-Gamma, or ``monetary`` itself when ``gamma_gamma`` is
    None - the fallback when Gamma-Gamma could not be fitted), each month
    discounted by ``(1 + monthly_discount_rate) ** month``.

    The time unit of recency and T is the model's own ``bgnbd.days_per_unit``
    (7 for weeks, 1 for days). ``days_per_unit`` may be passed to state it
    once more; a value that differs from the model's raises ``ValueError``
    instead of silently scaling the months by the wrong factor.
    """
    if months < 1:
        raise ValueError("months must be >= 1")
    model_unit = float(getattr(bgnbd, "days_per_unit", 7.0))
    if days_per_unit is not None and abs(float(days_per_unit) - model_unit) > 1e-9:
        raise ValueError(
            f"days_per_unit={days_per_unit} disagrees with the model's time unit ({model_unit} days); "
            "fit the model with BetaGeoModel(days_per_unit=...) in the unit of recency and T"
        )
    days_per_unit = model_unit
    x, t_x, big_t = _check_rft(frequency, recency, T)
    m = _as_1d("monetary", monetary)
    spend = gamma_gamma.expected_average_spend(x, m) if gamma_gamma is not None else np.clip(m, 0, None)
    month = DAYS_PER_MONTH / days_per_unit
    denominator = 1.0 + np.exp(bgnbd._log_dropout_odds(x, t_x, big_t))
    codes, ux, ut = bgnbd._distinct_pairs(x, big_t)
    value = np.zeros_like(x)
    previous = np.zeros_like(x)
    for i in range(1, months + 1):
        cumulative = bgnbd._unconditional_part(i * month, ux, ut)[codes] / denominator
        value += (cumulative - previous) * spend / (1.0 + monthly_discount_rate) ** i
        previous = cumulative
    return value


# --------------------------------------------------------------------------- data prep


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


# --------------------------------------------------------------------------- churn


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
