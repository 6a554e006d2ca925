"""Query-parameter fields of the recommendation API (they live in :mod:`personalization_core.fields`)."""

from __future__ import annotations

from personalization_core.fields import MAX_INT, StrictIntegerField

__all__ = ["MAX_INT", "StrictIntegerField"]
