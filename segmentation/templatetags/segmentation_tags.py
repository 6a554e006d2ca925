"""``{% load segmentation_tags %}``: segment promotions for shoppers, number formatting for staff pages."""

from __future__ import annotations

from typing import Any

from django import template

from personalization_core.numbers import finite_or_none
from segmentation.offers import offers_for_segment
from segmentation.services.lookups import current_membership, current_segment

register = template.Library()
DASH = "\u2013"


@register.inclusion_tag("segmentation/partials/segment_promotions.html", takes_context=True)
def segment_promotions(context: dict[str, Any], limit: int = 3) -> dict[str, Any]:
    """The open offers of the signed-in shopper's own segment (nothing for anyone else's)."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    offers: list[Any] = []
    if user is not None and getattr(user, "is_authenticated", False):
        try:
            offers = offers_for_segment(current_segment(user))[:limit]
        except Exception:  # a widget never breaks the page
            offers = []
    return {"offers": offers, "request": request}


@register.inclusion_tag("segmentation/partials/customer_panel.html")
def customer_segment_panel(user: Any) -> dict[str, Any]:
    """Staff panel for Oscar's dashboard customer page: current segment, scores, predicted value."""
    return {"membership": current_membership(user), "customer": user}


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """0.123 -> "12.3%"; None or NaN -> an en dash."""
    v = finite_or_none(value)
    return DASH if v is None else f"{100 * v:.{int(digits)}f}%"


@register.filter
def num(value: Any, digits: int = 2) -> str:
    """Thousands separators and fixed decimals; None or NaN -> an en dash."""
    v = finite_or_none(value)
    return DASH if v is None else f"{v:,.{int(digits)}f}"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    try:
        return mapping[key]
    except (KeyError, IndexError, TypeError):
        return None


@register.inclusion_tag("segmentation/partials/customer_row.html")
def customer_segment_row(user: Any) -> dict[str, Any]:
    """A ``<tr>`` for the "general info" table of Oscar's dashboard customer page.

    Use it from a project override of ``oscar/dashboard/users/detail.html``::

        {% extends "oscar/dashboard/users/detail.html" %}
        {% load segmentation_tags %}
        {% block additional_general_info %}{% customer_segment_row customer %}{% endblock %}
    """
    return customer_segment_panel(user)
