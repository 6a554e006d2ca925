"""What a visitor did and has: their history, their purchases, their basket, their segment.

Private by construction: every function reads one visitor's own rows (the user when signed
in, else the visitor cookie's id).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from django.db.models import Q
from oscar.core.loading import get_model

from recommender.conf import app_settings
from recommender.ml.data import EVENT_PURCHASE
from recommender.queries import EVENT_TYPES, without_erased_orders
from recommender.serving.blocks import Context, HistoryRow, Visitor
from recommender.serving.generations import history_entry, history_key, visitor_state
from recommender.serving.placements import Placement
from recommender.serving.safety import safe


def history_for(user: Any | None, visitor_id: str, limit: int | None = None) -> list[HistoryRow]:
    """``(product id, unix time, event type)`` of what this person bought, viewed or put in a basket,
    oldest first, the last ``limit`` (default ``MAX_HISTORY_LENGTH``); children count as their parent."""
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


def cached_history(visitor: Visitor, memo: dict[str, Any]) -> list[HistoryRow]:
    """The visitor's history: from this request, else the cache (under their generation), else
    the database (and then cached)."""
    key = ("history", visitor.key)
    if key not in memo:
        generation, rows = visitor_state(visitor.key, memo) if visitor.key else (0, None)
        if rows is None:
            born = time.time()
            rows = safe(lambda: history_for(visitor.user, visitor.visitor_id), None, "history")
            if rows is not None and generation:
                entry = history_entry(generation, born, rows)
                seconds = app_settings.BLOCK_CACHE_SECONDS * 10
                safe(lambda: cache.set(history_key(visitor.key), entry, seconds), None, "cache")
        memo[key] = rows or []
    return memo[key]


def purchased(visitor: Visitor, memo: dict[str, Any]) -> set[int]:
    """What this visitor bought: from their history, and for a customer every order line."""
    key = ("purchased", visitor.key)
    if key not in memo:
        bought = {pid for pid, _when, kind in cached_history(visitor, memo) if kind == EVENT_PURCHASE}
        if visitor.user is not None:
            Line = get_model("order", "Line")
            lines = without_erased_orders(Line.objects.filter(order__user=visitor.user, product__isnull=False))
            bought |= {parent or pid for pid, parent in lines.values_list("product_id", "product__parent_id")}
        memo[key] = bought
    return memo[key]


def request_basket_ids(request: Any) -> set[int]:
    """The products in the request's basket (children as their parent)."""
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


def segment_of(user: Any) -> str | None:
    """The customer's current segment name, where the segmentation app is installed."""
    from django.apps import apps

    if not apps.is_installed("segmentation"):
        return None
    from segmentation.services import current_segment

    return current_segment(user)


def context_for(
    visitor: Visitor,
    product_id: int | None,
    basket_ids: set[int],
    placement: Placement,
    memo: dict[str, Any],
    personal: bool = True,
) -> Context:
    """What the rungs of ``placement`` may read; without ``personal`` nothing of the visitor's own."""
    if not personal:
        return Context(visitor, [], product_id, basket_ids, set(), None)
    bought = purchased(visitor, memo) if placement.exclude_purchased else set()
    segment = None
    if visitor.user is not None and "trending_segment" in placement.rungs:
        segment = safe(lambda: segment_of(visitor.user), None, "segment")
    return Context(visitor, cached_history(visitor, memo), product_id, basket_ids, bought, segment)
