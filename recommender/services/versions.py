"""Model versions: which one is live, loading it, promoting, rolling back, retiring, pruning.

Promotion is one transaction over the rows of one kind (the database allows one live version
per kind): the files were written and verified before, so a failure anywhere leaves the
previous live version serving. Loaded models are kept per process, keyed by version id, and
:func:`live_model` notices a new live version within ``LIVE_CHECK_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from oscar.core.loading import get_model

from recommender import artifacts
from recommender.abstract_models import VersionStatus
from recommender.conf import app_settings

logger = logging.getLogger(__name__)

#: how often a process asks the database which versions are live (seconds)
LIVE_CHECK_SECONDS = 5.0
LIVE_CACHE_KEY = "recommender:live-versions"
_live_ids_memo: tuple[float, dict[str, int]] | None = None  # (valid until, ids) in this process

_lock = threading.Lock()
_loaded: dict[int, artifacts.LoadedModel] = {}
#: the live versions' rows, read once per process like their models (a row holds large JSON metrics)
_rows: dict[int, Any] = {}
#: version id -> (monotonic time, error) of a failed load: not retried for ``LIVE_CHECK_SECONDS``
_failed: dict[int, tuple[float, str]] = {}
_live_ids: dict[str, int] = {}
_live_checked = 0.0


class PromotionError(ValueError):
    """The version cannot be made live (no files, damaged files, already live...)."""


def live_version(kind: str) -> Any | None:
    ModelVersion = get_model("recommender", "ModelVersion")
    return ModelVersion.objects.filter(kind=kind, status=VersionStatus.LIVE).first()


def live_version_ids() -> dict[str, int]:
    """``{kind: version id}`` of the live versions: one small query, shared through the cache and
    kept by this process for up to ``LIVE_CHECK_SECONDS`` (a promotion here is seen at once)."""
    global _live_ids_memo
    now = time.monotonic()
    if _live_ids_memo is not None and now < _live_ids_memo[0]:
        return _live_ids_memo[1]
    ids = cache.get(LIVE_CACHE_KEY)
    if ids is None:
        ModelVersion = get_model("recommender", "ModelVersion")
        ids = dict(ModelVersion.objects.filter(status=VersionStatus.LIVE).values_list("kind", "pk"))
        cache.set(LIVE_CACHE_KEY, ids, LIVE_CHECK_SECONDS)
    _live_ids_memo = (now + LIVE_CHECK_SECONDS, ids)
    return ids


def load(version: Any) -> artifacts.LoadedModel:
    """The version's verified model, loaded once per process (ArtifactError if damaged).

    A damaged version is not read again for ``LIVE_CHECK_SECONDS``: every block of every page
    would otherwise fetch and verify its files again before falling back.
    """
    with _lock:
        loaded = _loaded.get(version.pk)
        failed = _failed.get(version.pk)
    if loaded is None:
        if failed is not None and time.monotonic() - failed[0] < LIVE_CHECK_SECONDS:
            raise artifacts.ArtifactError(failed[1])
        try:
            loaded = artifacts.load(version.artifact_path, version.files)
        except artifacts.ArtifactError as exc:
            with _lock:
                _failed[version.pk] = (time.monotonic(), str(exc))
            _report_broken(version, str(exc))
            raise
        with _lock:
            _loaded[version.pk] = loaded
            _failed.pop(version.pk, None)
    return loaded


def broken_key(version_id: int) -> str:
    return f"recommender:broken-version:{version_id}"


def _report_broken(version: Any, error: str) -> None:
    """Tell every process (the models page) that this version's files fail to load, and since when
    (the first failure any process saw; kept a week)."""
    try:
        cache.add(broken_key(version.pk), {"since": timezone.now().isoformat(), "error": error}, 7 * 86400)
    except Exception:  # the cache is down: the page checks the files itself
        logger.warning("could not record that model version %s fails to load", version.pk)


def load_problems(live: list[Any]) -> dict[int, dict[str, Any]]:
    """``{version id: {"since": datetime, "error": str}}`` for the live versions whose files do not
    load: each is loaded here (once per process, as serving does), and the time of the first
    failure any process recorded is kept."""
    problems: dict[int, dict[str, Any]] = {}
    for version in live:
        try:
            load(version)
        except artifacts.ArtifactError as exc:
            found = cache.get(broken_key(version.pk)) or {}
            since = found.get("since")
            problems[version.pk] = {
                "since": datetime.fromisoformat(since) if since else timezone.now(),
                "error": found.get("error") or str(exc),
            }
        else:
            cache.delete(broken_key(version.pk))
    return problems


def live_model(kind: str) -> tuple[Any, artifacts.LoadedModel] | None:
    """(version, loaded model) of the live version of ``kind``, or None; reloads after a promotion."""
    global _live_checked
    now = time.monotonic()
    if now - _live_checked > LIVE_CHECK_SECONDS:
        ids = live_version_ids()
        with _lock:
            _live_ids.clear()
            _live_ids.update(ids)
            for stale in set(_loaded) - set(ids.values()):
                del _loaded[stale]
            for stale in set(_rows) - set(ids.values()):
                del _rows[stale]
            _live_checked = now
    version_id = _live_ids.get(kind)
    if version_id is None:
        return None
    version = _rows.get(version_id)
    if version is None:
        ModelVersion = get_model("recommender", "ModelVersion")
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            return None
        with _lock:  # kept also when its files fail to load: the row is not read again for each page
            _rows[version_id] = version
    return version, load(version)


def _changed() -> None:
    """A version went live or stopped: this process and (through the cache) the others look again."""
    global _live_checked, _live_ids_memo
    _live_checked = 0.0
    _live_ids_memo = None
    cache.delete(LIVE_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(LIVE_CACHE_KEY))


def forget_loaded() -> None:
    """Drop every model loaded by this process (tests; after deleting files)."""
    global _live_checked, _live_ids_memo
    _live_ids_memo = None
    with _lock:
        _loaded.clear()
        _rows.clear()
        _failed.clear()
        _live_ids.clear()
        _live_checked = 0.0


def promote(version: Any, user: Any | None = None, reason: str = "") -> Any:
    """Make ``version`` the live one of its kind; the previous live version becomes retired.

    The files are verified first (a damaged version is never promoted), then both rows change
    in one transaction.
    """
    ModelVersion = get_model("recommender", "ModelVersion")
    if not version.has_files:
        raise PromotionError(f"version {version.pk} has no files (rejected, failed or pruned)")
    try:
        artifacts.load(version.artifact_path, version.files)
    except artifacts.ArtifactError as exc:
        raise PromotionError(f"version {version.pk} cannot be loaded: {exc}") from exc
    with transaction.atomic():
        rows = list(ModelVersion.objects.select_for_update().filter(kind=version.kind, status=VersionStatus.LIVE))
        for old in rows:
            if old.pk == version.pk:
                return old
            old.status = VersionStatus.RETIRED
            old.reason = f"replaced by version {version.pk}"
            old.save(update_fields=["status", "reason"])
        version.status = VersionStatus.LIVE
        version.promoted_at = timezone.now()
        version.promoted_by = user if getattr(user, "is_authenticated", False) else None
        if reason:
            version.reason = reason
        version.save(update_fields=["status", "promoted_at", "promoted_by", "reason"])
        _changed()
    logger.info("model version %s (%s) is live", version.pk, version.kind)
    return version


def retire(version: Any, user: Any | None = None) -> Any:
    """Stop serving ``version``; its kind falls back to the next rung until another is promoted."""
    who = getattr(user, "get_username", lambda: "")() if user is not None else ""
    version.status = VersionStatus.RETIRED
    version.reason = f"retired by {who}" if who else "retired"
    version.save(update_fields=["status", "reason"])
    _changed()
    return version


def prune(kind: str) -> int:
    """Delete the files of all but the newest ``KEEP_VERSIONS`` versions of ``kind`` (never the live one)."""
    keep = app_settings.KEEP_VERSIONS
    if keep is None:
        return 0
    ModelVersion = get_model("recommender", "ModelVersion")
    with_files = ModelVersion.objects.filter(kind=kind).exclude(artifact_path="").order_by("-created", "-pk")
    pruned = 0
    for version in list(with_files[keep:]):
        if version.status == VersionStatus.LIVE:
            continue
        artifacts.delete(version.artifact_path, version.files)
        ModelVersion.objects.filter(pk=version.pk).update(artifact_path="", files={})
        pruned += 1
    return pruned
