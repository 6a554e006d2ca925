"""The recommendation service: who asks, what they did, what to show.

:class:`Recommender` returns a :class:`~recommender.serving.blocks.Block` for a placement. It
walks the placement's fallback ladder (curated -> model -> item-to-item -> trending in segment
-> trending -> best sellers) until the block is full, so it is never empty while the shop sells
anything; each item says which rung it came from and why it is shown. Rules every block obeys:

* only products a shopper can buy now (:mod:`recommender.serving.rules`);
* never the product on the page nor what is in the basket; already-bought products only where
  the placement wants them (``buy_again``); at most ``MAX_PER_CATEGORY`` of one category while
  the candidates allow it; later blocks of one page show other products;
* private: the history is the requesting visitor's own (the user when signed in, else the
  visitor cookie), and their blocks are cached under their own generation
  (:mod:`recommender.serving.cache`);
* safe: a failing rung (damaged model file, Redis down, a bug) is logged and skipped.

Every part is an overridable class (:func:`recommender.loading.get_class`, label
``recommender_serving``): placements, rungs, rules, the block cache, the click tokens and this
service (see the README, "Change what a block shows").
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import astuple, replace
from typing import Any

from oscar.core.loading import get_class as get_oscar_class

from recommender.abstract_models import Arm
from recommender.conf import app_settings
from recommender.loading import get_class
from recommender.measurement.assignment import arm_of
from recommender.measurement.capture import note_block, recording
from recommender.serving.blocks import Block, Candidate, Context, Item, Visitor, visitor_of
from recommender.serving.history import context_for, purchased, request_basket_ids
from recommender.serving.placements import Placement
from recommender.serving.rules import fetch_products
from recommender.serving.safety import safe
from recommender.serving.stores import request_memo
from recommender.tracking import request_identity

Placements = get_class("recommender_serving.placements", "Placements")
Rungs = get_class("recommender_serving.rungs", "Rungs")
Rules = get_class("recommender_serving.rules", "Rules")
BlockCache = get_class("recommender_serving.cache", "BlockCache")
ClickTokens = get_class("recommender_serving.tokens", "ClickTokens")


def strategy_for(request: Any, visitor: Visitor) -> Any:
    """Oscar's pricing and stock strategy for this request and visitor (the shop's Selector)."""
    Selector = get_oscar_class("partner.strategy", "Selector")
    return Selector().strategy(request=request, user=visitor.user)


class Recommender:
    """Fills blocks; holds no state of its own (one request's lookups live in its memo)."""

    def __init__(self) -> None:
        self.placements = Placements()
        self.rungs = Rungs()
        self.rules = Rules()
        self.cache = BlockCache()
        self.tokens = ClickTokens()

    def recommend(
        self,
        request: Any,
        placement: str,
        product: Any | None = None,
        limit: int | None = None,
        visitor: Visitor | None = None,
        strategy: Any | None = None,
        load_products: bool = True,
        basket_ids: set[int] | None = None,
    ) -> Block:
        """The block for ``placement`` on this request. Never raises for data or model problems: a
        failing rung is logged and the next one is used. ``load_products=False`` leaves
        ``Item.product`` unset (the template tag renders cached cards from the ids). ``basket_ids``:
        the products in the visitor's basket (default: the request's basket); the staff previews
        pass the customer's (:func:`recommender.serving.history.open_basket_product_ids`)."""
        spec = self.placements.get(placement)
        if not app_settings.SERVING_ENABLED:
            return Block(placement, str(spec.title), [])
        options = {**(app_settings.PLACEMENT_OPTIONS.get(placement) or {})}
        limit = max(1, min(int(limit or options.get("limit", app_settings.BLOCK_LIMIT)), 50))
        memo = request_memo(request)
        # the request's own blocks are measured (a staff preview or an export passes the visitor)
        measured = visitor is None and recording(request)
        if measured:
            request_identity(request)  # a visitor id, so that the blocks, clicks and arm are theirs
        visitor = visitor or visitor_of(request)
        _experiment, arm = arm_of(visitor, memo)
        if arm == Arm.CONTROL and spec.control_rungs is not None:
            spec = replace(spec, rungs=spec.control_rungs)
        else:
            arm = ""
        strategy = strategy or getattr(request, "strategy", None) or strategy_for(request, visitor)
        page_product = (product.parent_id or product.pk) if product is not None else None
        if basket_ids is None:
            if "basket" not in memo:
                memo["basket"] = request_basket_ids(request)
            basket_ids = memo["basket"]
        candidates = self.candidates(spec, visitor, page_product, basket_ids, limit, options, memo, arm)
        exclude = self.exclusions(spec, visitor, page_product, basket_ids, options, memo)
        # later blocks of one page show other products (the visitor's own history blocks excepted)
        dedupe = request is not None and spec.exclude_purchased
        if dedupe:
            exclude |= memo.setdefault("shown", set())
        chosen = self.rules.choose(candidates, limit, strategy, exclude, memo)
        impression = uuid.uuid4()
        items = [
            Item(
                c.product_id, c.reason, c.rung, n, c.version_id, self.tokens.sign(placement, c, n, visitor, impression)
            )
            for n, c in enumerate(chosen, start=1)
        ]
        if dedupe:
            memo["shown"] |= {item.product_id for item in items}
        if load_products and items:
            products = fetch_products([item.product_id for item in items], memo)
            items = [item for item in items if item.product_id in products]
            for item in items:
                item.product = products[item.product_id]
        block = Block(placement, str(spec.title), items)
        if measured:
            note_block(request, block, visitor, impression)
        return block

    def is_personal(self, spec: Placement, visitor: Visitor) -> bool:
        """True when a rung of the placement reads this visitor's own history or segment; otherwise
        the candidates depend on the page's product and the live models only, and every visitor
        shares them."""
        return any(self.rungs.get(name).is_personal(visitor) for name in spec.rungs)

    def candidates(
        self,
        spec: Placement,
        visitor: Visitor,
        page_product: int | None,
        basket_ids: set[int],
        limit: int,
        options: dict[str, Any],
        memo: dict[str, Any],
        arm: str = "",
    ) -> list[Candidate]:
        """The placement's candidates, from the block cache or the rungs (``arm``: the experiment's
        control, whose placement has its control rungs)."""
        personal = self.is_personal(spec, visitor)
        # a shared list depends on the basket only where the basket anchors it, and is cached per
        # basket content then (never per visitor)
        anchor_basket = basket_ids if personal or spec.basket_anchors or not page_product else set()
        key = self.cache.key(visitor, spec, page_product, anchor_basket, limit, memo, personal, arm)
        rows = self.cache.get(key)
        if rows is None:
            ctx = context_for(visitor, page_product, anchor_basket, spec, memo, personal=personal)
            rows = [astuple(c) for c in self.walk(spec, ctx, limit, options, shared=not personal)]
            self.cache.set(key, rows)
        return [Candidate(*row) for row in rows]

    def exclusions(
        self,
        spec: Placement,
        visitor: Visitor,
        page_product: int | None,
        basket_ids: set[int],
        options: dict[str, Any],
        memo: dict[str, Any],
    ) -> set[int]:
        """Never the page's product nor the basket; what the visitor bought unless the placement
        wants it (a visitor's own list left it out already; a shared one leaves it out here)."""
        exclude = set(basket_ids)
        if page_product:
            exclude.add(page_product)
        if not self.is_personal(spec, visitor) and options.get("exclude_purchased", spec.exclude_purchased):
            exclude |= purchased(visitor, memo)
        return exclude

    def walk(self, spec: Placement, ctx: Context, limit: int, options: dict[str, Any], shared: bool) -> list[Candidate]:
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
        for name in spec.rungs:
            rung = self.rungs.get(name)
            proposed = safe(lambda rung=rung: rung.candidates(ctx, wanted + len(exclude)), [], f"rung {name}")
            for cand in proposed:
                if cand.product_id not in seen:
                    seen.add(cand.product_id)
                    found.append(cand)
            if len(found) >= wanted:
                break
        return found


@functools.cache
def recommender() -> Recommender:
    """The shop's :class:`Recommender` (a fork's, where the shop forked this module), one per
    process: it holds no state of its own."""
    return get_class("recommender_serving.service", "Recommender")()


def recommend(request: Any, placement: str, **kwargs: Any) -> Block:
    """The block for ``placement`` on this request (:meth:`Recommender.recommend`)."""
    return recommender().recommend(request, placement, **kwargs)


def placements() -> dict[str, Placement]:
    """The shop's placements by name."""
    return recommender().placements.by_name


def read_click_token(token: str, visitor: Visitor) -> dict[str, Any] | None:
    """The attribution data of a recommendation link made for this visitor (None: invalid)."""
    return recommender().tokens.read(token, visitor)
