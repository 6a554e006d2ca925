"""A lock in the Django cache so a periodic task never overlaps itself.

``cache.add`` is atomic on Redis (and on the file/database caches used without
Redis), so the lock holds across worker processes and machines.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.core.cache import cache

from recommender.conf import app_settings

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


class LockHeld(RuntimeError):
    """Another run of the same task holds the lock."""


@contextmanager
def task_lock(name: str, timeout: int | None = None) -> Iterator[None]:
    key = f"recommender:lock:{name}"
    token = uuid.uuid4().hex
    if not cache.add(key, token, timeout or app_settings.TASK_LOCK_TIMEOUT):
        raise LockHeld(name)
    try:
        yield
    finally:
        if cache.get(key) == token:
            cache.delete(key)


def single_instance(name: str | None = None, timeout: int | None = None) -> Callable[[F], F]:
    """Decorate a task body: a second concurrent call returns ``{"skipped": "locked"}`` at once."""

    def decorate(func: F) -> F:
        lock_name = name or f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                with task_lock(lock_name, timeout):
                    return func(*args, **kwargs)
            except LockHeld:
                logger.info("%s is already running; skipped", lock_name)
                return {"skipped": "locked"}

        return wrapper  # type: ignore[return-value]

    return decorate
