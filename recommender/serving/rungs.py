"""The rungs of the fallback ladder: each proposes candidates for one block.

A :class:`Rung` reads a :class:`~recommender.serving.blocks.Context` and returns up to ``k``
:class:`~recommender.serving.blocks.Candidate`, best first, each with the reason shown to the
shopper. A rung whose model is not live, or that has nothing to say, returns nothing and the
next rung of the placement is asked. :class:`Rungs` maps the names placements use to rungs; a
shop replaces or adds one by forking this module (Oscar's ``get_class``; see the README,
"Change what a block shows").
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import Count
from django.utils.translation import gettext as _
from oscar.core.loading import get_model

from recommender.abstract_models import ModelKind
from recommender.conf import app_settings
from recommender.ml.data import EVENT_PURCHASE
from recommender.services import versions
from recommender.serving.blocks import Candidate, Context, Visitor
from recommender.serving.generations import catalogue_generation
from recommender.serving.safety import safe
from recommender.serving.stores import shared_get_many, shared_set_many

BEST_SELLERS_KEY = "recommender:best-sellers"


class Rung:
    """One source of candidates. Subclasses set :attr:`name` and implement :meth:`candidates`."""

    name = ""
    #: reads the visitor's own history: a placement with such a rung is computed per visitor
    personal = False

    def is_personal(self, visitor: Visitor) -> bool:
        return self.personal

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        raise NotImplementedError

    # helpers for subclasses

    def title(self, pid: int, ctx: Context) -> str:
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

    def model_top(self, kind: str, anchors: list[int], k: int, context: dict | None = None) -> tuple[Any, list[int]]:
        """The live ``kind`` model's top ``k`` product ids for these anchor products (none: its
        global ranking), with the version that made them (None: no live version)."""
        live = versions.live_model(kind)
        if live is None:
            return None, []
        version, loaded = live
        idx = loaded.indices(anchors)
        if kind in (ModelKind.TRENDING, ModelKind.TRENDING_SEGMENT):
            top, _scores = loaded.model.recommend(np.empty(0, dtype=np.int64), k=k, context=context)
        elif len(idx) == 0:
            return version, []
        elif len(idx) == 1 and kind != ModelKind.NEXT_ITEM:
            top, _scores = loaded.model.similar_items(int(idx[0]), k=k)
        else:
            exclude = idx if kind != ModelKind.NEXT_ITEM else None
            top, _scores = loaded.model.recommend(idx, k=k, exclude=exclude, context=context)
        return version, loaded.products(top)

    def similar(self, kind: str, reason: str, ctx: Context, k: int, anchors: list[int]) -> list[Candidate]:
        """What the ``kind`` model finds similar to each anchor in turn, ``reason`` naming the anchor."""
        out: list[Candidate] = []
        for anchor in anchors:
            version, ids = self.model_top(kind, [anchor], k)
            text = reason % {"title": self.title(anchor, ctx)}
            out += [Candidate(pid, self.name, text, version.pk if version else None) for pid in ids]
        return out


class Curated(Rung):
    """The staff's own choices for the page's product (Oscar's ``ProductRecommendation``)."""

    name = "curated"

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        if not ctx.product_id:
            return []
        ProductRecommendation = get_model("catalogue", "ProductRecommendation")
        ids = ProductRecommendation.objects.filter(primary_id=ctx.product_id).order_by("-ranking", "pk")
        reason = _("Recommended by our staff")
        return [Candidate(pid, self.name, reason) for pid in ids.values_list("recommendation_id", flat=True)[:k]]


class NextItem(Rung):
    """The live next-item model scoring the visitor's history (what they look at is left out:
    it is in "recently viewed")."""

    name = "model"
    personal = True

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        live = versions.live_model(ModelKind.NEXT_ITEM)
        if live is None or not ctx.history:
            return []
        version, loaded = live
        known = [(loaded.index_of[p], t, e) for p, t, e in ctx.history if p in loaded.index_of]
        if not known:
            return []
        items = np.asarray([r[0] for r in known], dtype=np.int64)
        context = {
            "timestamps": [np.asarray([r[1] for r in known])],
            "event_types": [np.asarray([r[2] for r in known])],
        }
        top, _scores = loaded.model.recommend(items, k=k, exclude=np.unique(items), context=context)
        reason = _("Because you viewed %(title)s") % {"title": self.title(ctx.history[-1][0], ctx)}
        return [Candidate(pid, self.name, reason, version.pk) for pid in loaded.products(top)]


class ItemToItem(Rung):
    """Products viewed and bought with the visitor's last three products."""

    name = "item_to_item"
    personal = True

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        recent = list(dict.fromkeys(p for p, _when, _kind in reversed(ctx.history)))[:3]
        reason = _("Because you viewed %(title)s")
        return self.similar(ModelKind.ALSO_VIEWED, reason, ctx, k, recent) + self.similar(
            ModelKind.ALSO_BOUGHT, reason, ctx, k, recent
        )


class AlsoBought(Rung):
    name = "also_bought"

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        return self.similar(ModelKind.ALSO_BOUGHT, _("Often bought with %(title)s"), ctx, k, ctx.anchors)


class AlsoViewed(Rung):
    name = "also_viewed"

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        return self.similar(ModelKind.ALSO_VIEWED, _("Viewed together with %(title)s"), ctx, k, ctx.anchors)


class BoughtTogether(Rung):
    """Products bought in the same orders as the page's product and the basket, together."""

    name = "bought_together"

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        anchors = ctx.anchors
        if not anchors:
            return []
        version, ids = self.model_top(ModelKind.BOUGHT_TOGETHER, anchors, k)
        reason = _("Often bought with %(title)s") % {"title": self.title(anchors[0], ctx)}
        return [Candidate(pid, self.name, reason, version.pk if version else None) for pid in ids]


class TrendingInSegment(Rung):
    """What is popular now with the customer's RFM segment (signed-in customers only)."""

    name = "trending_segment"

    def is_personal(self, visitor: Visitor) -> bool:
        return visitor.user is not None

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        live = versions.live_model(ModelKind.TRENDING_SEGMENT)
        if live is None or not ctx.segment:
            return []
        version, loaded = live
        names = loaded.meta.get("segments") or []
        if ctx.segment not in names:
            return []
        context = {"segments": np.asarray([names.index(ctx.segment)])}
        top, _scores = loaded.model.recommend(np.empty(0, dtype=np.int64), k=k, context=context)
        reason = _("Popular with shoppers like you")
        return [Candidate(pid, self.name, reason, version.pk) for pid in loaded.products(top)]


class Trending(Rung):
    name = "trending"

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        version, ids = self.model_top(ModelKind.TRENDING, [], k)
        reason = _("Popular right now")
        return [Candidate(pid, self.name, reason, version.pk if version else None) for pid in ids]


def best_seller_ids(k: int = 200) -> list[int]:
    """Most ordered products (by order lines), cached for an hour: the last rung, needs no model."""
    ids = safe(lambda: cache.get(BEST_SELLERS_KEY), None, "cache")
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
        safe(lambda: cache.set(BEST_SELLERS_KEY, ids, timeout), None, "cache")
    return ids


class BestSellers(Rung):
    """The last rung: needs no model, so a block is never empty while the shop sells anything."""

    name = "best_sellers"

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        reason = _("One of our best sellers")
        return [Candidate(pid, self.name, reason) for pid in best_seller_ids()[: k + 50]]


class BuyAgain(Rung):
    """Products the customer bought more than once rank first, then the most recent."""

    name = "buy_again"
    personal = True

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        counts: dict[int, int] = {}
        last: dict[int, float] = {}
        for pid, when, event in ctx.history:
            if event == EVENT_PURCHASE:
                counts[pid] = counts.get(pid, 0) + 1
                last[pid] = max(last.get(pid, 0.0), when)
        order = sorted(counts, key=lambda p: (-counts[p], -last[p]))
        reason = _("You bought this before")
        return [Candidate(pid, self.name, reason) for pid in order[:k]]


class RecentlyViewed(Rung):
    name = "recently_viewed"
    personal = True

    def candidates(self, ctx: Context, k: int) -> list[Candidate]:
        viewed = list(dict.fromkeys(p for p, _when, e in reversed(ctx.history) if e != EVENT_PURCHASE))
        reason = _("You viewed this recently")
        return [Candidate(pid, self.name, reason) for pid in viewed[:k]]


class Rungs:
    """The rungs placements may name, by name."""

    classes: tuple[type[Rung], ...] = (
        Curated,
        NextItem,
        ItemToItem,
        AlsoBought,
        AlsoViewed,
        BoughtTogether,
        TrendingInSegment,
        Trending,
        BestSellers,
        BuyAgain,
        RecentlyViewed,
    )

    def __init__(self) -> None:
        self.by_name: dict[str, Rung] = {cls.name: cls() for cls in self.classes}

    def get(self, name: str) -> Rung:
        return self.by_name[name]

    def names(self) -> list[str]:
        return list(self.by_name)
