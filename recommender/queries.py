"""The querysets every part of the app agrees on: what may be recommended, which orders count,
which captured events are behaviour.

The bottom layer of the app: capture, serving, training, export and the personal-data service
all read the shop through these, and this module imports none of them.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from oscar.core.loading import get_model

from recommender.conf import app_settings
from recommender.ml.data import EVENT_BASKET, EVENT_VIEW

__all__ = ["EVENT_TYPES", "non_merchandise", "recommendable_products", "without_erased_orders"]

#: captured event kinds that are behaviour (training, histories), with their model event type codes
EVENT_TYPES = {"view": EVENT_VIEW, "basket": EVENT_BASKET}


def non_merchandise(variants: bool = True) -> Q:
    """Products that are not goods (postage, fees, manual adjustments): of a class in
    ``EXCLUDED_PRODUCT_CLASSES`` (a variant by its parent's class, unless ``variants`` is false:
    one join less where there are none) or with a UPC in ``EXCLUDED_UPCS``. They are never
    recommended and are left out of the staff pages' product rankings. With both settings empty
    this is an empty ``Q()``, which is false: test it before filtering on it."""
    q = Q()
    classes = list(app_settings.EXCLUDED_PRODUCT_CLASSES)
    if classes:
        q |= Q(product_class__slug__in=classes)
        if variants:
            q |= Q(parent__product_class__slug__in=classes)
    if app_settings.EXCLUDED_UPCS:
        q |= Q(upc__in=list(app_settings.EXCLUDED_UPCS))
    return q


def recommendable_products(using: str = "default") -> QuerySet:
    """Products that may be recommended: public, standalone or parent, not :func:`non_merchandise`."""
    Product = get_model("catalogue", "Product")
    qs = Product.objects.using(using).filter(is_public=True, parent__isnull=True)
    excluded = non_merchandise(variants=False)  # no child products here
    return qs.exclude(excluded) if excluded else qs


def without_erased_orders(qs: QuerySet, order_field: str = "order", using: str = "default") -> QuerySet:
    """``qs`` without the orders of erased persons; ``order_field`` names the order (``"pk"`` on orders).

    A ``NOT EXISTS`` on the unique ``order_id`` inside the same query (an anti-join): no query of
    its own, and no measurable cost on half a million order lines.
    """
    ErasedOrder = get_model("recommender", "ErasedOrder")
    erased = ErasedOrder._default_manager.using(using).filter(order_id=OuterRef(order_field))
    return qs.exclude(Exists(erased))
