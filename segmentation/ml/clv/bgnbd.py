"""BG/NBD model of repeat purchases and dropout (Fader, Hardie & Lee 2005).

Repeat purchases while alive follow a Poisson process (rate ~ Gamma(r, alpha)); after each
purchase the customer drops out with probability p ~ Beta(a, b). Inputs are the BTYD summary
(frequency x, recency t_x, age T; see :func:`~segmentation.ml.clv.summary.summarise_transactions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import betaln, digamma, gammaln, hyp2f1, logsumexp

from segmentation.ml.clv.errors import InsufficientDataError
from segmentation.ml.clv.fitting import _aggregate, _as_1d, _check_rft, _fit_log_params, _objective, _Rows, _subsample


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
