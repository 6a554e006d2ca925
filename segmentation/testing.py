"""Helpers to build orders quickly in tests and demos (no basket, no lines)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from oscar.core.loading import get_model

_numbers = itertools.count(1)


def make_order(
    *,
    user: Any = None,
    guest_email: str = "",
    total: Decimal | str | int = "10.00",
    placed: datetime | str = "2024-01-01",
    status: str = "Complete",
    currency: str | None = None,
    number: str | None = None,
) -> Any:
    """An ``order.Order`` row with the fields segmentation reads (and nothing else)."""
    Order = get_model("order", "Order")
    if isinstance(placed, str):
        placed = datetime.fromisoformat(placed)
    if placed.tzinfo is None:
        placed = placed.replace(tzinfo=UTC)
    total = Decimal(str(total))
    return Order.objects.create(
        number=number or f"T{next(_numbers):08d}",
        site_id=getattr(settings, "SITE_ID", None),
        user=user,
        guest_email=guest_email,
        currency=currency or settings.OSCAR_DEFAULT_CURRENCY,
        total_incl_tax=total,
        total_excl_tax=total,
        shipping_incl_tax=Decimal(0),
        shipping_excl_tax=Decimal(0),
        status=status,
        date_placed=placed,
    )
