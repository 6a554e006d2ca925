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

Modules:

* :mod:`.bgnbd` - :class:`BetaGeoModel` (purchases and dropout);
* :mod:`.gamma_gamma` - :class:`GammaGammaModel` (spend per transaction);
* :mod:`.value` - :func:`customer_lifetime_value` (the two combined, month by month);
* :mod:`.summary` - :func:`summarise_transactions` (a transaction log as model inputs);
* :mod:`.churn` - :func:`probability_active_below` and :func:`overdue_gaps`;
* :mod:`.fitting` - input checks, row aggregation and the optimiser both models share;
* :mod:`.errors` - :class:`InsufficientDataError` and :class:`CLVFitError`.

The per-customer log-likelihoods and the weighted totals with their gradients are importable
from here as well, for tests that check them against the published formulas.
"""

from segmentation.ml.clv.bgnbd import BetaGeoModel
from segmentation.ml.clv.bgnbd import _bgnbd_total_and_grad as _bgnbd_total_and_grad
from segmentation.ml.clv.bgnbd import bgnbd_log_likelihood as bgnbd_log_likelihood
from segmentation.ml.clv.churn import overdue_gaps, probability_active_below
from segmentation.ml.clv.errors import CLVFitError, InsufficientDataError
from segmentation.ml.clv.fitting import _Rows as _Rows
from segmentation.ml.clv.gamma_gamma import GammaGammaModel
from segmentation.ml.clv.gamma_gamma import _gamma_gamma_total_and_grad as _gamma_gamma_total_and_grad
from segmentation.ml.clv.gamma_gamma import gamma_gamma_log_likelihood as gamma_gamma_log_likelihood
from segmentation.ml.clv.summary import summarise_transactions
from segmentation.ml.clv.value import DAYS_PER_MONTH, customer_lifetime_value

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
