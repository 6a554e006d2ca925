"""Writing what a page measured off the request thread.

A page hands its rows (the blocks it showed, the click that brought the shopper, their exposure) to
this process's writer thread and goes on; the thread inserts each page's rows as the page would have
(:func:`recommender.tracking.insert`: one round trip, one transaction), over a database connection
of its own that it keeps. The page then no longer waits for PostgreSQL: the recording's own time in
a product page with three blocks went from 1.49 to 0.51 ms at the median
(``benchmarks/measurement_cost.py``).

Only where that is safe (:func:`applies`): ``IMPRESSIONS_WRITER = "thread"``, PostgreSQL, and no
transaction open on the page's connection (the thread's connection could not see rows the page has
not committed yet). Elsewhere the page writes its rows itself.

What is queued waits only for the pages queued before it. A full queue (the database down or slower
than the pages, ``QUEUE_PAGES`` of them waiting) drops a page's rows with a logged warning rather
than hold the page; a failed insert is logged, as in the page, and the thread's connection opened
afresh (once more for the same rows when the connection itself had broken: the first page after a
database restart is not lost; pages while it is down are); after ``IDLE_SECONDS`` without a page the
thread closes its connection. At exit the thread writes what is queued (for up to ``EXIT_SECONDS``).
Readers that must see this process's rows (attribution at checkout, a login's merge, erasure and
export) call :func:`wait` first; it waits for this process's queue only, and another process's rows
arrive within the time that process takes to write a page.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
import time
from typing import Any

from django.db import connections, router

from recommender.conf import app_settings
from recommender.tracking import insert

logger = logging.getLogger(__name__)

#: pages whose rows may wait for the thread before a page's rows are dropped
QUEUE_PAGES = 10_000
#: how long the process waits at exit for the queued rows to be written
EXIT_SECONDS = 5.0
#: the thread closes its database connection after this long without a page to write
IDLE_SECONDS = 60.0
THREAD_NAME = "recommender-measurement"

Batches = list[tuple[Any, list[Any]]]

_lock = threading.Lock()
_queue: queue.Queue[Batches] | None = None
_pid = 0  # the process the queue and its thread belong to (a forked worker makes its own)


def applies(model: Any) -> bool:
    """Whether rows of ``model`` written now would go through the writer thread."""
    if app_settings.IMPRESSIONS_WRITER != "thread":
        return False
    connection = connections[router.db_for_write(model)]
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def submit(batches: Batches) -> bool:
    """Queue one page's ``(model, rows)`` batches for the thread; False (and logged) when the queue
    is full."""
    try:
        _current_queue().put_nowait(batches)
    except queue.Full:
        logger.warning("recommender: %d pages of measurements wait to be written; one page's rows dropped", QUEUE_PAGES)
        return False
    return True


def wait(timeout: float = 2.0) -> bool:
    """Block until the rows this process has queued are written (at most ``timeout`` seconds);
    False if some still wait."""
    q = _queue if _pid == os.getpid() else None
    if q is None:
        return True
    if threading.current_thread().name == THREAD_NAME:  # its own page is among the unfinished
        return False
    deadline = time.monotonic() + timeout
    with q.all_tasks_done:
        while q.unfinished_tasks:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            q.all_tasks_done.wait(left)
    return True


def _current_queue() -> queue.Queue[Batches]:
    global _queue, _pid
    if _pid != os.getpid():
        with _lock:
            if _pid != os.getpid():
                q: queue.Queue[Batches] = queue.Queue(maxsize=QUEUE_PAGES)
                threading.Thread(target=_write, args=(q,), name=THREAD_NAME, daemon=True).start()
                _queue, _pid = q, os.getpid()
    assert _queue is not None
    return _queue


def release(timeout: float = 5.0) -> None:
    """Write what is queued, then have the thread close its database connection (it opens another
    for the next page): before a test database is emptied or dropped."""
    q = _queue if _pid == os.getpid() else None
    if q is not None:
        with contextlib.suppress(queue.Full):
            q.put([], timeout=timeout)  # no batches: close the connection
        wait(timeout)


def _write(q: queue.Queue[Batches]) -> None:
    while True:
        try:
            batches = q.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            connections.close_all()  # this thread's connections: a quiet process holds none
            continue
        try:
            if not batches:
                connections.close_all()
                continue
            (model, rows), *more = batches
            written = insert(model, rows, "measurement", *more)
            if not written and _reconnected(model) and insert(model, rows, "measurement", *more):
                logger.warning("recommender: a page's measurements were written on a new database connection")
        except Exception:  # the thread must outlive anything one page's rows do
            logger.exception("recommender: could not write a page's measurements")
        finally:
            q.task_done()


def _reconnected(model: Any) -> bool:
    """After a failed insert: close the thread's connection (the next insert opens another); True
    when the connection itself had broken (the database restarted, the session ended), so the same
    rows are worth a second try."""
    connection = connections[router.db_for_write(model)]
    broken = connection.connection is not None and not connection.is_usable()
    connection.close()
    return broken


def _forget_in_child() -> None:
    """A forked process (a web server's worker) starts its own thread and queue on first use, with a
    lock of its own (the parent's may have been held by another thread at the fork)."""
    global _lock, _queue, _pid
    _lock, _queue, _pid = threading.Lock(), None, 0


os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(wait, EXIT_SECONDS)
