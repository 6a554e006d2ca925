"""What the BG/NBD and Gamma-Gamma fits share: input checks, row aggregation, the optimiser.

Parameters are fitted on the log scale (all must be positive): :func:`_objective` turns a
log-likelihood with its gradient into the mean negative log-likelihood in log-parameters, and
:func:`_fit_log_params` minimises it. Identical input rows are aggregated with weights
(:func:`_aggregate`, :class:`_Rows`) so that large shops fit quickly.

The names here are private to :mod:`segmentation.ml.clv`: its model modules import them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize

from segmentation.ml.clv.errors import CLVFitError

#: a function of the (log-)parameters giving a value and its gradient
ValueAndGradient = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _as_1d(name: str, values: ArrayLike) -> np.ndarray:
    """``values`` as a 1-D float array; raises ``ValueError`` when not 1-D or not all finite."""
    a = np.asarray(values, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _check_rft(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The BTYD inputs as float arrays, checked for consistency (``ValueError`` otherwise)."""
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


def _fit_log_params(neg_ll_and_grad: ValueAndGradient, x0: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
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


def _objective(loglik_and_grad: ValueAndGradient, n: float, penalizer: float) -> ValueAndGradient:
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
