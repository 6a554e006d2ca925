"""What the live models say for one product or one customer (the staff preview on the models page).

Products deleted or hidden since training are skipped, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import Q
from oscar.core.loading import get_model

from recommender.abstract_models import ModelKind
from recommender.exporters import recommendable_products
from recommender.services import versions


@dataclass
class Preview:
    version: Any | None
    products: list[Any]
    scores: list[float]
    history: list[Any]
    note: str = ""


def _products(ids: list[int]) -> dict[int, Any]:
    return {p.pk: p for p in recommendable_products().filter(pk__in=ids)}


def find_product(query: str) -> Any | None:
    """A product by id, UPC or (part of) its title."""
    Product = get_model("catalogue", "Product")
    query = query.strip()
    if not query:
        return None
    exact = Q(upc__iexact=query) | (Q(pk=int(query)) if query.isascii() and query.isdigit() else Q(pk__in=[]))
    return (
        Product.objects.filter(exact).first() or Product.objects.filter(title__icontains=query).order_by("pk").first()
    )


def find_customer(query: str) -> Any | None:
    """A user by id, username or e-mail."""
    User = get_user_model()
    query = query.strip()
    if not query:
        return None
    exact = Q(email__iexact=query) | Q(username=query)
    if query.isascii() and query.isdigit():
        exact |= Q(pk=int(query))
    return User.objects.filter(exact).order_by("pk").first()


def similar(kind: str, product: Any, k: int = 5) -> Preview:
    """The ``k`` products the live ``kind`` model finds most related to ``product``."""
    live = versions.live_model(kind)
    if live is None:
        return Preview(None, [], [], [product], note="no live version of this kind yet")
    version, loaded = live
    pid = product.parent_id or product.pk
    idx = loaded.index_of.get(pid)
    if idx is None:
        return Preview(version, [], [], [product], note="the live model has not seen this product")
    top, scores = loaded.model.recommend([idx], k=k + 10, exclude=[idx])
    return _ranked(version, loaded.products(top), [float(s) for s in scores], [product], k)


def customer_history(user: Any, limit: int | None = None) -> list[tuple[int, float, int]]:
    """``(product id, unix time, event type)`` of what the customer bought, viewed or put in a basket,
    oldest first: the history the "for you" block of this customer reads."""
    from recommender.services.serving import history_for

    return history_for(user, "", limit)


def for_customer(user: Any, k: int = 5) -> Preview:
    """The live next-item model's top ``k`` for a customer, from their own history."""
    rows = customer_history(user)
    live = versions.live_model(ModelKind.NEXT_ITEM)
    shown = _products([r[0] for r in rows])
    history = [shown[r[0]] for r in rows if r[0] in shown]
    if live is None:
        return Preview(None, [], [], history, note="no live next-item model yet")
    version, loaded = live
    known = [(loaded.index_of[r[0]], r[1], r[2]) for r in rows if r[0] in loaded.index_of]
    items = np.asarray([r[0] for r in known], dtype=np.int64)
    context = {
        "timestamps": [np.asarray([r[1] for r in known], dtype=np.float64)],
        "event_types": [np.asarray([r[2] for r in known], dtype=np.int64)],
    }
    top, scores = loaded.model.recommend(items, k=k + 10, context=context)
    return _ranked(version, loaded.products(top), [float(s) for s in scores], history, k)


def _ranked(version: Any, ids: list[int], scores: list[float], history: list[Any], k: int) -> Preview:
    found = _products(ids)
    kept = [(found[p], s) for p, s in zip(ids, scores, strict=True) if p in found][:k]
    return Preview(version, [p for p, _ in kept], [s for _, s in kept], history)
