"""Settings of ``benchmarks/train_in_shop.py``: the demo shop's, with the library's training defaults
except the time budget (``BENCH_BUDGET_MINUTES``)."""

import os

from shop.settings import *  # noqa: F403

RECOMMENDER = {
    "EXCLUDED_PRODUCT_CLASSES": ["non-merchandise"],
    "TRAINING_TIME_BUDGET_MINUTES": float(os.environ.get("BENCH_BUDGET_MINUTES", "4")),
}
