"""Settings of the Celery worker that ``tests/system/test_worker_killed.py`` kills mid-training: the demo
shop's, with a recurrent next-item model (so training lasts long enough to be interrupted) and a
no-overlap lock that expires after ``CHAOS_LOCK_TIMEOUT`` seconds."""

import os

from shop.settings import *  # noqa: F403

RECOMMENDER = {
    "NEXT_ITEM_MODEL": "gru",
    "MIN_HOLDOUT_CASES": 5,
    "TRAINING_TIME_BUDGET_MINUTES": 2,
    "TASK_LOCK_TIMEOUT": int(os.environ.get("CHAOS_LOCK_TIMEOUT", "5")),
}
