"""Predicted customer value: BG/NBD purchases month by month times Gamma-Gamma spend."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from segmentation.ml.clv.bgnbd import BetaGeoModel
from segmentation.ml.clv.fitting import _as_1d, _check_rft
from segmentation.ml.clv.gamma_gamma import GammaGammaModel

DAYS_PER_MONTH = 365.25 / 12


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
