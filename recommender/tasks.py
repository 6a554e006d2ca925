"""Celery tasks: thin wrappers that take ids, call a service and log counts."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from celery import shared_task

from recommender import services
from recommender.conf import app_settings
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


@shared_task(name="recommender.tasks.train_recommenders")
def train_recommenders(as_of: str | None = None, kinds: list[str] | None = None) -> dict[str, Any]:
    """Nightly training (beat entry ``recommender-train``; send it to ``TRAINING_QUEUE``).

    ``as_of``: ISO date (data before that day; default now). Never overlaps itself (a cache
    lock); a run killed mid-way leaves the live versions serving and is marked failed by the
    next run. Not ``acks_late``: a redelivered half-finished training would start over.
    """
    locked = single_instance("recommender.train_recommenders", timeout=app_settings.TASK_LOCK_TIMEOUT)
    return locked(_train)(as_of, kinds)


def _train(as_of: str | None, kinds: list[str] | None) -> dict[str, Any]:
    from recommender.services.training import train_recommenders as train

    run = train(date.fromisoformat(as_of) if as_of else None, kinds, trigger="task")
    logger.info("training run %s: %s", run.pk, run.status)
    return {
        "run": run.pk,
        "status": run.status,
        "error": run.error,
        "kinds": {k: v.get("status") for k, v in (run.counts.get("kinds") or {}).items()},
    }


#: seconds a web request gives the broker to take a training message (connecting, then publishing)
PUBLISH_TIMEOUT = 3.0


def enqueue_training(as_of: str | None = None, kinds: list[str] | None = None, timeout: float | None = None) -> Any:
    """Send a training run to the training queue (what the dashboard's "train now" button does).

    A request must not wait on a broker that is down or hung: the broker gets ``timeout`` seconds
    (default :data:`PUBLISH_TIMEOUT`) for each socket operation of a Redis transport, with no
    connection retries (kombu otherwise retries for several seconds), and no result is kept (the
    run records itself as a ``TrainingRun``; keeping a result would also subscribe to the result
    backend, which may hang the same way). Raises what the broker raised.
    """
    timeout = PUBLISH_TIMEOUT if timeout is None else timeout
    options = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,  # each socket operation
        "max_retries": 0,
        "connect_retries_timeout": timeout,
    }
    with train_recommenders.app.connection_for_write(transport_options=options) as connection:
        return train_recommenders.apply_async(
            kwargs={"as_of": as_of, "kinds": kinds},
            queue=app_settings.TRAINING_QUEUE,
            connection=connection,
            retry=False,
            ignore_result=True,
        )
