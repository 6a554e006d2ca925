"""Progress of long fits, for whoever is listening (a progress bar, a log), without a parameter.

A model's ``fit`` calls :func:`report` at each step worth telling (an epoch ended); a caller
that wants to know wraps the fit in :func:`listening`. Nothing listens by default, and a
listener's exception never reaches the fit.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["listening", "report"]

Listener = Callable[[dict[str, Any]], None]

_listener: ContextVar[Listener | None] = ContextVar("recommender_fit_progress", default=None)
logger = logging.getLogger(__name__)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send what fits inside this block report to ``listener`` (a dict per report)."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def report(**info: Any) -> None:
    """Tell the listener, if any, e.g. ``report(stage="epoch", epoch=3, epochs=12)``."""
    listener = _listener.get()
    if listener is None:
        return
    try:
        listener(info)
    except Exception:  # a broken progress bar must not stop a fit
        logger.exception("a progress listener failed")
