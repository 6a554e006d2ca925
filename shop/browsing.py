"""The demo's browsing, generated around its real orders.

The demo data (UCI Online Retail) holds orders only, while the models that learn from browsing
(also viewed, the next-item network's view inputs, purchase intent) need product views and basket
additions. A real shop records them from Oscar's signals; the demo generates them, in the last
``days`` days of its orders, as follows (seeded, so every demo is the same):

* before each order of a registered customer, a visit: each of its first ``MAX_LINES`` lines is a
  product view followed by a basket addition (the path every Oscar order takes), and now and then
  a view of a popular product that was not bought; the order comes a minute or two after the last;
* each of those customers also makes visits that buy nothing: two to six views of popular
  products on days drawn from the window.

Nothing here is used outside the demo: the apps never generate data.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from django.db.models import Count, Max
from oscar.core.loading import get_model

MAX_LINES = 10


def generate_browsing(days: int = 60, seed: int = 0) -> dict[str, int]:
    """Write the generated events (none when the shop already has events); their counts."""
    Event = get_model("recommender", "Event")
    Order = get_model("order", "Order")
    Line = get_model("order", "Line")
    if Event.objects.filter(kind__in=["view", "basket"]).exists():
        return {"views": 0, "basket": 0}
    last = Order.objects.aggregate(last=Max("date_placed"))["last"]
    if last is None:
        return {"views": 0, "basket": 0}
    start = last - timedelta(days=days)
    orders = list(Order.objects.filter(date_placed__gte=start, user__isnull=False).order_by("date_placed"))
    lines: dict[int, list[int]] = {}
    bought = Line.objects.filter(order__in=orders, product__isnull=False).order_by("pk")
    for order_id, product_id in bought.values_list("order_id", "product_id"):
        lines.setdefault(order_id, []).append(product_id)
    popular = [
        p
        for p, _ in Line.objects.filter(order__date_placed__gte=start, product__isnull=False)
        .values_list("product_id")
        .annotate(n=Count("pk"))
        .order_by("-n", "product_id")[:200]
    ]
    rng = np.random.default_rng(seed)
    events: list[Any] = []
    for order in orders:
        events += _order_visit(Event, order, lines.get(order.pk, [])[:MAX_LINES], popular, rng)
    for user_id in sorted({o.user_id for o in orders}):
        for _ in range(int(rng.poisson(2))):
            when = start + timedelta(seconds=float(rng.uniform(0, days * 86400)))
            for product in rng.choice(popular, size=int(rng.integers(2, 7))):
                events.append(Event(kind="view", user_id=user_id, product_id=int(product), created=when))
                when += timedelta(seconds=float(rng.uniform(20, 180)))
    Event.objects.bulk_create(events, batch_size=5000)
    return {"views": sum(e.kind == "view" for e in events), "basket": sum(e.kind == "basket" for e in events)}


def _order_visit(Event: Any, order: Any, products: list[int], popular: list[int], rng: Any) -> list[Any]:
    """The visit before one order: view and basket each product, with a few other views between."""
    steps: list[tuple[str, int]] = []
    for product in products:
        if rng.random() < 0.3:
            steps.append(("view", int(rng.choice(popular))))
        steps += [("view", product), ("basket", product)]
    gaps = rng.uniform(20, 150, size=len(steps) + 1)
    when = order.date_placed - timedelta(seconds=float(gaps.sum()))
    out = []
    for (kind, product), gap in zip(steps, gaps[:-1], strict=True):
        out.append(Event(kind=kind, user_id=order.user_id, product_id=product, created=when))
        when += timedelta(seconds=float(gap))
    return out
