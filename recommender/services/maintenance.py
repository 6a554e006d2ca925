"""Batch operations on captured events (called by tasks and commands)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from recommender.conf import app_settings


def purge_old_events(retention_days: int | None = None) -> int:
    """Delete events older than the retention period; returns how many were deleted."""
    from recommender.models import Event

    days = app_settings.EVENT_RETENTION_DAYS if retention_days is None else retention_days
    if days is None:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = Event.objects.filter(created__lt=cutoff).delete()
    return deleted
