"""The ``SEGMENTATION`` settings dict, merged over documented defaults.

Read values as attributes of :data:`app_settings` (``app_settings.SEGMENT_RULES``);
the object re-reads ``settings.SEGMENTATION`` whenever tests override it.
Every key is documented in README.md ("Settings"). The class is
:class:`personalization_core.conf.AppSettings` (one implementation for both apps).
"""

from __future__ import annotations

from typing import Any

from personalization_core.conf import AppSettings

SETTINGS_NAME = "SEGMENTATION"

DEFAULTS: dict[str, Any] = {
    # Which orders count
    "EXCLUDED_STATUSES": ["Cancelled"],  # orders in these statuses are ignored entirely
    # Orders in these statuses were paid and then fully refunded: they count as a purchase
    # (frequency, recency) but add nothing to monetary. Orders with a negative total (credit
    # notes, e.g. imported cancellation invoices) are always netted against monetary and are
    # never counted as a purchase.
    "REFUNDED_STATUSES": ["Refunded"],
    # Subtract partial refunds recorded on Oscar payment sources (payment.Source.amount_refunded)
    "SUBTRACT_PAYMENT_REFUNDS": True,
    # {"EUR": "0.86", ...}: multiply an order's total by the rate to get OSCAR_DEFAULT_CURRENCY;
    # orders in a currency without a rate are left out and counted in the run's parameters
    "CURRENCY_RATES": {},
    # Guest orders are grouped by lower-cased guest_email; False segments registered customers only
    # (e.g. the UCI Online Retail import, whose guest e-mails are per-invoice placeholders)
    "INCLUDE_GUESTS": True,
    "LOOKBACK_DAYS": None,  # only orders placed in the last N days before the as-of date (None: all)
    # Segments: a rule table (see segmentation/ml/rfm.py); None means its DEFAULT_SEGMENT_RULES
    "SEGMENT_RULES": None,
    "FALLBACK_SEGMENT": "Unclassified",
    # Clusters: k chosen by silhouette within [K_MIN, K_MAX]
    "K_MIN": 2,
    "K_MAX": 8,
    "CLUSTER_SAMPLE_SIZE": 20000,  # fit and silhouette on a random sample of this many customers
    "RANDOM_STATE": 0,
    # Predicted value (BG/NBD + Gamma-Gamma)
    "CLV_ENABLED": True,
    "CLV_MONTHS": 12,
    "CLV_HORIZON_DAYS": 90,  # expected purchases in the next N days
    "CLV_PENALIZER": 0.001,
    "CLV_FIT_SAMPLE_SIZE": 50000,  # fit BG/NBD + Gamma-Gamma on a random sample; predict for all
    "CLV_MONTHLY_DISCOUNT_RATE": 0.0,
    # Which forecast gives the predicted value and churn probability: "auto" takes the winner of
    # the run's own backtest; or one of segmentation.ml.forecast.CANDIDATES
    "FORECAST_MODEL": "auto",
    "FORECAST_CANDIDATES": ["bgnbd", "last_period", "gbm_two_part", "gbm_poisson"],
    # Backtest with every run: calibrate on all but the last N months of orders, predict those months
    "BACKTEST_ENABLED": True,
    "BACKTEST_MONTHS": 3,
    "BACKTEST_MIN_CUSTOMERS": 50,  # fewer customers before the backtest cutoff: no backtest, BG/NBD is used
    "BACKTEST_SAMPLE_CUSTOMERS": 50000,  # backtest on a deterministic sample of this many customers
    # Churn risk
    "CHURN_PROBABILITY_ABOVE": 0.5,  # flag customers whose P(no purchase in CLV_MONTHS) is above this
    "CHURN_P_ALIVE_BELOW": 0.5,  # flag customers whose probability of being active is below this
    "CHURN_OVERDUE_GAPS": 2.0,  # flag customers overdue by this many of their typical gaps
    # Storage and scheduling
    "BATCH_SIZE": 5000,  # memberships per bulk_create batch (databases other than PostgreSQL)
    "PG_WORK_MEM": "256MB",  # work_mem for the grouped query (SET LOCAL: that transaction only)
    "KEEP_RUNS": 30,  # older runs (and their memberships) are deleted after a success; None keeps all
    "TASK_LOCK_TIMEOUT": 6 * 3600,
    "CACHE_TIMEOUT": 3600,  # seconds a user's current segment is cached
}

TYPES: dict[str, type | tuple[type, ...]] = {
    "EXCLUDED_STATUSES": (list, tuple),
    "REFUNDED_STATUSES": (list, tuple),
    "SUBTRACT_PAYMENT_REFUNDS": bool,
    "CURRENCY_RATES": dict,
    "INCLUDE_GUESTS": bool,
    "LOOKBACK_DAYS": (int, type(None)),
    "SEGMENT_RULES": (list, tuple, type(None)),
    "FALLBACK_SEGMENT": str,
    "K_MIN": int,
    "K_MAX": int,
    "CLUSTER_SAMPLE_SIZE": int,
    "RANDOM_STATE": int,
    "CLV_ENABLED": bool,
    "CLV_MONTHS": int,
    "CLV_HORIZON_DAYS": int,
    "CLV_PENALIZER": (int, float),
    "CLV_FIT_SAMPLE_SIZE": int,
    "CLV_MONTHLY_DISCOUNT_RATE": (int, float),
    "FORECAST_MODEL": str,
    "FORECAST_CANDIDATES": (list, tuple),
    "BACKTEST_ENABLED": bool,
    "BACKTEST_MONTHS": int,
    "BACKTEST_MIN_CUSTOMERS": int,
    "BACKTEST_SAMPLE_CUSTOMERS": int,
    "CHURN_PROBABILITY_ABOVE": (int, float),
    "CHURN_P_ALIVE_BELOW": (int, float),
    "CHURN_OVERDUE_GAPS": (int, float),
    "BATCH_SIZE": int,
    "PG_WORK_MEM": str,
    "KEEP_RUNS": (int, type(None)),
    "TASK_LOCK_TIMEOUT": int,
    "CACHE_TIMEOUT": int,
}

app_settings = AppSettings(SETTINGS_NAME, DEFAULTS)
