"""A django-redis cache backend that a dead or hung Redis cannot slow down.

``django_redis.cache.RedisCache`` with ``IGNORE_EXCEPTIONS`` turns a dead Redis into cache
misses, but a *hung* Redis (paused, swapping, a half-open network path) makes every cache call
wait for its socket timeout, and a catalogue page makes dozens of calls. This backend adds a
circuit breaker in front of the client:

* the first call that fails with a connection error or a timeout opens the breaker, and for
  the next ``CIRCUIT_BREAKER_SECONDS`` every call of this process skips Redis at once and
  behaves as if Redis had failed (a miss for reads, nothing stored for writes);
* when the interval is over, exactly one call tries Redis again: if it answers, the breaker
  closes; if not, it stays open for another interval;
* each opening (so at most one per interval and process) logs one warning line, without a
  traceback, on the ``recommender.cache`` logger; recovery logs one info line.

Every process (and every thread of it) shares one breaker per cache ``LOCATION``; processes
do not coordinate, so each one pays one socket timeout per interval at most.

``OPTIONS`` are django-redis's, plus ``CIRCUIT_BREAKER_SECONDS`` (default ``30``; ``0`` turns
the breaker off), and different defaults: ``SOCKET_CONNECT_TIMEOUT`` and ``SOCKET_TIMEOUT``
``0.25`` seconds (django-redis waits forever by default), ``IGNORE_EXCEPTIONS`` ``True``.
``DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS`` is not used: the breaker's line replaces the
traceback django-redis would log for every failed call.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("recommender.cache")

DEFAULT_OPTIONS: dict[str, Any] = {
    "SOCKET_CONNECT_TIMEOUT": 0.25,
    "SOCKET_TIMEOUT": 0.25,
    "IGNORE_EXCEPTIONS": True,
    "CIRCUIT_BREAKER_SECONDS": 30,
}
# errors that say "Redis is not answering" (a wrong type or a bad command does not open the breaker)
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, socket.timeout, OSError)
# client methods that never talk to Redis, or must always run (closing connections)
NOT_GUARDED = frozenset({"close", "disconnect", "make_key", "make_pattern", "encode", "decode", "get_client"})


class CircuitOpen(RedisConnectionError):
    """Raised instead of calling Redis while the breaker is open."""


class CircuitBreaker:
    """Open/closed state of one Redis location in this process, safe across threads."""

    def __init__(self, name: str, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0  # 0: closed
        self.skipped = 0  # calls answered without Redis since the breaker last opened

    @property
    def is_open(self) -> bool:
        return self._open_until != 0.0

    def allow(self) -> bool:
        """May this call go to Redis? While open: no, except one probe per interval."""
        if self._open_until == 0.0 or self.seconds <= 0:
            return True
        with self._lock:
            now = self.clock()
            if self._open_until == 0.0:
                return True
            if now >= self._open_until:
                self._open_until = now + self.seconds  # this caller probes; the others keep skipping
                return True
            self.skipped += 1
            return False

    def reset(self) -> None:
        """Close the breaker now (the next call tries Redis), e.g. after an operator restored it."""
        with self._lock:
            self._open_until = 0.0
            self.skipped = 0

    def succeeded(self) -> None:
        if self._open_until == 0.0:
            return
        with self._lock:
            if self._open_until != 0.0:
                self._open_until = 0.0
                logger.info("cache %s answers again; %d calls skipped it while it was down", self.name, self.skipped)
                self.skipped = 0

    def failed(self, error: BaseException) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            self._open_until = self.clock() + self.seconds
        logger.warning(
            "cache %s unavailable (%s: %s); skipping it for %g s",
            self.name,
            type(error).__name__,
            error,
            self.seconds,
        )


_breakers: dict[tuple[str, float], CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(location: str, seconds: float) -> CircuitBreaker:
    """The process-wide breaker of a cache location (Django makes one backend per thread)."""
    key = (location, seconds)
    with _breakers_lock:
        if key not in _breakers:
            _breakers[key] = CircuitBreaker(_redact(location), seconds)
        return _breakers[key]


def reset_breakers() -> None:
    """Close every breaker of this process (tests start each case with Redis trusted again)."""
    with _breakers_lock:
        for breaker in _breakers.values():
            breaker.reset()


def _redact(location: str) -> str:
    """The location without a password, for log lines."""
    if "@" in location:
        scheme, _, rest = location.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return location


class _GuardedClient:
    """Wraps a django-redis client: calls pass through the breaker."""

    def __init__(self, client: Any, breaker: CircuitBreaker) -> None:
        self._client = client
        self._breaker = breaker

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name in NOT_GUARDED or name.startswith("_") or not callable(attr):
            return attr
        breaker = self._breaker

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not breaker.allow():
                raise ConnectionInterrupted(connection=None) from CircuitOpen("circuit breaker open")
            try:
                result = attr(*args, **kwargs)
            except ConnectionInterrupted as error:
                if isinstance(error.__cause__, OUTAGE_ERRORS):
                    breaker.failed(error.__cause__)
                raise
            except OUTAGE_ERRORS as error:  # a path of the client that does not wrap its errors
                breaker.failed(error)
                raise ConnectionInterrupted(connection=None) from error
            breaker.succeeded()
            return result

        return guarded


class ResilientRedisCache(RedisCache):
    """``django_redis.cache.RedisCache`` with short socket timeouts and a circuit breaker."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = {**DEFAULT_OPTIONS, **params.get("OPTIONS", {})}
        seconds = float(options.pop("CIRCUIT_BREAKER_SECONDS"))
        super().__init__(server, {**params, "OPTIONS": options})
        self._log_ignored_exceptions = False  # the breaker logs one line per interval instead
        self.breaker = breaker_for(server if isinstance(server, str) else ",".join(server), seconds)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _GuardedClient(self._client_cls(self._server, self._params, self), self.breaker)
        return self._client
