"""What shoppers' pages ask of the current run: the run, a customer's membership and segment.

The current run's id and each user's segment name are cached (``CACHE_TIMEOUT``), so
:func:`current_segment` is cheap enough for every basket; a run that becomes current clears
:data:`CURRENT_RUN_CACHE_KEY` when it commits, and erasing a person's data clears their
cached segment (:func:`forget_cached_segments`).
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from oscar.core.loading import get_model

from segmentation.conf import app_settings

CustomerSegment = get_model("segmentation", "CustomerSegment")
SegmentationRun = get_model("segmentation", "SegmentationRun")

CURRENT_RUN_CACHE_KEY = "segmentation:current-run"


def current_run(using: str = "default") -> Any | None:
    return SegmentationRun.objects.using(using).filter(is_current=True).first()


def _current_run_id() -> int | None:
    run_id = cache.get(CURRENT_RUN_CACHE_KEY)
    if run_id is None:
        run = current_run()
        run_id = run.pk if run else 0
        cache.set(CURRENT_RUN_CACHE_KEY, run_id, app_settings.CACHE_TIMEOUT)
    return run_id or None


def current_membership(user: Any) -> Any | None:
    """The user's row in the current run (one indexed query), or None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    run_id = _current_run_id()
    if run_id is None:
        return None
    return CustomerSegment.objects.filter(run_id=run_id, user_id=user.pk).first()


def current_segment(user: Any) -> str | None:
    """The user's segment name in the current run, cached per run (cheap enough for every basket)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    run_id = _current_run_id()
    if run_id is None:
        return None
    key = _segment_cache_key(run_id, user.pk)
    value = cache.get(key)
    if value is None:
        value = (
            CustomerSegment.objects.filter(run_id=run_id, user_id=user.pk).values_list("segment", flat=True).first()
            or ""
        )
        cache.set(key, value, app_settings.CACHE_TIMEOUT)
    return value or None


def _segment_cache_key(run_id: int, user_id: int) -> str:
    return f"segmentation:segment:{run_id}:{user_id}"


def forget_cached_segments(user_ids: set[int], using: str = "default") -> None:
    """Drop the cached segment of these users in every stored run (after their memberships were erased)."""
    if not user_ids:
        return
    run_ids = SegmentationRun.objects.using(using).values_list("pk", flat=True)
    cache.delete_many([_segment_cache_key(r, u) for r in run_ids for u in user_ids])
