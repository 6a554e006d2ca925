"""Receivers of Oscar's signals; connected in ``RecommenderConfig.ready``.

Each receiver builds event rows and calls :func:`recommender.tracking.record`,
which never raises. The receivers themselves are wrapped in :func:`safe`, so no
bug in our code can break a page or the checkout.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from recommender.measurement.capture import attribute_order, merge_into_user, record_click
from recommender.models import EventKind
from recommender.serving.blocks import visitor_of
from recommender.signals import visitor_merged
from recommender.tracking import (
    current_request,
    event_uuid,
    merge_visitor,
    record,
    request_event_uuid,
    request_identity,
    rotate_visitor,
    should_track,
)

logger = logging.getLogger(__name__)


def safe(receiver: Callable[..., Any]) -> Callable[..., None]:
    @functools.wraps(receiver)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            receiver(*args, **kwargs)
        except Exception:
            logger.exception("recommender: receiver %s failed", receiver.__name__)

    return wrapper


@safe
def on_product_viewed(sender: Any, product: Any, user: Any, request: Any, response: Any = None, **kwargs: Any) -> None:
    if not should_track(request):
        return
    identity = request_identity(request, user)
    token = request.GET.get("rec", "") if request is not None else ""
    if token:  # reached through a recommendation's link
        record_click(request, product, token, visitor_of(request))
    record(
        [
            {
                "event_id": request_event_uuid(request, identity, "view", product.pk),
                "kind": EventKind.VIEW,
                "product": product,
                **identity,
            }
        ]
    )


@safe
def on_basket_addition(sender: Any, product: Any, user: Any, request: Any, **kwargs: Any) -> None:
    if not should_track(request):
        return
    line_price = None
    basket = getattr(request, "basket", None)
    if basket is not None and getattr(basket, "id", None):
        line = next((ln for ln in basket.all_lines() if ln.product_id == product.pk), None)
        line_price = line.unit_price_incl_tax if line is not None else None
    identity = request_identity(request, user)
    record(
        [
            {
                "event_id": request_event_uuid(request, identity, "basket", product.pk),
                "kind": EventKind.BASKET,
                "product": product,
                "quantity": int(request.POST.get("quantity", 1) or 1) if request.method == "POST" else 1,
                "price": line_price,
                **identity,
            }
        ]
    )


@safe
def on_user_search(sender: Any, session: Any, user: Any, query: str, **kwargs: Any) -> None:
    request = current_request.get()
    if not should_track(request) or not query:
        return
    identity = request_identity(request, user)
    record(
        [
            {
                "event_id": request_event_uuid(request, identity, "search", query),
                "kind": EventKind.SEARCH,
                "query": str(query)[:255],
                **identity,
            }
        ]
    )


@safe
def on_order_placed(sender: Any, order: Any, user: Any = None, **kwargs: Any) -> None:
    """One purchase event per order line, keyed by order number and line id (replays dedup)."""
    request = current_request.get()
    if not should_track(request):
        return
    identity = request_identity(request, order.user) if request is not None else {"user": order.user}
    if request is not None:
        attribute_order(order, request, visitor_of(request))
    record(
        {
            "event_id": event_uuid("purchase", order.number, line.pk),
            "kind": EventKind.PURCHASE,
            "created": order.date_placed,
            "product": line.product,
            "order_number": order.number,
            "quantity": line.quantity,
            "price": line.unit_price_incl_tax,
            "currency": order.currency,
            **identity,
        }
        for line in order.lines.select_related("product")
    )


@safe
def on_order_status_changed(sender: Any, order: Any, old_status: str, new_status: str, **kwargs: Any) -> None:
    if not should_track(None):
        return
    record(
        [
            {
                "event_id": event_uuid("status", order.number, old_status, new_status),
                "kind": EventKind.ORDER_STATUS,
                "user": order.user,
                "order_number": order.number,
                "old_status": old_status or "",
                "new_status": new_status or "",
                "currency": order.currency,
            }
        ]
    )


@safe
def on_user_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    merge_visitor(request, user)


def on_user_deleted(sender: Any, instance: Any, using: str = "default", **kwargs: Any) -> None:
    """``pre_delete`` of the user model: erase the person's data in the deletion's transaction.

    It runs before Django sets the account's events to no user (which would leave them as
    anonymous browsing of the account's visitor id). In a savepoint, and never raising: a failure
    is logged and the account is deleted all the same.
    """
    from django.db import transaction

    from recommender.services.personal_data import erase, person_for_user

    try:
        with transaction.atomic(using=using):
            erase(person_for_user(instance.pk, using), using=using)
    except Exception:
        logger.exception("recommender: could not erase the personal data of a deleted user")


@safe
def on_user_logged_out(sender: Any, request: Any, user: Any = None, **kwargs: Any) -> None:
    """A logout retires the browser's visitor id: the next person on this device starts afresh."""
    rotate_visitor(request)


def connect() -> None:
    from django.conf import settings
    from django.contrib.auth.signals import user_logged_in as django_user_logged_in
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import pre_delete
    from oscar.apps.basket.signals import basket_addition
    from oscar.apps.catalogue.signals import product_viewed
    from oscar.apps.customer.signals import user_logged_in as oscar_user_logged_in
    from oscar.apps.order.signals import order_placed, order_status_changed
    from oscar.apps.search.signals import user_search

    uid = "recommender"
    product_viewed.connect(on_product_viewed, dispatch_uid=f"{uid}.view")
    basket_addition.connect(on_basket_addition, dispatch_uid=f"{uid}.basket")
    user_search.connect(on_user_search, dispatch_uid=f"{uid}.search")
    order_placed.connect(on_order_placed, dispatch_uid=f"{uid}.order_placed")
    order_status_changed.connect(on_order_status_changed, dispatch_uid=f"{uid}.order_status")
    # Oscar's signal carries the old session key; Django's also fires on registration and admin logins.
    oscar_user_logged_in.connect(on_user_logged_in, dispatch_uid=f"{uid}.login_oscar")
    django_user_logged_in.connect(on_user_logged_in, dispatch_uid=f"{uid}.login_django")
    # an account's deletion erases what we hold about that person
    pre_delete.connect(on_user_deleted, sender=settings.AUTH_USER_MODEL, dispatch_uid=f"{uid}.user_deleted")
    user_logged_out.connect(on_user_logged_out, dispatch_uid=f"{uid}.logout")
    visitor_merged.connect(merge_into_user, dispatch_uid=f"{uid}.merge_measurement")
