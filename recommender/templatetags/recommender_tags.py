"""Recommendation blocks for templates.

``{% load recommender_tags %}``, then::

    {% recommendations "also_bought" product=product limit=6 %}     renders the block
    {% recommendations "for_you" as block %}                        the Block, to lay out yourself
    {% recommendations "trending" template="myshop/trending.html" %}

Placements: ``for_you``, ``also_bought``, ``also_viewed``, ``bought_together``, ``trending``,
``buy_again``, ``recently_viewed``. A block never breaks the page: any error gives an empty
block and one logged error.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.template.base import FilterExpression, Parser, Token

from recommender.services import serving

register = template.Library()
logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "recommender/partials/block.html"


class RecommendationsNode(template.Node):
    def __init__(self, placement: FilterExpression, kwargs: dict[str, FilterExpression], as_var: str | None) -> None:
        self.placement, self.kwargs, self.as_var = placement, kwargs, as_var

    def render(self, context: template.Context) -> str:
        placement = str(self.placement.resolve(context))
        values: dict[str, Any] = {k: v.resolve(context) for k, v in self.kwargs.items()}
        try:
            block = serving.recommend(
                context.get("request"), placement, product=values.get("product") or None, limit=values.get("limit")
            )
        except Exception:
            serving._log_once(f"tag {placement}", f"recommender: the {placement!r} block failed; shown empty")
            block = serving.Block(placement, "", [])
        if self.as_var:
            context[self.as_var] = block
            return ""
        if not block.items:
            return ""
        name = values.get("template") or DEFAULT_TEMPLATE
        with context.push(block=block):
            return context.template.engine.get_template(name).render(context)


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
