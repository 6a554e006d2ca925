"""Behaviour capture through Oscar's real views and signals."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from oscar.apps.order.signals import order_placed

from recommender.models import Event, EventKind
from tests.helpers import BROWSER, add_to_basket, browser, checkout, make_product, signed_visitor, view_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def product():
    return make_product()


@pytest.fixture
def customer():
    return get_user_model().objects.create_user(username="ada", email="ada@example.com", password="s3cret-pass!")


def test_anonymous_view_records_event_and_sets_visitor_cookie(product):
    client = browser()
    resp = view_product(client, product)
    assert resp.status_code == 200
    event = Event.objects.get()
    assert (event.kind, event.product, event.user) == (EventKind.VIEW, product, None)
    assert len(event.visitor_id) == 32
    assert signed_visitor(resp.cookies["oscar_visitor"].value) == f"{event.visitor_id}|1"
    # the same browser keeps its id
    view_product(client, product)
    assert set(Event.objects.values_list("visitor_id", flat=True)) == {event.visitor_id}


def test_no_ip_or_user_agent_is_stored(product):
    view_product(browser(), product, REMOTE_ADDR="203.0.113.7")
    values = [str(v) for v in Event.objects.values().get().values()]
    assert not any("203.0.113.7" in v or "Mozilla" in v for v in values)


def test_basket_addition_recorded_with_quantity_and_price(product):
    client = browser()
    resp = add_to_basket(client, product, quantity=3)
    assert resp.status_code == 302
    event = Event.objects.get(kind=EventKind.BASKET)
    assert event.product == product
    assert event.quantity == 3
    assert str(event.price) == "10.00"


def test_search_recorded_with_query(product):
    client = browser()
    view_product(client, product)  # gives the browser its visitor id
    resp = client.get(reverse("search:search"), {"q": "mug"})
    assert resp.status_code == 200
    search = Event.objects.get(kind=EventKind.SEARCH)
    assert search.query == "mug"
    assert search.visitor_id == Event.objects.get(kind=EventKind.VIEW).visitor_id


def test_login_merges_anonymous_history_into_account(product, customer):
    client = browser()
    view_product(client, product)
    add_to_basket(client, product)
    assert Event.objects.filter(user__isnull=True).count() == 2
    resp = client.post(
        reverse("customer:login"),
        {"login-username": "ada@example.com", "login-password": "s3cret-pass!", "login_submit": "1"},
    )
    assert resp.status_code == 302
    assert Event.objects.filter(user=customer).count() == 2
    view_product(client, product)
    assert Event.objects.filter(user=customer).count() == 3


def test_guest_checkout_records_one_purchase_per_line(product):
    other = make_product(title="Blue plate", price="4.50")
    client = browser()
    add_to_basket(client, product, quantity=2)
    add_to_basket(client, other, quantity=1)
    order = checkout(client, guest_email="guest@example.com")
    purchases = Event.objects.filter(kind=EventKind.PURCHASE).order_by("price")
    assert [(e.product, e.quantity, str(e.price)) for e in purchases] == [(other, 1, "4.50"), (product, 2, "10.00")]
    assert {e.order_number for e in purchases} == {order.number}
    visitor = Event.objects.filter(kind=EventKind.BASKET).values_list("visitor_id", flat=True).first()
    assert {e.visitor_id for e in purchases} == {visitor}


def test_registered_checkout_purchases_belong_to_the_user(product, customer):
    client = browser()
    client.force_login(customer)
    add_to_basket(client, product)
    order = checkout(client)
    assert order.user == customer
    assert Event.objects.filter(kind=EventKind.PURCHASE, user=customer).count() == 1


def test_replayed_order_signal_does_not_duplicate(product, customer):
    client = browser()
    client.force_login(customer)
    add_to_basket(client, product)
    order = checkout(client)
    for _ in range(3):
        order_placed.send(sender=None, order=order, user=customer)
    assert Event.objects.filter(kind=EventKind.PURCHASE).count() == 1


def test_request_id_makes_retried_requests_idempotent(product):
    client = browser(**{"X-Request-ID": "abc-123"})
    view_product(client, product)
    view_product(client, product)
    assert Event.objects.count() == 1
    # another visitor (or a customer) sending the same id keeps their own event
    view_product(browser(**{"X-Request-ID": "abc-123"}), product)
    assert Event.objects.count() == 2 and Event.objects.values("visitor_id").distinct().count() == 2


def test_event_id_is_unique_in_the_database(product):
    from django.db import IntegrityError, transaction

    first = Event.objects.create(kind=EventKind.VIEW, product=product)
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(kind=EventKind.VIEW, product=product, event_id=first.event_id)


def test_order_status_change_recorded_once(product, customer):
    client = browser()
    client.force_login(customer)
    add_to_basket(client, product)
    order = checkout(client)
    order.set_status("Cancelled")
    event = Event.objects.get(kind=EventKind.ORDER_STATUS)
    assert (event.order_number, event.old_status, event.new_status) == (order.number, "Pending", "Cancelled")


def test_broken_insert_does_not_break_the_product_page(product, caplog):
    with mock.patch.object(Event.objects, "bulk_create", side_effect=DatabaseError("disk full")):
        resp = view_product(browser(), product)
    assert resp.status_code == 200
    assert "could not record" in caplog.text
    assert Event.objects.count() == 0


def test_broken_insert_does_not_break_checkout(product, customer):
    client = browser()
    client.force_login(customer)
    add_to_basket(client, product)
    with mock.patch.object(Event.objects, "bulk_create", side_effect=DatabaseError("disk full")):
        order = checkout(client)
    assert order.lines.count() == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-GPC": "1"},
        {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
        {"User-Agent": "python-requests/2.32"},
        {"User-Agent": ""},
    ],
    ids=["gpc", "googlebot", "script", "no-agent"],
)
def test_not_tracked(product, headers):
    client = browser()
    resp = view_product(client, product, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    add_to_basket(client, product)  # the GPC header is per request; only the view carried it
    assert resp.status_code == 200
    assert not Event.objects.filter(kind=EventKind.VIEW).exists()
    assert "oscar_visitor" not in resp.cookies


def test_tracking_switched_off(product, settings):
    settings.RECOMMENDER = {"TRACKING_ENABLED": False}
    client = browser()
    view_product(client, product)
    add_to_basket(client, product)
    assert Event.objects.count() == 0


def test_consent_required(product, settings):
    settings.RECOMMENDER = {"REQUIRE_CONSENT": True}
    client = browser()
    view_product(client, product)
    assert Event.objects.count() == 0
    client.cookies["tracking_consent"] = "1"
    view_product(client, product)
    assert Event.objects.count() == 1


@pytest.mark.parametrize("value", ["<script>", "0123456789abcdef" * 2, "0123456789abcdef" * 2 + "|1"])
def test_forged_or_unsigned_visitor_cookie_is_replaced(product, value):
    client = browser()
    client.cookies["oscar_visitor"] = value
    resp = view_product(client, product)
    vid = Event.objects.get().visitor_id
    assert vid and vid not in value and signed_visitor(resp.cookies["oscar_visitor"].value) == f"{vid}|1"


def test_admin_lists_events_read_only_for_staff_only(product, admin_client, client, customer):
    view_product(browser(), product)
    url = reverse("admin:recommender_event_changelist")
    resp = admin_client.get(url, {"kind__exact": "view"}, HTTP_USER_AGENT=BROWSER)
    assert resp.status_code == 200
    assert product.title in resp.content.decode()
    event = Event.objects.get()
    assert admin_client.post(reverse("admin:recommender_event_change", args=[event.pk]), {}).status_code == 403
    client.force_login(customer)
    assert client.get(url).status_code == 302  # not staff: sent to the admin login


def test_shop_pages_work_with_redis_down(product, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "IGNORE_EXCEPTIONS": True},
        }
    }
    client = browser()
    assert view_product(client, product).status_code == 200
    assert add_to_basket(client, product).status_code == 302
    assert Event.objects.count() == 2


@given(query=st.text(max_size=400), cookie=st.text(max_size=80))
@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_query_or_cookie_is_handled(product, query, cookie):
    client = browser()
    # what a WSGI server can hand over: a header is bytes, decoded as latin-1
    if cookie.isprintable() and ";" not in cookie and all(ord(c) < 256 for c in cookie):
        client.cookies["oscar_visitor"] = cookie
    resp = client.get(reverse("search:search"), {"q": query.replace("\x00", "")})
    assert resp.status_code == 200
    for event in Event.objects.filter(kind=EventKind.SEARCH):
        assert len(event.query) <= 255
        assert re.fullmatch(r"[0-9a-f]{32}", event.visitor_id)


@pytest.mark.django_db(transaction=True)
def test_event_written_in_autocommit_mode(product):
    """The production path (no surrounding transaction): on PostgreSQL with asynchronous commit,
    which must stay local to the event's own transaction."""
    from django.db import connection

    assert view_product(browser(), product).status_code == 200
    assert Event.objects.filter(kind=EventKind.VIEW, product=product).count() == 1
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"
