"""Drive Oscar's real views with Django's test client (no mocks of the shop)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.test import Client
from django.urls import reverse
from oscar.core.loading import get_model

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def make_product(title: str = "Red mug", price: str = "10.00", stock: int = 100) -> Any:
    from oscar.test.factories import create_product

    return create_product(title=title, price=Decimal(price), num_in_stock=stock)


def browser(**headers: str) -> Client:
    return Client(HTTP_USER_AGENT=BROWSER, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})


def view_product(client: Client, product: Any, **extra: Any) -> Any:
    return client.get(product.get_absolute_url(), **extra)


def add_to_basket(client: Client, product: Any, quantity: int = 1) -> Any:
    return client.post(reverse("basket:add", kwargs={"pk": product.pk}), {"quantity": quantity})


def checkout(client: Client, guest_email: str | None = None) -> Any:
    """Place an order for the client's basket through Oscar's checkout views; returns the Order."""
    Country = get_model("address", "Country")
    Order = get_model("order", "Order")
    Country.objects.get_or_create(
        iso_3166_1_a2="GB", defaults={"name": "United Kingdom", "printable_name": "United Kingdom"}
    )
    Country.objects.filter(iso_3166_1_a2="GB").update(is_shipping_country=True)
    if guest_email:
        resp = client.post(reverse("checkout:index"), {"username": guest_email, "options": "anonymous"})
        assert resp.status_code == 302, resp.content[:2000]
    resp = client.post(
        reverse("checkout:shipping-address"),
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "line1": "1 Analytical Row",
            "line4": "London",
            "postcode": "N1 9GU",
            "country": "GB",
        },
    )
    assert resp.status_code == 302, resp.content[:2000]
    # one shipping method and no payment form: these steps store the choice and redirect on
    for step in ("checkout:shipping-method", "checkout:payment-method"):
        assert client.get(reverse(step)).status_code == 302
    before = set(Order.objects.values_list("pk", flat=True))
    resp = client.post(reverse("checkout:preview"), {"action": "place_order"})
    assert resp.status_code == 302, resp.content[:2000]
    assert resp["Location"].endswith(reverse("checkout:thank-you")), resp["Location"]
    return Order.objects.exclude(pk__in=before).get()


def signed_visitor(value: str) -> str:
    """The payload ``<id>|<mergeable>`` of a signed visitor cookie value (BadSignature if forged)."""
    from django.http import HttpRequest

    from recommender.conf import app_settings
    from recommender.tracking import VISITOR_COOKIE_SALT

    request = HttpRequest()
    request.COOKIES[app_settings.VISITOR_COOKIE] = value
    return request.get_signed_cookie(app_settings.VISITOR_COOKIE, salt=VISITOR_COOKIE_SALT)


def cookie_payload(client: Client) -> str:
    """``<id>|<mergeable>`` of a test client's signed visitor cookie ("" when it has none)."""
    from recommender.conf import app_settings

    morsel = client.cookies.get(app_settings.VISITOR_COOKIE)
    return signed_visitor(morsel.value) if morsel is not None and morsel.value else ""


def visitor_id_of(client: Client) -> str:
    """The visitor id inside a test client's signed visitor cookie ("" when it has none)."""
    return cookie_payload(client).partition("|")[0]


def throttle_rates(monkeypatch: Any, **rates: str) -> None:
    """The recommendations API's throttle rates for one test (``recommendations="3/min"``; a scope not
    named keeps its default), on a clock that stands still: the counts live in fixed windows, and a
    window ending during the test would start them again."""
    from recommender.api.views import RecommendationAddressThrottle, RecommendationThrottle

    for throttle in (RecommendationThrottle, RecommendationAddressThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", rates)
        monkeypatch.setattr(throttle, "timer", staticmethod(lambda: 1_800_000_000.0))


def reset_throttle_counts() -> None:
    """Forget every throttle count (on Redis only the cache's own throttle keys: never FLUSHDB)."""
    from django.core.cache import cache

    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("throttle_*")
    else:
        cache.clear()
