"""The ``RECOMMENDER`` settings dict, merged over documented defaults.

Read values as attributes of :data:`app_settings` (``app_settings.TRACKING_ENABLED``);
the object re-reads ``settings.RECOMMENDER`` whenever tests override it.
Every key is documented in README.md ("Settings"). :class:`AppSettings` lives in
:mod:`personalization_core.conf` (one implementation for both apps) and is importable from here.
"""

from __future__ import annotations

from typing import Any

from personalization_core.conf import AppSettings

__all__ = ["DEFAULTS", "SETTINGS_NAME", "TYPES", "AppSettings", "app_settings"]

SETTINGS_NAME = "RECOMMENDER"

DEFAULTS: dict[str, Any] = {
    # Capture
    "TRACKING_ENABLED": True,  # master switch: False records nothing
    "RESPECT_GPC": True,  # a request with "Sec-GPC: 1" is not tracked
    "REQUIRE_CONSENT": False,  # True: track only visitors whose consent cookie says "1"
    "CONSENT_COOKIE": "tracking_consent",
    "VISITOR_COOKIE": "oscar_visitor",  # pseudonymous random id of a browser
    "VISITOR_COOKIE_AGE": 365 * 24 * 3600,
    "VISITOR_COOKIE_SECURE": None,  # None: Secure whenever the request came over HTTPS
    "BOT_USER_AGENTS": (
        r"bot\b|bot/|crawl|spider|slurp|facebookexternalhit|bingpreview|headlesschrome|"
        r"python-requests|python-urllib|curl/|wget/|httpclient|go-http-client|scrapy|lighthouse|pingdom"
    ),
    "EVENT_RETENTION_DAYS": 400,  # older events are purged daily; None keeps them forever
    # PostgreSQL: commit event inserts made outside any transaction with synchronous_commit off
    "EVENT_ASYNC_COMMIT": True,
    # Periodic tasks
    "TASK_LOCK_TIMEOUT": 6 * 3600,  # seconds a periodic task may hold its no-overlap lock
    # Training (recommender.services.training; every key documented in README.md)
    "TRAINING_QUEUE": "training",  # Celery queue the nightly training is sent to
    "TRAINING_TIME_BUDGET_MINUTES": 60,  # bound on one whole run (the next-item model gets what is left)
    "NEXT_ITEM_MODEL": None,  # registry name; None: "blend" when torch is installed, else "hybrid"
    "NEXT_ITEM_PARAMS": {},  # constructor overrides for that model
    "RNN_CELL": "lstm",  # "lstm" or "gru": the recurrent cell of the blend's networks
    "SESSION_GAP_MINUTES": None,  # cut a person's sequence after this much inactivity; None: one per person
    "MAX_HISTORY_LENGTH": 50,  # a history is its last N events (training windows, evaluation, serving)
    "HOLDOUT_DAYS": 14,  # the days up to a kind's last activity every candidate is measured on, never trained on
    "MIN_HOLDOUT_CASES": 20,  # fewer held-out cases than this: a live version stays; none: an older share is used
    "MAX_EVALUATION_CASES": 20000,  # held-out cases scored per model (spread evenly over the days)
    "GATE_METRIC": "hr@20",  # what "better" means: hr@K, mrr@K or ndcg@K for K in 10, 20
    "GATE_SIGNIFICANCE": 0.05,  # a candidate significantly worse than the live configuration at this level is rejected
    "REFIT_AFTER_EVALUATION": True,  # the promoted model is refitted on all data, holdout included
    "TRENDING_HALF_LIFE_DAYS": 7.0,  # recency decay of "trending"
    "EXCLUDED_ORDER_STATUSES": ["Cancelled"],  # order lines of these orders are not purchases
    "EXCLUDED_PRODUCT_CLASSES": [],  # product class slugs never recommended (e.g. postage, fees)
    "EXCLUDED_UPCS": [],  # product UPCs never recommended
    "KEEP_VERSIONS": 5,  # per kind: older versions' files are deleted (rows stay for the history)
    "MODEL_STORAGE": None,  # a STORAGES alias for model files; None: default_storage
    "MODEL_STORAGE_PREFIX": "recommender/models",  # folder of the model files inside that storage
    # Serving (recommender.services.serving)
    "SERVING_ENABLED": True,  # False: every block renders nothing and the API returns empty lists
    "BLOCK_LIMIT": 6,  # products per block unless the tag or the API asks for another number (at most 50)
    "BLOCK_CACHE_SECONDS": 60,  # a visitor's block is cached this long; any new event of theirs invalidates it
    "MAX_PER_CATEGORY": 3,  # at most this many products of one category in a block (0: no cap)
    "CARD_CACHE_SECONDS": 300,  # rendered product cards and their stock/price verdict; 0: per-customer prices
    "PLACEMENT_OPTIONS": {},  # per placement: {"for_you": {"limit": 8, "exclude_purchased": False}}
}

# Keys whose values must be of this type (checked by recommender.E002)
TYPES: dict[str, type | tuple[type, ...]] = {
    "TRACKING_ENABLED": bool,
    "RESPECT_GPC": bool,
    "REQUIRE_CONSENT": bool,
    "CONSENT_COOKIE": str,
    "VISITOR_COOKIE": str,
    "VISITOR_COOKIE_AGE": int,
    "VISITOR_COOKIE_SECURE": (bool, type(None)),
    "BOT_USER_AGENTS": str,
    "EVENT_RETENTION_DAYS": (int, type(None)),
    "EVENT_ASYNC_COMMIT": bool,
    "TASK_LOCK_TIMEOUT": int,
    "TRAINING_QUEUE": str,
    "TRAINING_TIME_BUDGET_MINUTES": (int, float),
    "NEXT_ITEM_MODEL": (str, type(None)),
    "NEXT_ITEM_PARAMS": dict,
    "RNN_CELL": str,
    "SESSION_GAP_MINUTES": (int, float, type(None)),
    "MAX_HISTORY_LENGTH": int,
    "HOLDOUT_DAYS": (int, float),
    "MIN_HOLDOUT_CASES": int,
    "MAX_EVALUATION_CASES": int,
    "GATE_METRIC": str,
    "GATE_SIGNIFICANCE": (int, float),
    "REFIT_AFTER_EVALUATION": bool,
    "TRENDING_HALF_LIFE_DAYS": (int, float),
    "EXCLUDED_ORDER_STATUSES": (list, tuple),
    "EXCLUDED_PRODUCT_CLASSES": (list, tuple),
    "EXCLUDED_UPCS": (list, tuple),
    "KEEP_VERSIONS": (int, type(None)),
    "MODEL_STORAGE": (str, type(None)),
    "MODEL_STORAGE_PREFIX": str,
    "SERVING_ENABLED": bool,
    "BLOCK_LIMIT": int,
    "BLOCK_CACHE_SECONDS": int,
    "MAX_PER_CATEGORY": int,
    "CARD_CACHE_SECONDS": int,
    "PLACEMENT_OPTIONS": dict,
}


app_settings = AppSettings(SETTINGS_NAME, DEFAULTS)
