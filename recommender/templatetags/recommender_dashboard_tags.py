"""Filters for the staff models page."""

from __future__ import annotations

import re
from typing import Any

from django import template
from django.utils.html import format_html

register = template.Library()

#: a ranking metric's name in words, by its code (``hr@20`` -> the share with K = 20)
METRIC_WORDS = {
    "hr": "share of next products found in the top {k}",
    "mrr": "how high the next product ranks in the top {k} (100 = always first, 50 = second)",
    "ndcg": "ranking quality of the next product in the top {k} (100 = always first)",
    "coverage": "share of the catalogue recommended in some top {k}",
}


def metric_words(code: str) -> str:
    """``"hr@20"`` -> "share of next products found in the top 20" (an unknown code as it is)."""
    match = re.fullmatch(r"([a-z]+)@(\d+)", code or "")
    words = METRIC_WORDS.get(match.group(1)) if match else None
    return words.format(k=match.group(2)) if match and words else code


@register.filter
def metric_label(code: str) -> str:
    """A metric's name in words, its code in the tooltip."""
    return format_html('<span title="{}">{}</span>', code, metric_words(code))


@register.filter
def gate_label(version: Any) -> str:
    """:func:`metric_label` of the metric the version was judged on."""
    return metric_label((version.metrics or {}).get("gate_metric", "hr@20"))


@register.filter
def gate_percent(version: Any, which: str) -> str:
    """The version's gate metric for ``candidate``, ``popularity`` or ``live`` as a percentage
    ("12.34 %", "-" when absent)."""
    metrics = version.metrics or {}
    value = (metrics.get(which) or {}).get(metrics.get("gate_metric", "hr@20"))
    return "-" if value is None else f"{100 * float(value):.2f} %"


@register.filter
def metric(values: dict[str, Any] | None, key: str) -> str:
    """A fraction as a percentage with two decimals ("-" when absent)."""
    value = (values or {}).get(key)
    return "-" if value is None else f"{100 * float(value):.2f}"
