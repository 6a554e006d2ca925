"""The querysets every part of the app agrees on: what may be recommended, which orders count,
which captured events are behaviour.

The bottom layer of the app: capture, serving, training, export and the personal-data service
all read the shop through these, and this module imports none of them.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet
from oscar.core.loading import get_model

from recommender.conf import app_settings
from recommender.ml.data import EVENT_BASKET, EVENT_VIEW

__all__ = ["EVENT_TYPES", "recommendable_products", "without_erased_orders"]

#: captured event kinds that are behaviour (training, histories), with their model event type codes
EVENT_TYPES = {"view": EVENT_VIEW, "basket": EVENT_BASKET}


def recommendable_products(using: str = "default") -> QuerySet:
    """Products that may be recommended: public, standalone or parent, not excluded by a setting."""
    Product = get_model("catalogue", "Product")
    qs = Product.objects.using(using).filter(is_public=True, parent__isnull=True)
    if app_settings.EXCLUDED_PRODUCT_CLASSES:
        qs = qs.exclude(product_class__slug__in=list(app_settings.EXCLUDED_PRODUCT_CLASSES))
    if app_settings.EXCLUDED_UPCS:
        qs = qs.exclude(upc__in=list(app_settings.EXCLUDED_UPCS))
    return qs


def without_erased_orders(qs: QuerySet, order_field: str = "order", using: str = "default") -> QuerySet:
    """``qs`` without the orders of erased persons; ``order_field`` names the order (``"pk"`` on orders).

    A ``NOT EXISTS`` on the unique ``order_id`` inside the same query (an anti-join): no query of
    its own, and no measurable cost on half a million order lines.
    """
    ErasedOrder = get_model("recommender", "ErasedOrder")
    erased = ErasedOrder._default_manager.using(using).filter(order_id=OuterRef(order_field))
    return qs.exclude(Exists(erased))
