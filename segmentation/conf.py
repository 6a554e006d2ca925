"""The ``SEGMENTATION`` settings dict: every key declared once, in :data:`SETTINGS`.

Read values as attributes of :data:`app_settings` (``app_settings.SEGMENT_RULES``);
the object re-reads ``settings.SEGMENTATION`` whenever tests override it. The declarations
give the system check of the keys and types (``segmentation.E002``) and README.md's table
(``python scripts/settings_table.py --write``).
"""

from __future__ import annotations

from types import NoneType

from personalization_core.conf import AppSettings, Setting

__all__ = ["SETTINGS", "SETTINGS_NAME", "app_settings"]

SETTINGS_NAME = "SEGMENTATION"

SETTINGS = [
    # Which orders count
    Setting("EXCLUDED_STATUSES", (list, tuple), ["Cancelled"], "orders in these statuses are ignored entirely"),
    Setting(
        "REFUNDED_STATUSES",
        (list, tuple),
        ["Refunded"],
        "paid then fully refunded: counts as a purchase worth 0. An order with a negative total (a credit"
        " note, as the importer writes cancellation invoices) is always netted from spend and never "
        "counts as a purchase",
    ),
    Setting(
        "SUBTRACT_PAYMENT_REFUNDS", bool, True, "subtract partial refunds recorded on `payment.Source.amount_refunded`"
    ),
    Setting(
        "CURRENCY_RATES",
        dict,
        {},
        'e.g. `{"EUR": "0.85"}` converts to `OSCAR_DEFAULT_CURRENCY`; orders in a currency without a rate'
        " are left out, and each run records how many",
    ),
    Setting(
        "INCLUDE_GUESTS",
        bool,
        True,
        "segment guest orders too, grouped by lower-cased `guest_email`; `False`: registered customers only",
    ),
    Setting(
        "LOOKBACK_DAYS", (int, NoneType), None, "only orders of the last N days before the as-of date (`None`: all)"
    ),
    # Segments and clusters
    Setting(
        "SEGMENT_RULES",
        (list, tuple, NoneType),
        None,
        'the named-segment rule table (list of `{"name", "r": [lo, hi], "fm": [lo, hi]}`, first match '
        "wins); `None` uses `segmentation.ml.rfm.DEFAULT_SEGMENT_RULES` (11 standard segments)",
    ),
    Setting("FALLBACK_SEGMENT", str, "Unclassified", "name for score cells no rule covers"),
    Setting("K_MIN", int, 2, "KMeans k is chosen by silhouette from `K_MIN` to `K_MAX`"),
    Setting("K_MAX", int, 8, "see `K_MIN`"),
    Setting(
        "CLUSTER_SAMPLE_SIZE",
        int,
        20000,
        "KMeans and silhouette run on a deterministic sample of this size; everyone is then assigned",
    ),
    Setting("RANDOM_STATE", int, 0, "seed for sampling and KMeans"),
    # Predicted value (BG/NBD + Gamma-Gamma)
    Setting(
        "CLV_ENABLED",
        bool,
        True,
        "fit BG/NBD + Gamma-Gamma for probability active, expected purchases and predicted value",
    ),
    Setting(
        "FORECAST_HORIZON_MONTHS",
        (str, int),
        "auto",
        "months the predicted value and churn probability look ahead, and the backtest that picks and "
        'calibrates their model holds out: `"auto"` takes half the shop\'s order history in whole months, '
        "from 1 to 12 (two years of orders give 12, thirteen months give 6), so the horizon shown is one the "
        "shop's own history has tested; a number fixes it (with fewer than twice as many months of orders "
        "the backtest has little to learn from)",
    ),
    Setting("CLV_HORIZON_DAYS", int, 90, 'horizon of "expected purchases"'),
    Setting("CLV_PENALIZER", (int, float), 0.001, "L2 penalty on the log-parameters of both fits"),
    Setting("CLV_FIT_SAMPLE_SIZE", int, 50000, "fit on a sample of this many customers, predict for everyone"),
    Setting("CLV_MONTHLY_DISCOUNT_RATE", (int, float), 0.0, "discount rate for the predicted value"),
    Setting(
        "FORECAST_MODEL",
        str,
        "auto",
        'which model gives the predicted value and churn probability: `"auto"` takes the winner of the '
        'run\'s backtest; or `"bgnbd"`, `"last_period"`, `"gbm_two_part"`, `"gbm_poisson"` '
        "(`segmentation/ml/forecast.py`)",
    ),
    Setting(
        "FORECAST_CANDIDATES",
        (list, tuple),
        ["bgnbd", "last_period", "gbm_two_part", "gbm_poisson"],
        "the models the backtest compares",
    ),
    Setting(
        "FORECAST_CALIBRATE",
        bool,
        False,
        "scale the chosen model's predicted values so that its total in the backtest would have been right; "
        "off by default: on Online Retail and CDNOW (`benchmarks/clv_backtest.py`) the backtest's period differed "
        "from the next one (the season, the customers' age) and scaling moved every total further from the "
        "truth; the page shows the backtest's ratio either way",
    ),
    Setting(
        "BACKTEST_ENABLED",
        bool,
        True,
        "every run backtests the candidates on the shop's own orders: fitted on all but the last "
        "`FORECAST_HORIZON_MONTHS`, scored on those months (total, MAE, RMSE, Spearman, top-10/20 % capture, "
        "calibration by decile, churn AUC); shown on the dashboard",
    ),
    Setting(
        "BACKTEST_MIN_CUSTOMERS",
        int,
        50,
        "with fewer customers before the backtest's cutoff there is no backtest, and BG/NBD is used",
    ),
    Setting(
        "BACKTEST_SAMPLE_CUSTOMERS",
        int,
        50000,
        "larger shops are backtested on a deterministic sample of this many customers (the chosen model "
        "still predicts for everyone)",
    ),
    # Churn risk
    Setting(
        "CHURN_PROBABILITY_ABOVE",
        (int, float),
        0.5,
        "churn risk: the chosen model's probability of no order in the next `FORECAST_HORIZON_MONTHS` above this (the "
        "same model gives the predicted value, so flag and value agree)",
    ),
    Setting(
        "CHURN_P_ALIVE_BELOW",
        (int, float),
        0.5,
        'the "low probability active" flag (BG/NBD); churn risk only when no churn probability is available',
    ),
    Setting(
        "CHURN_OVERDUE_GAPS",
        (int, float),
        2.0,
        'the "overdue" flag: days since the last order above this many of the customer\'s typical gaps; '
        "churn risk only when no churn probability is available",
    ),
    # Storage and scheduling
    Setting("BATCH_SIZE", int, 5000, "memberships per insert batch (PostgreSQL uses COPY)"),
    Setting("PG_WORK_MEM", str, "256MB", "`SET LOCAL work_mem` for the grouped RFM query on PostgreSQL"),
    Setting(
        "KEEP_RUNS",
        (int, NoneType),
        30,
        "older runs and their memberships are deleted after a successful run; `None` keeps all",
    ),
    Setting("TASK_LOCK_TIMEOUT", int, 6 * 3600, "seconds the nightly task may hold its no-overlap lock"),
    Setting("CACHE_TIMEOUT", int, 3600, "seconds a shopper's current segment is cached"),
]

app_settings = AppSettings(SETTINGS_NAME, SETTINGS)
