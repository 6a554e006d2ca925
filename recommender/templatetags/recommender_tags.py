"""Recommendation blocks for templates.

``{% load recommender_tags %}``, then::

    {% recommendations "also_bought" product=product limit=6 %}     renders the block
    {% recommendations "for_you" as block %}                        the Block, to lay out yourself
    {% recommendations "trending" template="myshop/trending.html" %}

``{% purchase_intent as band %}`` gives the current visitor's purchase-intent band (``"low"``,
``"medium"``, ``"high"``, or ``""`` when there is none: no live model, no history, not tracked);
never the probability itself, so a cached page cannot show one visitor's score to another.

Placements: ``for_you``, ``also_bought``, ``also_viewed``, ``bought_together``, ``trending``,
``buy_again``, ``recently_viewed``. A block never breaks the page: any error gives an empty
block and one logged error.

The block template gets ``block``; each ``item`` has ``card``, the product card rendered from
``recommender/partials/product_card.html`` (override it to change the card). Cards are cached per
product, language and pricing strategy for ``CARD_CACHE_SECONDS`` and rendered again whenever the
catalogue changes (a product, its stock, images or categories); the parts that differ per
visitor (the signed ``?rec=`` of the links, the CSRF token of the basket form) are filled in per
request. The ``as`` form loads the products instead (``item.product``), for shops that lay the
block out themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.middleware.csrf import get_token
from django.template.base import FilterExpression, Parser, Token
from django.utils import translation
from django.utils.safestring import mark_safe

from recommender.conf import app_settings
from recommender.serving.blocks import Block, Item, visitor_of
from recommender.serving.generations import catalogue_generation
from recommender.serving.rules import fetch_products, strategy_key
from recommender.serving.safety import log_once
from recommender.serving.service import recommend, strategy_for
from recommender.serving.stores import request_memo, shared_get_many, shared_set_many

register = template.Library()
logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "recommender/partials/block.html"
CARD_TEMPLATE = "recommender/partials/product_card.html"
# placeholders in a cached card for what differs per visitor
REC_HOLE = "__recommender_rec__"
CSRF_HOLE = "__recommender_csrf__"


class RecommendationsNode(template.Node):
    def __init__(self, placement: FilterExpression, kwargs: dict[str, FilterExpression], as_var: str | None) -> None:
        self.placement, self.kwargs, self.as_var = placement, kwargs, as_var

    def render(self, context: template.Context) -> str:
        placement = str(self.placement.resolve(context))
        values: dict[str, Any] = {k: v.resolve(context) for k, v in self.kwargs.items()}
        try:
            block = recommend(
                context.get("request"),
                placement,
                product=values.get("product") or None,
                limit=values.get("limit"),
                load_products=bool(self.as_var),
            )
            if not self.as_var:
                attach_cards(block, context)
        except Exception:
            log_once(f"tag {placement}", f"recommender: the {placement!r} block failed; shown empty")
            block = Block(placement, "", [])
        if self.as_var:
            context[self.as_var] = block
            return ""
        if not block.items:
            return ""
        name = values.get("template") or DEFAULT_TEMPLATE
        with context.push(block=block):
            return context.template.engine.get_template(name).render(context)


def attach_cards(block: Block, context: template.Context) -> None:
    """Give each item of ``block`` its rendered card: from the cache, else rendered once for all
    visitors (with placeholders for the visitor's link token and CSRF token) and cached."""
    request = context.get("request")
    memo = request_memo(request)
    strategy = getattr(request, "strategy", None) or strategy_for(request, visitor_of(request))
    prefix = f"recommender:card:{translation.get_language()}:{catalogue_generation(memo)}:{strategy_key(strategy)}:"
    seconds = app_settings.CARD_CACHE_SECONDS
    keys = {item.product_id: f"{prefix}{item.product_id}" for item in block.items}
    cards: dict[str, str] = shared_get_many(list(keys.values())) if seconds else {}
    missing = [pid for pid, key in keys.items() if key not in cards]
    if missing:
        card_template = context.template.engine.get_template(CARD_TEMPLATE)
        fresh = {}
        for pid, product in fetch_products(missing, memo).items():
            placeholder = Item(pid, "", "", 0, None, REC_HOLE, product)
            with context.push(product=product, item=placeholder, csrf_token=CSRF_HOLE):
                fresh[keys[pid]] = card_template.render(context)
        cards.update(fresh)
        if seconds and fresh:
            shared_set_many(fresh, seconds)
    if "csrf" not in memo:  # one masked token per page (each call masks the secret anew)
        memo["csrf"] = get_token(request) if request is not None else ""
    csrf = memo["csrf"]
    block.items = [item for item in block.items if keys[item.product_id] in cards]
    for item in block.items:
        html = cards[keys[item.product_id]].replace(REC_HOLE, item.token).replace(CSRF_HOLE, csrf)
        item.card = mark_safe(html)  # our own template's output; the holes take URL-safe tokens


@register.tag("recommendations")
def do_recommendations(parser: Parser, token: Token) -> RecommendationsNode:
    bits = token.split_contents()
    tag, args = bits[0], bits[1:]
    as_var = None
    if len(args) >= 2 and args[-2] == "as":
        as_var, args = args[-1], args[:-2]
    if not args:
        raise template.TemplateSyntaxError(f'{tag} needs a placement, e.g. {{% {tag} "for_you" %}}')
    kwargs = {}
    for bit in args[1:]:
        name, sep, value = bit.partition("=")
        if not sep or name not in ("product", "limit", "template"):
            raise template.TemplateSyntaxError(f"{tag}: unknown argument {bit!r} (product=, limit=, template=)")
        kwargs[name] = parser.compile_filter(value)
    return RecommendationsNode(parser.compile_filter(args[0]), kwargs, as_var)


@register.simple_tag(takes_context=True)
def purchase_intent(context: template.Context) -> str:
    """The current visitor's purchase-intent band, or ``""`` (:mod:`recommender.serving.intent`)."""
    from recommender.serving.intent import visitor_intent

    found = visitor_intent(context.get("request"))
    return found.band if found is not None else ""
