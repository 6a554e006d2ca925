"""Where serving keeps what it has computed: one request's memo, this process's copy and the
shared cache (Redis in production).

Keys of the process copy and the shared cache name everything their value depends on (the
catalogue generation, the live versions, for a visitor's own list the visitor and their
generation), so a change makes new keys and nothing has to be invalidated. The process copy
keeps an entry at most ``LOCAL_SECONDS`` (then the shared cache, or the database, is asked
again) and lets pages go on while the shared cache does not answer.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from cachetools import TTLCache
from django.core.cache import cache

from recommender.serving.safety import safe

LOCAL_ITEMS = 20_000
LOCAL_SECONDS = 60
_local: TTLCache = TTLCache(maxsize=LOCAL_ITEMS, ttl=LOCAL_SECONDS)
_local_lock = threading.Lock()


def shared_get_many(keys: list[str]) -> dict[str, Any]:
    """Values of ``keys``: from this process's copy, else the cache (and then kept here too)."""
    with _local_lock:
        found = {k: _local[k] for k in keys if k in _local}
    missing = [k for k in keys if k not in found]
    if missing:
        fetched = safe(lambda: cache.get_many(missing), {}, "cache")
        if fetched:
            with _local_lock:
                _local.update(fetched)
            found.update(fetched)
    return found


def shared_set_many(values: dict[str, Any], seconds: int) -> None:
    """Store values, in the cache for ``seconds`` and in this process."""
    with _local_lock:
        _local.update(values)
    safe(lambda: cache.set_many(values, seconds), None, "cache")


def local_get(key: str) -> Any:
    """A value kept in this process's copy only (None: absent or expired)."""
    with _local_lock:
        return _local.get(key)


def local_set(key: str, value: Any) -> None:
    """Keep a value in this process's copy only (no round trip to the cache)."""
    with _local_lock:
        _local[key] = value


def forget_local() -> None:
    """Drop this process's copy of shared values (tests)."""
    with _local_lock:
        _local.clear()


def request_memo(request: Any) -> dict[str, Any]:
    """What one request has looked up already (basket, histories, catalogue generation, live
    versions), shared by the blocks of a page; a fresh dict without a request."""
    if request is None:
        return {}
    memo = getattr(request, "_recommender_memo", None)
    if memo is None:
        memo = {}
        with contextlib.suppress(AttributeError):  # an object that takes no attributes: no sharing
            request._recommender_memo = memo
    return memo
