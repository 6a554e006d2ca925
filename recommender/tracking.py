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

The visitor cookie is signed (:mod:`django.core.signing`, salt :data:`VISITOR_COOKIE_SALT`):
an unsigned (old-style) or forged value is ignored, as if there were no cookie, and replaced
by a fresh id at the next recorded event. Its value is ``<id>|<m>``, where ``m`` says whether
the id's anonymous history may ever be attached to an account (``1``: minted for a new
browser; ``0``: minted at a login or logout, see :func:`rotate_visitor`).

A visitor id counts only in the browser session that recorded under it: the session holds
``[id, unix time]``, written when the first event of the id is recorded in that session. A
cookie whose id this session is not bound to (copied into another browser, or kept by a browser
whose session ended) is ignored as if absent: that browser reads no history of the id, and its
next event mints a fresh id. So at login (:func:`merge_visitor`) an account receives only what
*this browser* recorded under a mergeable id, and a copied cookie never carries another
browser's events, earlier or later, into it or into its blocks. After any login or logout the browser gets a fresh,
non-mergeable id: on a shared device the next person's anonymous views stay anonymous and
never go into the account of whoever signs in next.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from django.db import DatabaseError, connections, router, transaction
from django.http import HttpRequest
from oscar.core.loading import get_model

from recommender.conf import app_settings
from recommender.signals import events_recorded, visitor_merged

logger = logging.getLogger(__name__)

#: the request being served, so receivers of signals that carry no request
#: (``user_search``, ``order_placed``) can still apply consent and visitor rules
current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "recommender_current_request", default=None
)

EVENT_NAMESPACE = uuid.UUID("6f1c2b1e-8c1d-4f5e-9a57-1d6f0e0b7c3a")
_VISITOR_RE = re.compile(r"^([0-9a-f]{32})\|([01])$")
#: salt of the signed visitor cookie (``HttpResponse.set_signed_cookie``)
VISITOR_COOKIE_SALT = "recommender.visitor"
#: session key binding a browser's session to the visitor id it recorded events under
SESSION_KEY = "_recommender_visitor"


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


def _cookie_visitor(request: HttpRequest) -> tuple[str, bool]:
    """``(id, mergeable)`` from the signed visitor cookie; ``("", False)`` when absent, unsigned or forged."""
    try:
        value = request.get_signed_cookie(
            app_settings.VISITOR_COOKIE, default="", salt=VISITOR_COOKIE_SALT, max_age=app_settings.VISITOR_COOKIE_AGE
        )
    except Exception:  # a malformed cookie is no cookie
        value = ""
    match = _VISITOR_RE.match(value or "")
    return (match.group(1), match.group(2) == "1") if match else ("", False)


def visitor_cookie_value(vid: str, mergeable: bool) -> str:
    """What the middleware signs into the visitor cookie."""
    return f"{vid}|{1 if mergeable else 0}"


def visitor_id(request: HttpRequest | None, create: bool = True) -> str:
    """The pseudonymous visitor id of this browser, created on first use (cookie set by the middleware)."""
    if request is None:
        return ""
    vid = getattr(request, "_recommender_visitor", None)
    if vid is None:
        vid, mergeable = _cookie_visitor(request)
        if vid and not _session_bound_to(request, vid):
            vid, mergeable = "", False  # copied from another browser, or this browser's session ended
        request._recommender_visitor = vid
        request._recommender_mergeable = mergeable
    if not vid and create:
        vid = secrets.token_hex(16)
        request._recommender_visitor = vid
        # an id minted after this request's login or logout is never merged into an account
        request._recommender_mergeable = not getattr(request, "_recommender_rotate", False)
        request._recommender_new_visitor = vid
    return vid


def _session_bound_to(request: HttpRequest, vid: str) -> bool:
    """Whether this browser's session recorded events under ``vid`` (without sessions, the signed
    cookie alone counts)."""
    session = getattr(request, "session", None)
    if session is None:
        return True
    try:
        bound = session.get(SESSION_KEY)
    except Exception:  # a session backend problem: the cookie is not trusted, the page renders
        logger.exception("recommender: could not read the session's visitor id")
        return False
    return isinstance(bound, list) and bound[:1] == [vid]


def bind_session(request: HttpRequest | None, vid: str) -> None:
    """Remember in this browser's session since when it records events under ``vid``."""
    session = getattr(request, "session", None)
    if session is None or not vid:
        return
    try:
        bound = session.get(SESSION_KEY)
        if not (isinstance(bound, list) and bound[:1] == [vid]):
            session[SESSION_KEY] = [vid, time.time()]
    except Exception:  # a session backend problem must not break the page
        logger.exception("recommender: could not bind the session to its visitor id")


def event_uuid(*parts: Any) -> uuid.UUID:
    """A deterministic event id from a natural key, so replays collide in the database."""
    return uuid.uuid5(EVENT_NAMESPACE, ":".join(str(p) for p in parts))


def request_event_uuid(request: HttpRequest | None, identity: dict[str, Any], *parts: Any) -> uuid.UUID:
    """Events of one request: deterministic when the client sent ``X-Request-ID`` (so retries dedup).

    The id is scoped to the person (``identity`` from :func:`request_identity`): a retry of the
    same visitor's request collides, while another visitor reusing the same ``X-Request-ID``
    never swallows their event.
    """
    request_id = request.headers.get("X-Request-ID", "") if request is not None else ""
    if request_id:
        user = identity.get("user")
        who = f"u{user.pk}" if user is not None else f"v{identity.get('visitor_id', '')}"
        return event_uuid("req", who, request_id[:128], *parts)
    return uuid.uuid4()


def record(events: Iterable[dict[str, Any]]) -> int:
    """Insert events in one statement; returns how many were handed over (0 on failure).

    Each dict holds Event field values. Failures are logged, never raised, and run in
    a savepoint so the caller's transaction (e.g. the checkout) stays usable.
    """
    Event = get_model("recommender", "Event")
    rows = [Event(**fields) for fields in events]
    if not rows or not insert(Event, rows, f"{rows[0].kind} event"):
        return 0
    # the visitor's cached recommendation blocks are stale now: the next page reflects this event
    events_recorded.send(sender=Event, rows=history_rows(rows))
    return len(rows)


def insert(model: Any, rows: list[Any], what: str, *more: tuple[Any, list[Any]]) -> bool:
    """Insert ``rows`` of ``model`` in one statement (and the ``(model, rows)`` pairs of ``more``, one
    statement each, in the same transaction), ignoring duplicates of a unique key; False (and
    logged) on failure, never raised.

    Outside any transaction on PostgreSQL the statements travel in one round trip, as one implicit
    transaction that, with ``EVENT_ASYNC_COMMIT``, commits without waiting for the WAL flush (about
    3 ms on a plain disk: a server crash may lose the last moments of behaviour, never an order).
    Inside a transaction (the checkout's) and on other databases they run in a savepoint through
    ``bulk_create``, so the caller's transaction stays usable."""
    connection = connections[router.db_for_write(model)]
    batches = [(each_model, each_rows) for each_model, each_rows in ((model, rows), *more) if each_rows]
    try:
        if _in_one_round_trip(connection):
            statements = [insert_statement(each_model, each_rows, connection) for each_model, each_rows in batches]
            if app_settings.EVENT_ASYNC_COMMIT:
                statements.insert(0, ("SET LOCAL synchronous_commit TO OFF", []))
            with connection.cursor() as cursor:
                cursor.execute("; ".join(sql for sql, _ in statements), [p for _, params in statements for p in params])
        else:
            with transaction.atomic(using=connection.alias):
                for each_model, each_rows in batches:
                    each_model._default_manager.bulk_create(each_rows, ignore_conflicts=True)
    except (DatabaseError, ValueError, TypeError):
        logger.exception("recommender: could not record %d %s row(s)", len(rows), what)
        return False
    return True


def _in_one_round_trip(connection: Any) -> bool:
    """PostgreSQL in autocommit mode with client-side parameter binding (Django's default), where
    several statements sent together run as one transaction."""
    return (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and connection.settings_dict.get("OPTIONS", {}).get("server_side_binding") is not True
    )


def insert_statement(model: Any, rows: list[Any], connection: Any) -> tuple[str, list[Any]]:
    """``INSERT ... VALUES (...), ... ON CONFLICT DO NOTHING`` for ``rows`` and its parameters: the
    values Django's own insert sends (each field's ``pre_save`` and database preparation), without
    compiling a query for each page (``bulk_create`` spends about a millisecond on that)."""
    table, columns, fields = _insert_shape(model, connection.alias)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(rows))} ON CONFLICT DO NOTHING"
    return sql, [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in rows for field in fields]


@cache
def _insert_shape(model: Any, alias: str) -> tuple[str, str, tuple[Any, ...]]:
    opts = model._meta
    fields = tuple(f for f in opts.concrete_fields if f is not opts.auto_field and not f.generated)
    quote = connections[alias].ops.quote_name
    return quote(opts.db_table), ", ".join(quote(f.column) for f in fields), fields


def history_rows(rows: list[Any]) -> dict[str, list[tuple[int, float, int]] | None]:
    """Per person (``u<user id>`` / ``v<visitor id>``) the ``(product, time, type)`` history rows these
    new events add, as ``recommender.serving.history.history_for`` reads them; ``None`` where an event is no history row
    or may be a replay (an id derived from the client's ``X-Request-ID`` that the database may
    have ignored as a duplicate): that person's history is read again."""
    from recommender.queries import EVENT_TYPES

    out: dict[str, list[tuple[int, float, int]] | None] = {}
    for r in rows:
        key = f"u{r.user_id}" if r.user_id else (f"v{r.visitor_id}" if r.visitor_id else "")
        if not key:
            continue
        # the product object the event was made with (never a query for it)
        product = r._meta.get_field("product").get_cached_value(r, None) if r.product_id else None
        replayable = getattr(r.event_id, "version", None) != 4
        if product is None or r.kind not in EVENT_TYPES or replayable or out.get(key, []) is None:
            out[key] = None
            continue
        out.setdefault(key, []).append((product.parent_id or product.pk, r.created.timestamp(), EVENT_TYPES[r.kind]))
    return out


def request_identity(request: HttpRequest | None, user: Any = None) -> dict[str, Any]:
    """``user`` and ``visitor_id`` fields for an event of this request.

    A signed-in customer's events carry the account only; an anonymous visitor's carry the
    visitor id (created if needed), and the browser's session is bound to that id.
    """
    user = user if user is not None else getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return {"user": user, "visitor_id": ""}
    vid = visitor_id(request, create=True)
    bind_session(request, vid)
    return {"user": None, "visitor_id": vid}


def merge_visitor(request: HttpRequest | None, user: Any) -> int:
    """Attach what this browser recorded anonymously to ``user`` after login (see the module doc).

    Only a signed, mergeable cookie whose id this browser's session is bound to merges, and only
    the events of that id recorded since the binding. The browser then gets a fresh id.
    """
    Event = get_model("recommender", "Event")
    if request is None or user is None or not getattr(user, "is_authenticated", False):
        return 0
    vid = visitor_id(request, create=False)
    mergeable = getattr(request, "_recommender_mergeable", False)
    session = getattr(request, "session", None)
    bound = session.get(SESSION_KEY) if session is not None else None
    rotate_visitor(request)
    if not (vid and mergeable and isinstance(bound, list) and len(bound) == 2 and bound[0] == vid):
        return 0
    since = datetime.fromtimestamp(float(bound[1]), tz=UTC)
    try:
        with transaction.atomic():
            merged = Event.objects.filter(visitor_id=vid, user__isnull=True, created__gte=since).update(user=user)
    except DatabaseError:
        logger.exception("recommender: could not merge visitor history into user %s", user.pk)
        return 0
    visitor_merged.send(sender=Event, visitor_id=vid, user=user, since=since)
    return merged


def rotate_visitor(request: HttpRequest | None) -> None:
    """Retire this browser's visitor id (at login and logout): the rest of the request has none,
    and the middleware gives the browser a fresh, non-mergeable id (or deletes the cookie when
    the request is not tracked)."""
    if request is None:
        return
    request._recommender_visitor = ""
    request._recommender_mergeable = False
    request._recommender_new_visitor = None
    request._recommender_rotate = True
    session = getattr(request, "session", None)
    if session is not None:
        try:
            session.pop(SESSION_KEY, None)
        except Exception:
            logger.exception("recommender: could not clear the session's visitor binding")
