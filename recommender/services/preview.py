"""What shoppers are shown for one product or one customer (the staff preview on the models page).

The previews call the serving path the shop's pages call (:func:`recommender.serving.service.recommend`), with the
same rungs, rules and exclusions: a customer's preview is their own "for you" block (what they
bought is left out, their open basket too), a product's preview is the block an anonymous visitor
sees on its page. Each item says which rung and model version it came from, and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from oscar.core.loading import get_model

from recommender.queries import recommendable_products
from recommender.serving.blocks import Item, Visitor
from recommender.serving.history import history_for, open_basket_product_ids
from recommender.serving.service import recommend

#: the blocks of a product page a staff member can preview for one product
PRODUCT_PLACEMENTS = ("also_bought", "also_viewed", "bought_together")


@dataclass
class Preview:
    title: str
    items: list[Item]  # each with its product loaded, rung, reason and model version
    history: list[Any]  # the products the block was computed from, oldest first

    @property
    def products(self) -> list[Any]:
        return [item.product for item in self.items]


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


def for_product(placement: str, product: Any, k: int = 5) -> Preview:
    """The ``placement`` block an anonymous visitor sees on ``product``'s page."""
    block = recommend(None, placement, product=product, limit=k, visitor=Visitor(None, ""))
    return Preview(str(block.title), list(block.items), [product])


def customer_history(user: Any, limit: int | None = None) -> list[tuple[int, float, int]]:
    """``(product id, unix time, event type)`` of what the customer bought, viewed or put in a basket,
    oldest first: the history the "for you" block of this customer reads."""
    return history_for(user, "", limit)


def for_customer(user: Any, k: int = 5) -> Preview:
    """The customer's own "for you" block, with the history it came from."""
    visitor = Visitor(user, "")
    block = recommend(None, "for_you", limit=k, visitor=visitor, basket_ids=open_basket_product_ids(user))
    rows = customer_history(user)
    shown = {p.pk: p for p in recommendable_products().filter(pk__in={r[0] for r in rows})}
    return Preview(str(block.title), list(block.items), [shown[r[0]] for r in rows if r[0] in shown])
