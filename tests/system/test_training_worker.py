"""The training task end to end on a real Celery worker process, on Redis and PostgreSQL."""

from __future__ import annotations

import pytest
from oscar.core.loading import get_model

from recommender import tasks
from recommender.abstract_models import ModelKind, VersionStatus
from recommender.services import versions
from tests.shop.test_celery import worker_queue  # noqa: F401  (fixture)
from tests.training_shop import AS_OF, build_shop

ModelVersion = get_model("recommender", "ModelVersion")
TrainingRun = get_model("recommender", "TrainingRun")


@pytest.fixture
def worker_var(monkeypatch, tmp_path):
    """The worker started by ``worker_queue`` keeps its files (model storage) in a temporary folder."""
    monkeypatch.setenv("SHOP_VAR_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


@pytest.mark.redis
@pytest.mark.postgres
def test_the_task_trains_on_a_real_worker(worker_var, worker_queue, settings):  # noqa: F811
    build_shop()
    media = str(worker_var / "media")
    result = tasks.train_recommenders.apply_async(
        kwargs={"as_of": AS_OF.date().isoformat(), "kinds": ["trending", "also_viewed"]}, queue=worker_queue
    ).get(timeout=300)
    run = TrainingRun.objects.get(pk=result["run"])
    assert result["status"] == run.status == "succeeded", run.error
    assert result["kinds"]["also_viewed"] == "live"
    version = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE)
    settings.MEDIA_ROOT = media
    versions.forget_loaded()
    assert versions.load(version).product_ids
    # a second task while the first holds the lock is skipped, never run twice at once
    from recommender.locks import task_lock

    with task_lock("recommender.train_recommenders"):
        skipped = tasks.train_recommenders.apply_async(queue=worker_queue).get(timeout=60)
    assert skipped == {"skipped": "locked"}
