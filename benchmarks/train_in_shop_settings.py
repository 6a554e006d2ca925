"""Settings of ``benchmarks/train_in_shop.py``: the demo shop's, with the library's training defaults
except the time budget (``BENCH_BUDGET_MINUTES``) and, when ``BENCH_RNN_CELL`` is set, the next-item
networks' recurrent cell (``"lstm"`` or ``"gru"``)."""

import os

from shop.settings import *  # noqa: F403

RECOMMENDER = {
    "EXCLUDED_PRODUCT_CLASSES": ["non-merchandise"],
    "TRAINING_TIME_BUDGET_MINUTES": float(os.environ.get("BENCH_BUDGET_MINUTES", "4")),
}
if os.environ.get("BENCH_RNN_CELL"):
    RECOMMENDER["RNN_CELL"] = os.environ["BENCH_RNN_CELL"]
