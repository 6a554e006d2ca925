"""Celery tasks: thin wrappers that take plain values, call a service and log counts."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from personalization_core.locks import TaskLocks
from segmentation import services  # its names load on first use: a web process sending tasks needs no ML
from segmentation.conf import app_settings

logger = logging.getLogger(__name__)
locks = TaskLocks(lambda: app_settings.TASK_LOCK_TIMEOUT, logger)


@shared_task(
    name="segmentation.tasks.segment_customers",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=60,
    retry_backoff_max=30 * 60,
    retry_jitter=True,
    max_retries=5,
)
def segment_customers(as_of: str | None = None, force: bool = False) -> dict[str, Any]:
    """Nightly segmentation (beat entry ``segmentation-nightly``).

    Idempotent: when the current run is already for ``as_of`` (ISO date, default
    today) with today's settings, a redelivered or repeated task returns it
    without recomputing (``force=True`` recomputes). A run that fails leaves the
    previous run current. Never overlaps itself (a cache lock).
    """
    locked = locks.single_instance("segmentation.segment_customers")
    return locked(_segment_customers)(as_of, force)


def _segment_customers(as_of: str | None, force: bool) -> dict[str, Any]:
    day = date.fromisoformat(as_of) if as_of else None
    try:
        run = services.run_segmentation(day, skip_if_done=not force)
    except services.NoCustomersError as exc:
        logger.info("segmentation skipped: %s", exc)
        return {"status": "failed", "error": str(exc)}
    logger.info("segmentation run %s: %s customers, k=%s", run.pk, run.n_customers, run.k)
    return {
        "run": run.pk,
        "status": run.status,
        "as_of": run.as_of.isoformat(),
        "customers": run.n_customers,
        "k": run.k,
        "segments": run.segment_counts,
    }
