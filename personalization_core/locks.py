"""A lock in the Django cache so a periodic task never overlaps itself.

``cache.add`` is atomic on Redis (and on the file/database caches used without
Redis), so the lock holds across worker processes and machines. The lock expires after its
timeout, so a worker killed while holding it blocks the task for that long at most.

When the cache cannot answer (Redis down or hung: django-redis with ``IGNORE_EXCEPTIONS``
returns ``None`` from ``add``), nobody can know whether another run holds the lock, so the
task does not run: :meth:`TaskLocks.single_instance` skips it and logs a warning, never
crashing the worker and never running a task twice at once.

Each app makes one :class:`TaskLocks` with its own default timeout (its ``TASK_LOCK_TIMEOUT``
setting); the lock names share one key space, so either app can see the other's locks.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.core.cache import cache

F = TypeVar("F", bound=Callable[..., Any])

#: cache key of the lock ``name`` (the prefix predates this package: workers of every release agree on it)
KEY_FORMAT = "recommender:lock:{name}"


class LockHeld(RuntimeError):
    """Another run of the same task holds the lock."""


class LockUnavailable(LockHeld):
    """The cache that holds the locks does not answer: the lock cannot be taken safely."""


class TaskLocks:
    """:meth:`task_lock` and :meth:`single_instance` of one app: ``default_timeout()`` seconds unless
    told, skips and release failures logged to ``logger`` (the app's, so its logging settings apply)."""

    def __init__(self, default_timeout: Callable[[], int], logger: logging.Logger) -> None:
        self.default_timeout = default_timeout
        self.logger = logger

    @contextmanager
    def task_lock(self, name: str, timeout: int | None = None) -> Iterator[None]:
        """Hold the lock ``name`` for the block; raise :class:`LockHeld` if another run holds it,
        :class:`LockUnavailable` if the cache does not answer. Expires after ``timeout`` seconds
        (default ``default_timeout()``); released at the end of the block if still ours."""
        key = KEY_FORMAT.format(name=name)
        token = uuid.uuid4().hex
        try:
            added = cache.add(key, token, timeout or self.default_timeout())
        except Exception as error:  # a cache that raises instead of ignoring its outage
            raise LockUnavailable(name) from error
        if added is None:  # django-redis with IGNORE_EXCEPTIONS: Redis did not answer
            raise LockUnavailable(name)
        if not added:
            raise LockHeld(name)
        try:
            yield
        finally:
            try:
                if cache.get(key) == token:
                    cache.delete(key)
            except Exception:  # the cache went away during the run: the lock expires on its own
                self.logger.warning("could not release the lock %s; it expires after its timeout", name)

    def single_instance(self, name: str | None = None, timeout: int | None = None) -> Callable[[F], F]:
        """Decorate a task body: a second concurrent call returns ``{"skipped": "locked"}`` at once."""

        def decorate(func: F) -> F:
            lock_name = name or f"{func.__module__}.{func.__qualname__}"

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    with self.task_lock(lock_name, timeout):
                        return func(*args, **kwargs)
                except LockUnavailable:
                    self.logger.warning("%s skipped: the cache holding its lock does not answer", lock_name)
                    return {"skipped": "lock unavailable"}
                except LockHeld:
                    self.logger.info("%s is already running; skipped", lock_name)
                    return {"skipped": "locked"}

            return wrapper  # type: ignore[return-value]

        return decorate
