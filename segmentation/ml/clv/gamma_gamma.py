"""Gamma-Gamma model of spend per transaction (Fader & Hardie 2013).

Spend per transaction ~ Gamma(p, nu), nu ~ Gamma(q, gamma); fitted on customers with repeat
purchases and their *mean repeat transaction value*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from segmentation.ml.clv.errors import CLVFitError, InsufficientDataError
from segmentation.ml.clv.fitting import _aggregate, _as_1d, _fit_log_params, _objective, _Rows, _subsample


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
