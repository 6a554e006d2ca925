"""Numbers that say when cached blocks are stale.

* The **catalogue generation** changes whenever a product, its stock, images, categories,
  curated recommendations or the bury list change; it is part of every key of cached product
  facts, cards and shared candidate lists.
* A **visitor's generation** changes whenever an event of theirs is recorded (a view, a basket
  addition, a merge at login, an erasure); it is part of the key of their own blocks, so the
  next page reflects the last view. Their history is cached under the same generation and
  extended with the events this process records, so the page after a view reads it without a
  query.

Capture tells serving through :mod:`recommender.signals` (:func:`connect` wires the receivers).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache

from recommender.conf import app_settings
from recommender.serving.blocks import HistoryRow
from recommender.serving.safety import log_once, safe

CATALOGUE_KEY = "recommender:catalogue-generation"
#: how long this process trusts the catalogue generation it read (its own changes apply at once)
CATALOGUE_SECONDS = 2.0
_last_generation = 0  # the catalogue generation this process saw last
_catalogue_seen = (0, -1.0)  # (generation, monotonic time it was read)


# -- the catalogue ----------------------------------------------------------------------------


def catalogue_generation(memo: dict[str, Any] | None = None) -> int:
    """The catalogue generation, read at most every ``CATALOGUE_SECONDS`` and once per request."""
    global _catalogue_seen
    memo = {} if memo is None else memo
    if "catalogue" not in memo:
        generation, when = _catalogue_seen
        if time.monotonic() - when > CATALOGUE_SECONDS:
            generation = safe(_read_catalogue_generation, None, "cache") or 0
            _catalogue_seen = (generation, time.monotonic())
        memo["catalogue"] = generation
    return memo["catalogue"]


def _read_catalogue_generation() -> int:
    global _last_generation
    generation = cache.get(CATALOGUE_KEY)
    if generation is None:  # a new (or emptied) cache: a new number, never an old one again
        cache.add(CATALOGUE_KEY, time.time_ns(), None)
        generation = cache.get(CATALOGUE_KEY)
    if generation is None:  # the cache does not answer: what this process saw last keeps its copies warm
        return _last_generation
    _last_generation = generation
    return generation


def forget_catalogue_generation() -> None:
    """Read the catalogue generation from the cache on the next request (after emptying the cache:
    tests), rather than go on with this process's copy for up to ``CATALOGUE_SECONDS``."""
    global _last_generation, _catalogue_seen
    _last_generation, _catalogue_seen = 0, (0, -1.0)


def bump_catalogue_generation(**kwargs: Any) -> None:
    """Signal receiver: the catalogue changed, cached product facts and cards are stale (in this
    process at once, even while the cache does not answer)."""
    global _last_generation, _catalogue_seen
    _last_generation = time.time_ns()
    _catalogue_seen = (_last_generation, time.monotonic())
    safe(lambda: cache.set(CATALOGUE_KEY, _last_generation, None), None, "cache")


CATALOGUE_MODELS = (
    ("catalogue", "Product"),
    ("partner", "StockRecord"),
    ("catalogue", "ProductImage"),
    ("catalogue", "ProductCategory"),
    ("catalogue", "ProductRecommendation"),
    ("recommender", "Bury"),
)


# -- visitors ---------------------------------------------------------------------------------


def generation_key(visitor_key: str) -> str:
    return f"recommender:gen:{visitor_key}"


def visitor_prefix(visitor_key: str) -> str:
    """Every cached value of one visitor's own starts with this (an erasure deletes them by it)."""
    return f"recommender:block:{visitor_key}:"


def history_key(visitor_key: str) -> str:
    return f"{visitor_prefix(visitor_key)}history"


def history_entry(generation: int, born: float, rows: list[HistoryRow]) -> dict[str, Any]:
    """A cached history: valid while the visitor's generation is ``generation`` and for at most
    ``BLOCK_CACHE_SECONDS`` after ``born`` (when it was read from the database)."""
    return {"g": generation, "t": born, "rows": [list(r) for r in rows[-app_settings.MAX_HISTORY_LENGTH :]]}


def visitor_state(visitor_key: str, memo: dict[str, Any]) -> tuple[int, list[HistoryRow] | None]:
    """The visitor's generation (0: none yet, or the cache does not answer) and their cached history
    (None: absent or stale), in one round trip per request."""
    key = ("state", visitor_key)
    if key not in memo:
        gkey, hkey = generation_key(visitor_key), history_key(visitor_key)
        found = safe(lambda: cache.get_many([gkey, hkey]), {}, "cache")
        generation, entry = found.get(gkey) or 0, found.get(hkey)
        rows = None
        fresh = isinstance(entry, dict) and time.time() - entry.get("t", 0) < app_settings.BLOCK_CACHE_SECONDS
        if fresh and generation and entry.get("g") == generation:
            rows = [(int(p), float(t), int(e)) for p, t, e in entry["rows"]]
        memo[key] = (generation, rows)
    return memo[key]


def note_events(new_rows: dict[str, list[HistoryRow] | None]) -> None:
    """Events of these visitors (``u<id>`` / ``v<id>``) were recorded: bump their generation, so
    their cached blocks are stale, and extend their cached history, if it is still valid, with
    ``(product, time, type)`` rows (``None``: these events are not history rows, the history is
    read again). Two requests of one visitor recording at the same moment may keep one of the two
    events out of the cached copy: it is read again from the database ``BLOCK_CACHE_SECONDS``
    after its first read at the latest."""
    keys = [k for k in new_rows if k]
    if not keys:
        return
    now = time.time_ns()
    try:
        extend = [k for k in keys if new_rows[k]]
        found = cache.get_many([generation_key(k) for k in extend] + [history_key(k) for k in extend]) if extend else {}
        values: dict[str, Any] = {generation_key(k): now for k in keys}
        for k in extend:
            entry, generation = found.get(history_key(k)), found.get(generation_key(k))
            if isinstance(entry, dict) and generation and entry.get("g") == generation:
                rows = [tuple(r) for r in entry["rows"]] + list(new_rows[k] or [])
                values[history_key(k)] = history_entry(now, entry["t"], rows)
        cache.set_many(values, app_settings.BLOCK_CACHE_SECONDS * 10)
    except Exception:  # the cache is an optimisation: never fail the request for it
        log_once("generation", "recommender: could not bump the visitor cache generation")


def bump_generation(visitor_keys: set[str]) -> None:
    """Something changed these visitors' history (a merge at login, an erasure): their cached
    blocks and history are stale."""
    note_events(dict.fromkeys(visitor_keys))


def forget_visitors(visitor_keys: set[str]) -> None:
    """Drop the cached blocks of these visitors (``u<user id>``, ``v<visitor id>``; an erasure).

    Where the cache can delete by pattern (django-redis) their blocks and generation keys are
    deleted; elsewhere the generation is bumped, so the old blocks are never read again and expire
    within ``BLOCK_CACHE_SECONDS``.
    """
    keys = [k for k in visitor_keys if k]
    if not keys:
        return
    delete_pattern = getattr(cache, "delete_pattern", None)
    try:
        if delete_pattern is None:
            bump_generation(set(keys))
            return
        for k in keys:
            delete_pattern(f"{visitor_prefix(k)}*")
        cache.delete_many([generation_key(k) for k in keys])
    except Exception:  # the cache is an optimisation: never fail the caller for it
        log_once("forget", "recommender: could not drop a visitor's cached blocks")


# -- wiring -----------------------------------------------------------------------------------


def _events_recorded(sender: Any, rows: dict[str, list[HistoryRow] | None], **kwargs: Any) -> None:
    note_events(rows)


def _visitor_merged(sender: Any, visitor_id: str, user: Any, **kwargs: Any) -> None:
    bump_generation({f"u{user.pk}", f"v{visitor_id}"})


def connect() -> None:
    """Catalogue changes bump the catalogue generation; recorded events and merges bump the
    visitors' generations (called from the app's ``ready``)."""
    from django.db.models.signals import post_delete, post_save
    from oscar.core.loading import get_model

    from recommender.signals import events_recorded, visitor_merged

    for app_label, name in CATALOGUE_MODELS:
        model = get_model(app_label, name)
        for signal in (post_save, post_delete):
            signal.connect(bump_catalogue_generation, sender=model, dispatch_uid=f"recommender.catalogue.{name}")
    events_recorded.connect(_events_recorded, dispatch_uid="recommender.serving.events")
    visitor_merged.connect(_visitor_merged, dispatch_uid="recommender.serving.merged")
