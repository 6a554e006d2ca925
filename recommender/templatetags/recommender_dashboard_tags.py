"""Filters for the staff models page."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def metric(values: dict[str, Any] | None, key: str) -> str:
    """A fraction as a percentage with two decimals ("-" when absent)."""
    value = (values or {}).get(key)
    return "-" if value is None else f"{100 * float(value):.2f}"


@register.filter
def gate_value(version: Any, which: str) -> str:
    """The version's gate metric for ``candidate``, ``popularity`` or ``live``, e.g. "hr@20 12.34"."""
    metrics = version.metrics or {}
    key = metrics.get("gate_metric", "hr@20")
    value = (metrics.get(which) or {}).get(key)
    return "-" if value is None else f"{key} {100 * float(value):.2f}"
