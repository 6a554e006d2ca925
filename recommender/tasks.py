"""Celery tasks: thin wrappers that take ids, call a service and log counts."""

from __future__ import annotations

import logging

from celery import shared_task

from recommender import services
from recommender.locks import single_instance

logger = logging.getLogger(__name__)


@shared_task(name="recommender.tasks.ping")
def ping() -> str:
    """Proves the worker path end to end (used by the deployment check and tests)."""
    return "pong"


@shared_task(name="recommender.tasks.purge_old_events", acks_late=True)
@single_instance("recommender.purge_old_events")
def purge_old_events(retention_days: int | None = None) -> dict[str, int]:
    deleted = services.purge_old_events(retention_days)
    logger.info("purged %d old events", deleted)
    return {"deleted": deleted}
