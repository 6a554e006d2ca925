"""Celery wiring: a real worker process, the no-overlap lock, the purge task, beat entries."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from recommender import tasks
from recommender.locks import LockHeld, single_instance, task_lock
from recommender.models import Event, EventKind
from shop.celery import app
from tests.conftest import REPO


@pytest.fixture
def worker_queue(transactional_db, tmp_path):
    """Start ``celery worker`` in its own process on a private queue, against the test database."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "shop",
                "worker",
                "--pool=solo",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # importing the apps (pandas, scikit-learn, torch) takes a while on a loaded machine
        deadline = time.monotonic() + 180
        while "ready." not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield queue
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.redis
@pytest.mark.postgres
def test_real_worker_runs_tasks(worker_queue):
    assert tasks.ping.apply_async(queue=worker_queue).get(timeout=60) == "pong"

    Event.objects.create(kind=EventKind.VIEW, created=timezone.now() - timedelta(days=500))
    Event.objects.create(kind=EventKind.VIEW)
    result = tasks.purge_old_events.apply_async(queue=worker_queue).get(timeout=60)
    assert result == {"deleted": 1}
    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_purge_respects_retention_setting(settings):
    old = timezone.now() - timedelta(days=40)
    Event.objects.create(kind=EventKind.VIEW, created=old)
    settings.RECOMMENDER = {"EVENT_RETENTION_DAYS": 60}
    assert tasks.purge_old_events() == {"deleted": 0}
    settings.RECOMMENDER = {"EVENT_RETENTION_DAYS": 30}
    assert tasks.purge_old_events() == {"deleted": 1}
    settings.RECOMMENDER = {"EVENT_RETENTION_DAYS": None}
    Event.objects.create(kind=EventKind.VIEW, created=old)
    assert tasks.purge_old_events() == {"deleted": 0}


def test_lock_stops_a_periodic_task_overlapping_itself():
    from django.core.cache import cache

    cache.delete("recommender:lock:demo")
    calls = []

    @single_instance("demo")
    def body():
        calls.append(1)
        return inner()

    def inner():
        # while the first run holds the lock, a second run is skipped at once
        return body()

    assert body() == {"skipped": "locked"}
    assert calls == [1]
    with task_lock("demo"), pytest.raises(LockHeld), task_lock("demo"):  # released after the run, so the
        pass  # first acquires; the second, while the first is held, raises


def test_beat_schedule_names_registered_tasks():
    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks, entry["task"]
