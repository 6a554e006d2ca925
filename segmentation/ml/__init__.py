"""Pure customer-segmentation models: RFM scores and segments, clustering, CLV.

Nothing in this package imports Django. Callers pass plain NumPy arrays or
pandas objects, one entry per customer (or a transaction log for
:func:`segmentation.ml.clv.summarise_transactions`), and get arrays or
DataFrames back in the same order.

* :mod:`segmentation.ml.rfm` - quintile scores 1-5 and rule-table segments.
* :mod:`segmentation.ml.clustering` - k-means on scaled R, F, M with k chosen
  by silhouette, clusters described in words.
* :mod:`segmentation.ml.clv` - BG/NBD and Gamma-Gamma models, predicted
  customer value, churn helpers.
"""

from segmentation.ml.clustering import RFMClusterer
from segmentation.ml.clv import (
    BetaGeoModel,
    CLVFitError,
    GammaGammaModel,
    InsufficientDataError,
    customer_lifetime_value,
    overdue_gaps,
    probability_active_below,
    summarise_transactions,
)
from segmentation.ml.rfm import (
    DEFAULT_FALLBACK_SEGMENT,
    DEFAULT_SEGMENT_RULES,
    RuleTableError,
    assign_segments,
    coverage_report,
    quintile_scores,
    score_rfm,
    validate_rules,
)

__all__ = [
    "DEFAULT_FALLBACK_SEGMENT",
    "DEFAULT_SEGMENT_RULES",
    "BetaGeoModel",
    "CLVFitError",
    "GammaGammaModel",
    "InsufficientDataError",
    "RFMClusterer",
    "RuleTableError",
    "assign_segments",
    "coverage_report",
    "customer_lifetime_value",
    "overdue_gaps",
    "probability_active_below",
    "quintile_scores",
    "score_rfm",
    "summarise_transactions",
    "validate_rules",
]
