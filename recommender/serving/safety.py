"""Serving never fails a page: a failing step is logged (at most once a minute per kind of
failure, with its traceback) and its fallback is used."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("recommender.serving")

_last_error_log: dict[str, float] = {}


def safe(func: Callable[[], Any], default: Any, what: str) -> Any:
    """``func()``, or ``default`` when it raises (logged as ``what`` failing)."""
    try:
        return func()
    except Exception:
        log_once(what, f"recommender: {what} failed; using the fallback")
        return default


def log_once(what: str, message: str, interval: float = 60.0) -> None:
    """Log an error with its traceback at most once per ``interval`` seconds per kind of failure."""
    now = time.monotonic()
    if now - _last_error_log.get(what, -interval) >= interval:
        _last_error_log[what] = now
        logger.exception(message)
