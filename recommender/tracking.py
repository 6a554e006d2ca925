"""Turning requests and Oscar signals into event rows.

Rules that hold for every event:

* one INSERT in the request (``bulk_create(..., ignore_conflicts=True)``): a replay
  with the same ``event_id`` is dropped by the unique constraint;
* never a broker publish in the request, and never an exception out of here: a
  failed insert is logged and the page renders;
* nothing is recorded when tracking is off, for bots, for ``Sec-GPC: 1`` or
  without consent (when consent is required);
* no IP address or user agent is stored; anonymous visitors get a random id in a
  first-party cookie, set only once something was recorded for them.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import uuid
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.db import DatabaseError, connections, router, transaction
from django.http import HttpRequest

from recommender.conf import app_settings

logger = logging.getLogger(__name__)

#: the request being served, so receivers of signals that carry no request
#: (``user_search``, ``order_placed``) can still apply consent and visitor rules
current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "recommender_current_request", default=None
)

EVENT_NAMESPACE = uuid.UUID("6f1c2b1e-8c1d-4f5e-9a57-1d6f0e0b7c3a")
_VISITOR_RE = re.compile(r"^[0-9a-f]{32}$")


@lru_cache(maxsize=4)
def _bot_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def is_bot(request: HttpRequest) -> bool:
    agent = request.headers.get("User-Agent", "")
    return not agent or bool(_bot_pattern(app_settings.BOT_USER_AGENTS).search(agent))


def should_track(request: HttpRequest | None) -> bool:
    """Whether events of this request may be recorded (request-less callers: only the master switch)."""
    if not app_settings.TRACKING_ENABLED:
        return False
    if request is None:
        return True
    cached = getattr(request, "_recommender_track", None)
    if cached is not None:
        return cached
    allowed = not (
        (app_settings.RESPECT_GPC and request.headers.get("Sec-GPC", "").strip() == "1")
        or (app_settings.REQUIRE_CONSENT and request.COOKIES.get(app_settings.CONSENT_COOKIE) != "1")
        or is_bot(request)
    )
    request._recommender_track = allowed
    return allowed


def visitor_id(request: HttpRequest | None, create: bool = True) -> str:
    """The pseudonymous visitor id of this browser, created on first use (cookie set by the middleware)."""
    if request is None:
        return ""
    vid = getattr(request, "_recommender_visitor", None)
    if vid is None:
        vid = request.COOKIES.get(app_settings.VISITOR_COOKIE, "")
        if not _VISITOR_RE.match(vid):
            vid = ""
        request._recommender_visitor = vid
    if not vid and create:
        vid = secrets.token_hex(16)
        request._recommender_visitor = vid
        request._recommender_new_visitor = vid
    return vid


def event_uuid(*parts: Any) -> uuid.UUID:
    """A deterministic event id from a natural key, so replays collide in the database."""
    return uuid.uuid5(EVENT_NAMESPACE, ":".join(str(p) for p in parts))


def request_event_uuid(request: HttpRequest | None, *parts: Any) -> uuid.UUID:
    """Events of one request: deterministic when the client sent ``X-Request-ID`` (so retries dedup)."""
    request_id = request.headers.get("X-Request-ID", "") if request is not None else ""
    if request_id:
        return event_uuid("req", request_id[:128], *parts)
    return uuid.uuid4()


def record(events: Iterable[dict[str, Any]]) -> int:
    """Insert events in one statement; returns how many were handed over (0 on failure).

    Each dict holds Event field values. Failures are logged, never raised, and run in
    a savepoint so the caller's transaction (e.g. the checkout) stays usable.
    """
    from recommender.models import Event

    rows = [Event(**fields) for fields in events]
    if not rows:
        return 0
    connection = connections[router.db_for_write(Event)]
    async_commit = (
        app_settings.EVENT_ASYNC_COMMIT and connection.vendor == "postgresql" and not connection.in_atomic_block
    )
    try:
        with transaction.atomic(using=connection.alias):
            if async_commit:
                # our own transaction: don't wait for the WAL flush (about 3 ms on a plain disk);
                # a server crash may lose the last moments of events, never an order
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            Event.objects.bulk_create(rows, ignore_conflicts=True)
    except (DatabaseError, ValueError, TypeError):
        logger.exception("recommender: could not record %d %s event(s)", len(rows), rows[0].kind)
        return 0
    from recommender.services.serving import bump_generation

    # the visitor's cached recommendation blocks are stale now: the next page reflects this event
    bump_generation({f"u{r.user_id}" if r.user_id else (f"v{r.visitor_id}" if r.visitor_id else "") for r in rows})
    return len(rows)


def request_identity(request: HttpRequest | None, user: Any = None) -> dict[str, Any]:
    """``user`` and ``visitor_id`` fields for an event of this request."""
    user = user if user is not None else getattr(request, "user", None)
    authenticated = bool(user is not None and getattr(user, "is_authenticated", False))
    return {
        "user": user if authenticated else None,
        "visitor_id": visitor_id(request, create=not authenticated),
    }


def merge_visitor(request: HttpRequest | None, user: Any) -> int:
    """Attach the anonymous history of this browser to ``user`` after login."""
    from recommender.models import Event

    vid = visitor_id(request, create=False)
    if not vid or user is None or not getattr(user, "is_authenticated", False):
        return 0
    try:
        with transaction.atomic():
            merged = Event.objects.filter(visitor_id=vid, user__isnull=True).update(user=user)
    except DatabaseError:
        logger.exception("recommender: could not merge visitor history into user %s", user.pk)
        return 0
    from recommender.services.serving import bump_generation

    bump_generation({f"u{user.pk}"})
    return merged
