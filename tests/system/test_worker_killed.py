"""Chaos: the Celery worker is SIGKILLed in the middle of a training run.

The live model keeps serving, the interrupted run is marked failed by the next run, and the
no-overlap lock the dead worker held frees itself once its timeout has passed.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.core.cache import cache
from oscar.core.loading import get_model

from recommender import tasks
from recommender.abstract_models import ModelKind, TrainingStatus, VersionStatus
from recommender.locks import LockHeld, task_lock
from recommender.services import versions
from recommender.services.training import train_recommenders
from shop.celery import app
from tests.shop.test_celery import worker_queue  # noqa: F401  (fixture)
from tests.training_shop import AS_OF, build_shop

ModelVersion = get_model("recommender", "ModelVersion")
TrainingRun = get_model("recommender", "TrainingRun")
LOCK_TIMEOUT = 5  # seconds; the worker's TASK_LOCK_TIMEOUT (tests/worker_settings.py)
LOCK = "recommender.train_recommenders"


@pytest.fixture
def chaos_worker_env(monkeypatch, tmp_path):
    """Set before ``worker_queue`` starts the worker: its settings module and its files' folder."""
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.worker_settings")
    monkeypatch.setenv("CHAOS_LOCK_TIMEOUT", str(LOCK_TIMEOUT))
    monkeypatch.setenv("SHOP_VAR_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def _worker_pid(queue: str) -> int:
    stats = app.control.inspect(timeout=5).stats() or {}
    (name,) = [n for n in stats if n.startswith(f"{queue}@")]
    return int(stats[name]["pid"])


def _wait_for(condition, timeout: float, step: float = 0.02):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(step)
    return value


@pytest.mark.redis
@pytest.mark.postgres
def test_a_worker_killed_mid_training_leaves_the_live_model_and_frees_the_lock(
    chaos_worker_env,
    worker_queue,  # noqa: F811
    settings,
):
    settings.MEDIA_ROOT = str(chaos_worker_env / "media")
    settings.RECOMMENDER = {"NEXT_ITEM_MODEL": "hybrid", "MIN_HOLDOUT_CASES": 5}
    versions.forget_loaded()
    shop = build_shop(n_users=12, orders=8)  # small: the worker only has to start training it
    first = train_recommenders(AS_OF, [ModelKind.NEXT_ITEM])
    live = ModelVersion.objects.get(kind=ModelKind.NEXT_ITEM, status=VersionStatus.LIVE)
    cache.delete(f"recommender:lock:{LOCK}")
    pid = _worker_pid(worker_queue)

    tasks.train_recommenders.apply_async(
        kwargs={"as_of": AS_OF.date().isoformat(), "kinds": ["next_item"]}, queue=worker_queue
    )
    fitting = _wait_for(lambda: ModelVersion.objects.filter(status=VersionStatus.TRAINING).first(), 120)
    os.kill(pid, signal.SIGKILL)  # mid-fit: the gru candidate is being trained
    killed_at = time.monotonic()
    run = TrainingRun.objects.exclude(pk=first.pk).get()
    assert run.status == TrainingStatus.RUNNING and fitting.run_id == run.pk

    # the live version still serves, from its files
    version, loaded = versions.live_model(ModelKind.NEXT_ITEM)
    assert version.pk == live.pk
    history = loaded.indices([shop.products[6].pk])
    items, _ = loaded.model.recommend(history, k=3)
    assert loaded.product_ids[int(items[0])] == shop.products[7].pk

    # the dead worker's lock holds until its timeout
    assert 0 < cache.ttl(f"recommender:lock:{LOCK}") <= LOCK_TIMEOUT
    with pytest.raises(LockHeld), task_lock(LOCK):
        pass

    # the next run marks the interrupted one failed; the live version is untouched
    train_recommenders(AS_OF, [ModelKind.TRENDING])
    run.refresh_from_db()
    fitting.refresh_from_db()
    assert run.status == TrainingStatus.FAILED and "interrupted" in run.error
    assert fitting.status == VersionStatus.FAILED
    assert versions.live_version(ModelKind.NEXT_ITEM).pk == live.pk

    # then the lock frees itself
    time.sleep(max(0.0, LOCK_TIMEOUT + 0.5 - (time.monotonic() - killed_at)))
    with task_lock(LOCK):
        pass
    versions.forget_loaded()
