"""The training task end to end on a real Celery worker process, on Redis and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from oscar.core.loading import get_model

from recommender import tasks
from recommender.abstract_models import ModelKind, VersionStatus
from recommender.services import versions
from tests.shop.test_celery import worker_queue  # noqa: F401  (fixture)
from tests.training_shop import build_shop

ModelVersion = get_model("recommender", "ModelVersion")
TrainingRun = get_model("recommender", "TrainingRun")


@pytest.fixture
def worker_var(monkeypatch, tmp_path):
    """The worker started by ``worker_queue`` keeps its files (model storage) in a temporary folder."""
    monkeypatch.setenv("SHOP_VAR_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


@pytest.mark.redis
@pytest.mark.postgres
def test_the_nightly_task_trains_a_shop_quiet_for_a_month_on_a_real_worker(worker_var, worker_queue, settings):  # noqa: F811
    """What beat sends (no as-of time) on a shop whose last order and view are 30 days old."""
    build_shop(end=timezone.now() - timedelta(days=30))
    media = str(worker_var / "media")
    result = tasks.train_recommenders.apply_async(
        kwargs={"kinds": ["trending", "also_viewed", "also_bought"]}, queue=worker_queue
    ).get(timeout=300)
    run = TrainingRun.objects.get(pk=result["run"])
    assert result["status"] == run.status == "succeeded", run.error
    assert result["kinds"]["also_viewed"] == result["kinds"]["also_bought"] == "live"
    version = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE)
    settings.MEDIA_ROOT = media
    versions.forget_loaded()
    assert versions.load(version).product_ids
    # a second task while the first holds the lock is skipped, never run twice at once
    from recommender.locks import task_lock

    with task_lock("recommender.train_recommenders"):
        skipped = tasks.train_recommenders.apply_async(queue=worker_queue).get(timeout=60)
    assert skipped == {"skipped": "locked"}
