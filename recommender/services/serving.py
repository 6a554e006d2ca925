"""One service under the template tags and the API: who asks, what they did, what to show.

:func:`recommend` returns a :class:`Block` for a placement. It walks the placement's fallback
ladder (curated -> model -> item-to-item -> trending in segment -> trending -> best sellers)
until the block is full, so it is never empty while the shop sells anything; each item says
which rung it came from and why it is shown. Rules every block obeys:

* only products a shopper can buy now: public, browsable, not excluded or buried, and
  available to buy with a price by the request's strategy (live stock and price), fetched in
  bulk with their stock records;
* never the product on the page nor what is in the basket; already-bought products only where
  the placement wants them (``buy_again``); at most ``MAX_PER_CATEGORY`` of one category;
* private: the history is the requesting visitor's own (the user when logged in, else the
  visitor cookie); the per-visitor cache key includes the visitor and a generation number that
  every recorded event of that visitor bumps, so the next page reflects the last view; their
  history is cached under the same generation and extended by the events this process records,
  so the page after a view reads it without a query;
* safe: a failing rung (damaged model file, Redis down, a bug) is logged and skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from typing import Any

import numpy as np
from cachetools import TTLCache
from django.core import signing
from django.core.cache import cache
from django.db.models import Count, Q
from django.utils.translation import gettext as _
from oscar.core.loading import get_class, get_model

from recommender.abstract_models import ModelKind
from recommender.conf import app_settings
from recommender.ml.data import EVENT_PURCHASE
from recommender.services import versions
from recommender.services.personal_data import without_erased_orders

logger = logging.getLogger(__name__)

SIGNING_SALT = "recommender.click"
BEST_SELLERS_KEY = "recommender:best-sellers"
CATALOGUE_KEY = "recommender:catalogue-generation"
#: rungs that read the visitor's own history (a placement without them is shared by all visitors)
PERSONAL_RUNGS = frozenset({"model", "item_to_item", "buy_again", "recently_viewed"})
_last_error_log: dict[str, float] = {}
#: this process's copy of cached values (product facts, cards, candidate lists): their keys hold the
#: catalogue generation, the live versions and, for a visitor's own list, the visitor and their
#: generation, so a change makes new keys;
#: entries live at most ``LOCAL_SECONDS`` (then Redis, or the database, is asked again)
LOCAL_ITEMS = 20_000
LOCAL_SECONDS = 60
_local: TTLCache = TTLCache(maxsize=LOCAL_ITEMS, ttl=LOCAL_SECONDS)
_local_lock = threading.Lock()
_last_generation = 0  # the catalogue generation this process saw last
_catalogue_seen = (0, -1.0)  # (generation, monotonic time it was read): re-read at most every CATALOGUE_SECONDS
#: how long this process trusts the catalogue generation it read (its own changes apply at once)
CATALOGUE_SECONDS = 2.0


@dataclass(frozen=True)
class Placement:
    name: str
    title: str
    rungs: tuple[str, ...]
    exclude_purchased: bool = True
    #: the products in the basket are anchors beside the page's product ("bought together");
    #: otherwise the basket anchors a block only on a page without a product
    basket_anchors: bool = False


PLACEMENTS: dict[str, Placement] = {
    p.name: p
    for p in (
        Placement("for_you", "Recommended for you",
                  ("model", "item_to_item", "trending_segment", "trending", "best_sellers")),
        Placement("also_bought", "Customers who bought this also bought",
                  ("curated", "also_bought", "also_viewed", "trending", "best_sellers")),
        Placement("also_viewed", "Customers who viewed this also viewed",
                  ("also_viewed", "also_bought", "trending", "best_sellers")),
        Placement("bought_together", "Frequently bought together",
                  ("bought_together", "also_bought", "trending", "best_sellers"), basket_anchors=True),
        Placement("trending", "Trending now", ("trending_segment", "trending", "best_sellers")),
        Placement("buy_again", "Buy it again", ("buy_again",), exclude_purchased=False),
        Placement("recently_viewed", "Recently viewed", ("recently_viewed",), exclude_purchased=False),
    )
}  # fmt: skip


class UnknownPlacement(ValueError):
    pass


@dataclass
class Visitor:
    """Who is asking: a user, or an anonymous browser's visitor id (or nobody known yet)."""

    user: Any | None
    visitor_id: str

    @property
    def key(self) -> str:
        if self.user is not None:
            return f"u{self.user.pk}"
        return f"v{self.visitor_id}" if self.visitor_id else ""

    @property
    def digest(self) -> str:
        return hashlib.blake2s(self.key.encode(), digest_size=6).hexdigest()


def visitor_of(request: Any) -> Visitor:
    from recommender.tracking import visitor_id

    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return Visitor(user, "")
    return Visitor(None, visitor_id(request, create=False))


@dataclass
class Item:
    """One recommended product. ``product`` is loaded by :func:`recommend` (``load_products``);
    the template tag renders cached cards from ``product_id`` instead (see ``recommender_tags``)."""

    product_id: int
    reason: str
    rung: str
    position: int
    version_id: int | None
    token: str = ""
    product: Any = None
    card: str = ""  # the rendered product card (template tag)

    @property
    def url(self) -> str:
        url = self.product.get_absolute_url()
        return f"{url}?rec={self.token}" if self.token else url


@dataclass
class Block:
    placement: str
    title: str
    items: list[Item] = field(default_factory=list)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class Candidate:
    product_id: int
    rung: str
    reason: str
    version_id: int | None = None


@dataclass
class Context:
    """What one request knows: the visitor, their history, the page's product, the basket."""

    visitor: Visitor
    history: list[tuple[int, float, int]]  # (product id, unix time, event type), oldest first
    product_id: int | None
    basket_ids: set[int]
    purchased_ids: set[int]
    segment: str | None
    titles: dict[int, str] = field(default_factory=dict)


# -- the visitor's own history ---------------------------------------------------------------


def history_for(user: Any | None, visitor_id: str, limit: int | None = None) -> list[tuple[int, float, int]]:
    """``(product id, unix time, event type)`` of what this person bought, viewed or put in a basket,
    oldest first, the last ``limit`` (default ``MAX_HISTORY_LENGTH``); children count as their parent."""
    from recommender.exporters import EVENT_TYPES

    limit = limit or app_settings.MAX_HISTORY_LENGTH
    Event = get_model("recommender", "Event")
    Line = get_model("order", "Line")
    rows: list[tuple[int, Any, int]] = []
    if user is not None:
        who = Q(user=user)
        bought = (
            without_erased_orders(Line.objects.filter(order__user=user, product__isnull=False, quantity__gt=0))
            .order_by("-order__date_placed")
            .values_list("product_id", "order__date_placed", "product__parent_id")[:limit]
        )
        rows += [(parent or pid, when, EVENT_PURCHASE) for pid, when, parent in bought]
    elif visitor_id:
        who = Q(visitor_id=visitor_id, user__isnull=True)
    else:
        return []
    events = (
        Event.objects.filter(who, kind__in=list(EVENT_TYPES), product__isnull=False)
        .order_by("-created")
        .values_list("product_id", "created", "kind", "product__parent_id")[:limit]
    )
    rows += [(parent or pid, when, EVENT_TYPES[kind]) for pid, when, kind, parent in events]
    rows.sort(key=lambda r: r[1])
    return [(pid, when.timestamp(), kind) for pid, when, kind in rows][-limit:]


def generation_key(visitor_key: str) -> str:
    return f"recommender:gen:{visitor_key}"


def history_key(visitor_key: str) -> str:
    # under the visitor's block prefix, so an erasure (forget_visitors) deletes it with their blocks
    return f"recommender:block:{visitor_key}:history"


def _history_entry(generation: int, born: float, rows: list[tuple[int, float, int]]) -> dict[str, Any]:
    """A cached history: valid while the visitor's generation is ``generation`` and for at most
    ``BLOCK_CACHE_SECONDS`` after ``born`` (when it was read from the database)."""
    return {"g": generation, "t": born, "rows": [list(r) for r in rows[-app_settings.MAX_HISTORY_LENGTH :]]}


def note_events(new_rows: dict[str, list[tuple[int, float, int]] | None]) -> None:
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
                values[history_key(k)] = _history_entry(now, entry["t"], rows)
        cache.set_many(values, app_settings.BLOCK_CACHE_SECONDS * 10)
    except Exception:  # the cache is an optimisation: never fail the request for it
        _log_once("generation", "recommender: could not bump the visitor cache generation")


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
            delete_pattern(f"recommender:block:{k}:*")
        cache.delete_many([generation_key(k) for k in keys])
    except Exception:  # the cache is an optimisation: never fail the caller for it
        _log_once("forget", "recommender: could not drop a visitor's cached blocks")


# -- the service ------------------------------------------------------------------------------


def recommend(
    request: Any,
    placement: str,
    product: Any | None = None,
    limit: int | None = None,
    visitor: Visitor | None = None,
    strategy: Any | None = None,
    load_products: bool = True,
    basket_ids: set[int] | None = None,
) -> Block:
    """The block for ``placement`` on this request (see the module doc). Never raises for data or
    model problems: a failing rung is logged and the next one is used. ``load_products=False``
    leaves ``Item.product`` unset (the template tag renders cached cards from the ids).
    ``basket_ids``: the products in the visitor's basket (default: the request's basket); the
    staff previews pass the customer's (:func:`open_basket_product_ids`)."""
    spec = PLACEMENTS.get(placement)
    if spec is None:
        raise UnknownPlacement(f"unknown placement {placement!r}; choose from {', '.join(PLACEMENTS)}")
    if not app_settings.SERVING_ENABLED:
        return Block(placement, _(spec.title), [])
    options = {**(app_settings.PLACEMENT_OPTIONS.get(placement) or {})}
    limit = max(1, min(int(limit or options.get("limit", app_settings.BLOCK_LIMIT)), 50))
    memo = request_memo(request)
    visitor = visitor or visitor_of(request)
    strategy = strategy or getattr(request, "strategy", None) or strategy_for(request, visitor)
    page_product = (product.parent_id or product.pk) if product is not None else None
    if basket_ids is None:
        if "basket" not in memo:
            memo["basket"] = _basket_product_ids(request)
        basket_ids = memo["basket"]
    shared = _is_shared(spec, visitor)
    # a shared list depends on the basket only where the basket anchors it, and is cached per basket
    # content then (never per visitor)
    anchor_basket = basket_ids if not shared or spec.basket_anchors or not page_product else set()
    key = _cache_key(visitor, spec, page_product, anchor_basket, limit, memo, shared)
    # (a visitor's own key holds their generation: while the cache does not answer it reads 0, and
    # this process's copy keeps their blocks for at most LOCAL_SECONDS instead of recomputing each page)
    rows = shared_get_many([key]).get(key) if key else None
    if rows is None:
        ctx = _context(visitor, page_product, anchor_basket, spec, memo, history=not shared)
        rows = [astuple(c) for c in _candidates(spec, ctx, limit, options, shared)]
        if key:
            shared_set_many({key: rows}, app_settings.BLOCK_CACHE_SECONDS)
    candidates = [Candidate(*row) for row in rows]
    exclude = set(basket_ids)
    if page_product:
        exclude.add(page_product)
    if shared and options.get("exclude_purchased", spec.exclude_purchased):
        exclude |= _purchased(visitor, memo)
    # later blocks of one page show other products (the visitor's own history blocks excepted)
    dedupe = request is not None and spec.exclude_purchased
    if dedupe:
        exclude |= memo.setdefault("shown", set())
    items = _items(candidates, visitor, placement, limit, strategy, exclude, memo)
    if dedupe:
        memo["shown"] |= {item.product_id for item in items}
    if load_products and items:
        products = fetch_products([item.product_id for item in items], memo)
        items = [item for item in items if item.product_id in products]
        for item in items:
            item.product = products[item.product_id]
    return Block(placement, _(spec.title), items)


def _safe(func: Callable[[], Any], default: Any, what: str) -> Any:
    try:
        return func()
    except Exception:
        _log_once(what, f"recommender: {what} failed; using the fallback")
        return default


def _log_once(what: str, message: str, interval: float = 60.0) -> None:
    """Log an error with its traceback at most once per ``interval`` seconds per kind of failure."""
    now = time.monotonic()
    if now - _last_error_log.get(what, -interval) >= interval:
        _last_error_log[what] = now
        logger.exception(message)


def shared_get_many(keys: list[str]) -> dict[str, Any]:
    """Values of ``keys`` (whose names say everything they depend on): from this process's copy,
    else the cache (and then kept here too)."""
    with _local_lock:
        found = {k: _local[k] for k in keys if k in _local}
    missing = [k for k in keys if k not in found]
    if missing:
        fetched = _safe(lambda: cache.get_many(missing), {}, "cache")
        if fetched:
            with _local_lock:
                _local.update(fetched)
            found.update(fetched)
    return found


def shared_set_many(values: dict[str, Any], seconds: int) -> None:
    """Store values, in the cache for ``seconds`` and in this process."""
    with _local_lock:
        _local.update(values)
    _safe(lambda: cache.set_many(values, seconds), None, "cache")


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


def strategy_for(request: Any, visitor: Visitor) -> Any:
    """Oscar's pricing and stock strategy for this request and visitor (the shop's Selector)."""
    Selector = get_class("partner.strategy", "Selector")
    return Selector().strategy(request=request, user=visitor.user)


def _basket_product_ids(request: Any) -> set[int]:
    basket = getattr(request, "basket", None)
    if basket is None or not getattr(basket, "id", None):
        return set()
    return _line_product_ids(basket.lines.all())


def open_basket_product_ids(user: Any) -> set[int]:
    """The products in a customer's open basket(s): what their own pages would leave out and anchor on."""
    Line = get_model("basket", "Line")
    Basket = get_model("basket", "Basket")
    return _line_product_ids(Line.objects.filter(basket__owner=user, basket__status=Basket.OPEN))


def _line_product_ids(lines: Any) -> set[int]:
    return {parent or pid for pid, parent in lines.values_list("product_id", "product__parent_id")}


def _is_shared(spec: Placement, visitor: Visitor) -> bool:
    """True when no rung of the placement reads this visitor's history or segment: the candidates
    depend on the page's product and the live models only, so every visitor shares them (the
    visitor's own exclusions are applied afterwards)."""
    personal = PERSONAL_RUNGS | ({"trending_segment"} if visitor.user is not None else set())
    return not personal.intersection(spec.rungs)


def catalogue_generation(memo: dict[str, Any] | None = None) -> int:
    """A number that changes whenever a product, its stock, images, categories or the bury list
    change: it is part of every key of cached product facts, cards and shared candidates."""
    global _catalogue_seen
    memo = {} if memo is None else memo
    if "catalogue" not in memo:
        generation, when = _catalogue_seen
        if time.monotonic() - when > CATALOGUE_SECONDS:
            generation = _safe(_read_catalogue_generation, None, "cache") or 0
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


def bump_catalogue_generation(**kwargs: Any) -> None:
    """Signal receiver: the catalogue changed, cached product facts and cards are stale (in this
    process at once, even while the cache does not answer)."""
    global _last_generation, _catalogue_seen
    _last_generation = time.time_ns()
    _catalogue_seen = (_last_generation, time.monotonic())
    _safe(lambda: cache.set(CATALOGUE_KEY, _last_generation, None), None, "cache")


def connect_catalogue_signals() -> None:
    """Changes to products, stock records, images, categories and the bury list make cached
    product facts, cards and shared candidate lists stale (a new catalogue generation)."""
    from django.db.models.signals import post_delete, post_save

    for app_label, name in (("catalogue", "Product"), ("partner", "StockRecord"), ("catalogue", "ProductImage"),
                            ("catalogue", "ProductCategory"), ("catalogue", "ProductRecommendation"),
                            ("recommender", "Bury")):  # fmt: skip
        model = get_model(app_label, name)
        for signal in (post_save, post_delete):
            signal.connect(bump_catalogue_generation, sender=model, dispatch_uid=f"recommender.catalogue.{name}")


def _live_ids(memo: dict[str, Any]) -> dict[str, int]:
    if "live" not in memo:
        memo["live"] = _safe(lambda: versions.live_version_ids(), {}, "live versions")
    return memo["live"]


def _cache_key(visitor: Visitor, spec: Placement, product_id: int | None, basket: set[int], limit: int,
               memo: dict[str, Any], shared: bool) -> str:  # fmt: skip
    live = ",".join(f"{k}{v}" for k, v in sorted(_live_ids(memo).items()))
    catalogue = catalogue_generation(memo)
    basket_part = hashlib.blake2s(repr(sorted(basket)).encode(), digest_size=6).hexdigest() if basket else ""
    if shared:
        return f"recommender:shared:{spec.name}:{product_id}:{basket_part}:{limit}:{live}:{catalogue}"
    if not visitor.key:
        return ""  # a visitor without id has no history: nothing personal to cache
    generation, _rows = _visitor_state(visitor, memo)
    return (f"recommender:block:{visitor.key}:{generation}:{spec.name}:{product_id}:{basket_part}:{limit}:"
            f"{live}:{catalogue}")  # fmt: skip


def _visitor_state(visitor: Visitor, memo: dict[str, Any]) -> tuple[int, list[tuple[int, float, int]] | None]:
    """The visitor's generation (0: none yet, or the cache does not answer) and their cached history
    (None: absent or stale), in one round trip per request."""
    key = ("state", visitor.key)
    if key not in memo:
        gkey, hkey = generation_key(visitor.key), history_key(visitor.key)
        found = _safe(lambda: cache.get_many([gkey, hkey]), {}, "cache")
        generation, entry = found.get(gkey) or 0, found.get(hkey)
        rows = None
        if (isinstance(entry, dict) and generation and entry.get("g") == generation
                and time.time() - entry.get("t", 0) < app_settings.BLOCK_CACHE_SECONDS):  # fmt: skip
            rows = [(int(p), float(t), int(e)) for p, t, e in entry["rows"]]
        memo[key] = (generation, rows)
    return memo[key]


def _history(visitor: Visitor, memo: dict[str, Any]) -> list[tuple[int, float, int]]:
    key = ("history", visitor.key)
    if key not in memo:
        generation, rows = _visitor_state(visitor, memo) if visitor.key else (0, None)
        if rows is None:
            born = time.time()
            rows = _safe(lambda: history_for(visitor.user, visitor.visitor_id), None, "history")
            if rows is not None and generation:
                entry = _history_entry(generation, born, rows)
                _safe(lambda: cache.set(history_key(visitor.key), entry, app_settings.BLOCK_CACHE_SECONDS * 10),
                      None, "cache")  # fmt: skip
        memo[key] = rows or []
    return memo[key]


def _purchased(visitor: Visitor, memo: dict[str, Any]) -> set[int]:
    """What this visitor bought: from their history, and for a customer every order line."""
    key = ("purchased", visitor.key)
    if key not in memo:
        purchased = {pid for pid, _when, kind in _history(visitor, memo) if kind == EVENT_PURCHASE}
        if visitor.user is not None:
            Line = get_model("order", "Line")
            lines = without_erased_orders(Line.objects.filter(order__user=visitor.user, product__isnull=False))
            purchased |= {parent or pid for pid, parent in lines.values_list("product_id", "product__parent_id")}
        memo[key] = purchased
    return memo[key]


def _context(visitor: Visitor, product_id: int | None, basket_ids: set[int], spec: Placement,
             memo: dict[str, Any], history: bool = True) -> Context:  # fmt: skip
    if not history:
        return Context(visitor, [], product_id, basket_ids, set(), None)
    purchased = _purchased(visitor, memo) if spec.exclude_purchased else set()
    segment = None
    if visitor.user is not None and "trending_segment" in spec.rungs:
        segment = _safe(lambda: _segment_of(visitor.user), None, "segment")
    return Context(visitor, _history(visitor, memo), product_id, basket_ids, purchased, segment)


def _segment_of(user: Any) -> str | None:
    from django.apps import apps

    if not apps.is_installed("segmentation"):
        return None
    from segmentation.services import current_segment

    return current_segment(user)


def _candidates(
    spec: Placement, ctx: Context, limit: int, options: dict[str, Any], shared: bool = False
) -> list[Candidate]:
    """Walk the ladder until there are enough candidates to survive the rules (over-fetch x3; a
    shared list, whose visitors' exclusions come later, x4 and 20 more)."""
    exclude = set(ctx.basket_ids)
    if ctx.product_id:
        exclude.add(ctx.product_id)
    if options.get("exclude_purchased", spec.exclude_purchased):
        exclude |= ctx.purchased_ids
    wanted = limit * 4 + 20 if shared else limit * 3
    found: list[Candidate] = []
    seen = set(exclude)
    for rung in spec.rungs:
        fetch = RUNGS[rung]
        for cand in _safe(lambda fetch=fetch: fetch(ctx, wanted + len(exclude)), [], f"rung {rung}"):
            if cand.product_id not in seen:
                seen.add(cand.product_id)
                found.append(cand)
        if len(found) >= wanted:
            break
    return found


# -- the rungs --------------------------------------------------------------------------------


def _title(pid: int, ctx: Context) -> str:
    """The title a reason names ("Because you viewed X"), shared by every visitor under the
    catalogue generation (a renamed product gets a new key)."""
    if pid not in ctx.titles:
        key = f"recommender:title:{catalogue_generation()}:{pid}"
        title = shared_get_many([key]).get(key)
        if title is None:
            Product = get_model("catalogue", "Product")
            title = (Product.objects.filter(pk=pid).values_list("title", flat=True).first() or "").strip()
            shared_set_many({key: title}, app_settings.CARD_CACHE_SECONDS or app_settings.BLOCK_CACHE_SECONDS)
        ctx.titles[pid] = title
    return ctx.titles[pid]


def _model_top(kind: str, histories: list[int], k: int, context: dict | None = None) -> tuple[Any, list[int]]:
    live = versions.live_model(kind)
    if live is None:
        return None, []
    version, loaded = live
    idx = loaded.indices(histories)
    if kind in (ModelKind.TRENDING, ModelKind.TRENDING_SEGMENT):
        top, _scores = loaded.model.recommend(np.empty(0, dtype=np.int64), k=k, context=context)
    elif len(idx) == 0:
        return version, []
    elif len(idx) == 1 and kind != ModelKind.NEXT_ITEM:
        top, _scores = loaded.model.similar_items(int(idx[0]), k=k)
    else:
        top, _scores = loaded.model.recommend(
            idx, k=k, exclude=idx if kind != ModelKind.NEXT_ITEM else None, context=context
        )
    return version, loaded.products(top)


def rung_curated(ctx: Context, k: int) -> list[Candidate]:
    if not ctx.product_id:
        return []
    ProductRecommendation = get_model("catalogue", "ProductRecommendation")
    ids = ProductRecommendation.objects.filter(primary_id=ctx.product_id).order_by("-ranking", "pk")
    return [
        Candidate(pid, "curated", _("Recommended by our staff"))
        for pid in ids.values_list("recommendation_id", flat=True)[:k]
    ]


def rung_model(ctx: Context, k: int) -> list[Candidate]:
    live = versions.live_model(ModelKind.NEXT_ITEM)
    if live is None or not ctx.history:
        return []
    version, loaded = live
    known = [(loaded.index_of[p], t, e) for p, t, e in ctx.history if p in loaded.index_of]
    if not known:
        return []
    items = np.asarray([r[0] for r in known], dtype=np.int64)
    context = {"timestamps": [np.asarray([r[1] for r in known])], "event_types": [np.asarray([r[2] for r in known])]}
    # what the visitor is looking at is in "recently viewed": "for you" shows something new
    seen = np.unique(items)
    top, _scores = loaded.model.recommend(items, k=k, exclude=seen, context=context)
    last = ctx.history[-1][0]
    reason = _("Because you viewed %(title)s") % {"title": _title(last, ctx)}
    return [Candidate(pid, "model", reason, version.pk) for pid in loaded.products(top)]


def _similar(kind: str, rung: str, reason: str, ctx: Context, k: int, anchors: list[int]) -> list[Candidate]:
    out: list[Candidate] = []
    for anchor in anchors:
        version, ids = _model_top(kind, [anchor], k)
        text = reason % {"title": _title(anchor, ctx)}
        out += [Candidate(pid, rung, text, version.pk if version else None) for pid in ids]
    return out


def rung_item_to_item(ctx: Context, k: int) -> list[Candidate]:
    recent = list(dict.fromkeys(p for p, _when, _kind in reversed(ctx.history)))[:3]
    return _similar(
        ModelKind.ALSO_VIEWED, "item_to_item", _("Because you viewed %(title)s"), ctx, k, recent
    ) + _similar(ModelKind.ALSO_BOUGHT, "item_to_item", _("Because you viewed %(title)s"), ctx, k, recent)


def _page_anchors(ctx: Context) -> list[int]:
    """The page's product, then (where the context holds them) up to five products of the basket."""
    first = [ctx.product_id] if ctx.product_id else []
    return first + sorted(ctx.basket_ids - set(first))[:5]


def rung_also_bought(ctx: Context, k: int) -> list[Candidate]:
    return _similar(ModelKind.ALSO_BOUGHT, "also_bought", _("Often bought with %(title)s"), ctx, k, _page_anchors(ctx))


def rung_also_viewed(ctx: Context, k: int) -> list[Candidate]:
    return _similar(
        ModelKind.ALSO_VIEWED, "also_viewed", _("Viewed together with %(title)s"), ctx, k, _page_anchors(ctx)
    )


def rung_bought_together(ctx: Context, k: int) -> list[Candidate]:
    anchors = _page_anchors(ctx)
    if not anchors:
        return []
    version, ids = _model_top(ModelKind.BOUGHT_TOGETHER, anchors, k)
    reason = _("Often bought with %(title)s") % {"title": _title(anchors[0], ctx)}
    return [Candidate(pid, "bought_together", reason, version.pk if version else None) for pid in ids]


def rung_trending_segment(ctx: Context, k: int) -> list[Candidate]:
    live = versions.live_model(ModelKind.TRENDING_SEGMENT)
    if live is None or not ctx.segment:
        return []
    version, loaded = live
    names = loaded.meta.get("segments") or []
    if ctx.segment not in names:
        return []
    context = {"segments": np.asarray([names.index(ctx.segment)])}
    top, _scores = loaded.model.recommend(np.empty(0, dtype=np.int64), k=k, context=context)
    return [
        Candidate(pid, "trending_segment", _("Popular with shoppers like you"), version.pk)
        for pid in loaded.products(top)
    ]


def rung_trending(ctx: Context, k: int) -> list[Candidate]:
    version, ids = _model_top(ModelKind.TRENDING, [], k)
    return [Candidate(pid, "trending", _("Popular right now"), version.pk if version else None) for pid in ids]


def best_seller_ids(k: int = 200) -> list[int]:
    """Most ordered products (by order lines), cached for an hour: the last rung, needs no model."""
    ids = _safe(lambda: cache.get(BEST_SELLERS_KEY), None, "cache")
    if ids is None:
        Line = get_model("order", "Line")
        rows = (
            Line.objects.filter(product__isnull=False, quantity__gt=0)
            .values("product_id", "product__parent_id")
            .annotate(n=Count("id"))
            .order_by("-n", "product_id")[: k * 2]
        )
        ids = list(dict.fromkeys(r["product__parent_id"] or r["product_id"] for r in rows))[:k]
        timeout = 3600 if ids else app_settings.BLOCK_CACHE_SECONDS  # a new shop's first sale shows soon
        _safe(lambda: cache.set(BEST_SELLERS_KEY, ids, timeout), None, "cache")
    return ids


def rung_best_sellers(ctx: Context, k: int) -> list[Candidate]:
    return [Candidate(pid, "best_sellers", _("One of our best sellers")) for pid in best_seller_ids()[: k + 50]]


def rung_buy_again(ctx: Context, k: int) -> list[Candidate]:
    """Products the customer bought more than once rank first, then the most recent."""
    bought = [(p, t) for p, t, e in ctx.history if e == EVENT_PURCHASE]
    counts: dict[int, int] = {}
    last: dict[int, float] = {}
    for pid, when in bought:
        counts[pid] = counts.get(pid, 0) + 1
        last[pid] = max(last.get(pid, 0.0), when)
    order = sorted(counts, key=lambda p: (-counts[p], -last[p]))
    return [Candidate(pid, "buy_again", _("You bought this before")) for pid in order[:k]]


def rung_recently_viewed(ctx: Context, k: int) -> list[Candidate]:
    viewed = [p for p, _when, e in reversed(ctx.history) if e != EVENT_PURCHASE]
    return [Candidate(pid, "recently_viewed", _("You viewed this recently")) for pid in list(dict.fromkeys(viewed))[:k]]


RUNGS: dict[str, Callable[[Context, int], list[Candidate]]] = {
    "curated": rung_curated,
    "model": rung_model,
    "item_to_item": rung_item_to_item,
    "also_bought": rung_also_bought,
    "also_viewed": rung_also_viewed,
    "bought_together": rung_bought_together,
    "trending_segment": rung_trending_segment,
    "trending": rung_trending,
    "best_sellers": rung_best_sellers,
    "buy_again": rung_buy_again,
    "recently_viewed": rung_recently_viewed,
}


# -- from candidates to items a shopper can buy -----------------------------------------------


def _items(candidates: list[Candidate], visitor: Visitor, placement: str, limit: int, strategy: Any,
           exclude: set[int], memo: dict[str, Any]) -> list[Item]:  # fmt: skip
    """The first ``limit`` candidates that pass the rules, judged on cached product facts, which are
    looked up a chunk at a time (the candidates are over-fetched for the rules' sake, and most of
    them usually pass: a product never judged before costs a database fetch).

    ``MAX_PER_CATEGORY`` spreads a block over categories while the candidates allow it; when they
    cannot fill the block that way (a catalogue of one category), the products the cap held back
    fill it, in their rank order, so a block is never short while there are buyable candidates."""
    wanted = [c for c in candidates if c.product_id not in exclude]
    if not wanted:
        return []
    per_category: dict[int, int] = {}
    cap = app_settings.MAX_PER_CATEGORY
    chosen: list[int] = []  # positions in ``wanted``
    held_back: list[int] = []
    facts: dict[int, tuple[bool, int | None]] = {}
    judged = 0
    for n, cand in enumerate(wanted):
        if n == judged:  # the next chunk: 1.5 times the limit first, then twice what is missing
            judged += max(2 * (limit - len(chosen)), 4) if n else limit + limit // 2 + 1
            facts.update(product_facts([c.product_id for c in wanted[n:judged]], strategy, memo))
        fact = facts.get(cand.product_id)
        if not fact or not fact[0]:
            continue
        category = fact[1]
        if cap and category is not None:
            if per_category.get(category, 0) >= cap:
                held_back.append(n)
                continue
            per_category[category] = per_category.get(category, 0) + 1
        chosen.append(n)
        if len(chosen) >= limit:
            break
    if len(chosen) < limit:
        chosen = sorted(chosen + held_back[: limit - len(chosen)])
    items: list[Item] = []
    signer = _click_signer()
    for position, n in enumerate(chosen, start=1):
        cand = wanted[n]
        token = signer.sign_object(
            {"p": placement, "v": cand.version_id, "i": position, "r": cand.rung, "w": visitor.digest}
        )
        items.append(Item(cand.product_id, cand.reason, cand.rung, position, cand.version_id, token))
    return items


def strategy_key(strategy: Any) -> str:
    """Cached facts and cards are per strategy class (the same prices and stock for everyone who
    gets that class); a shop whose prices differ per customer sets ``CARD_CACHE_SECONDS`` to 0."""
    return f"{type(strategy).__module__}.{type(strategy).__qualname__}"


def product_facts(ids: list[int], strategy: Any, memo: dict[str, Any]) -> dict[int, tuple[bool, int | None]]:
    """``{id: (can be recommended and bought now, first category id)}``, cached for
    ``CARD_CACHE_SECONDS`` under the catalogue generation (any product, stock, image, category or
    bury change makes new keys); misses are fetched in bulk with their stock records."""
    seconds = app_settings.CARD_CACHE_SECONDS
    prefix = f"recommender:fact:{catalogue_generation(memo)}:{strategy_key(strategy)}:"
    known: dict[int, Any] = memo.setdefault("facts", {})
    todo = [pid for pid in dict.fromkeys(ids) if pid not in known]
    if todo and seconds:
        hits = shared_get_many([f"{prefix}{pid}" for pid in todo])
        for pid in todo:
            if (hit := hits.get(f"{prefix}{pid}")) is not None:
                known[pid] = tuple(hit)
        todo = [pid for pid in todo if pid not in known]
    if todo:
        products = fetch_products(todo, memo, buried=True)
        fresh: dict[int, tuple[bool, int | None]] = {}
        for pid in todo:
            product = products.get(pid)
            ok = product is not None and _buyable(product, strategy)
            categories = [c.pk for c in product.categories.all()][:1] if ok else []
            fresh[pid] = (ok, categories[0] if categories else None)
        known.update(fresh)
        if seconds:
            shared_set_many({f"{prefix}{p}": list(f) for p, f in fresh.items()}, seconds)
    return {pid: known[pid] for pid in ids if pid in known}


def fetch_products(ids: list[int], memo: dict[str, Any] | None = None, buried: bool = False) -> dict[int, Any]:
    """Recommendable products by id (not buried, when asked), with what the strategy and the card
    need prefetched; remembered for the rest of the request."""
    from recommender.exporters import recommendable_products

    memo = {} if memo is None else memo
    products: dict[int, Any] = memo.setdefault("products", {})
    todo = [pid for pid in ids if pid not in products]
    if todo:
        qs = recommendable_products().filter(pk__in=todo).select_related("product_class", "parent")
        if buried:
            qs = qs.exclude(_buried())
        qs = qs.prefetch_related("stockrecords", "categories", "images", "children__stockrecords")
        products.update({p.pk: p for p in qs})
    return {pid: products[pid] for pid in ids if pid in products}


def _buried() -> Q:
    Bury = get_model("recommender", "Bury")
    rows = list(Bury.objects.values_list("product_id", "category_id"))
    products = [p for p, _cat in rows if p]
    categories = [c for _prod, c in rows if c]
    q = Q(pk__in=products) if products else Q(pk__in=[])
    if categories:
        q |= Q(categories__in=categories)
    return q


def _buyable(product: Any, strategy: Any) -> bool:
    try:
        info = strategy.fetch_for_parent(product) if product.is_parent else strategy.fetch_for_product(product)
    except Exception:
        return False
    return bool(info.availability.is_available_to_buy and info.price.exists)


def _click_signer() -> signing.TimestampSigner:
    """The signer of recommendation links, made once per secret key (read by :func:`read_click_token`,
    which also reads the compressed tokens of earlier versions)."""
    from django.conf import settings

    secret = settings.SECRET_KEY
    if _signers.get("key") != secret:
        _signers.clear()
        _signers.update(key=secret, signer=signing.TimestampSigner(salt=SIGNING_SALT))
    return _signers["signer"]


_signers: dict[str, Any] = {}


def read_click_token(token: str, visitor: Visitor, max_age: int = 30 * 86400) -> dict[str, Any] | None:
    """The attribution data of a recommendation link, if it is valid and was made for this visitor."""
    try:
        data = signing.loads(token, salt=SIGNING_SALT, max_age=max_age)
    except signing.BadSignature:
        return None
    return data if isinstance(data, dict) and data.get("w") == visitor.digest else None
