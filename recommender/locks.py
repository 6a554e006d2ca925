"""The recommender's periodic-task lock (see :mod:`personalization_core.locks`).

:func:`task_lock` and :func:`single_instance` expire after ``RECOMMENDER["TASK_LOCK_TIMEOUT"]``
seconds unless told otherwise; skips are logged to this module's logger.
"""

from __future__ import annotations

import logging

from personalization_core.locks import LockHeld, LockUnavailable, TaskLocks
from recommender.conf import app_settings

__all__ = ["LockHeld", "LockUnavailable", "locks", "single_instance", "task_lock"]

locks = TaskLocks(lambda: app_settings.TASK_LOCK_TIMEOUT, logging.getLogger(__name__))
task_lock = locks.task_lock
single_instance = locks.single_instance
