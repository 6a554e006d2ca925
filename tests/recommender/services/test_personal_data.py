"""Erasure and export of one person's data (GDPR Art. 15/17/20), through Oscar's real views.

Alice browses anonymously, logs in, buys, logs out and browses on; she also checks out as a guest
with her address from another browser. Bob shops too. After an erasure no row of Alice's is left
in any of our tables (each queried explicitly), her cached blocks and segment are gone from Redis,
the next training export and segmentation do not see her, and Bob's data is untouched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db.models import Q
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from oscar.core.loading import get_model

from recommender.exporters import export_behaviour
from recommender.services import personal_data
from segmentation.services import CURRENT_RUN_CACHE_KEY, aggregate_customers, current_segment
from tests.helpers import add_to_basket, browser, checkout, make_product, view_product, visitor_id_of

pytestmark = pytest.mark.django_db

Event = get_model("recommender", "Event")
ErasedOrder = get_model("recommender", "ErasedOrder")
CustomerSegment = get_model("segmentation", "CustomerSegment")
SegmentationRun = get_model("segmentation", "SegmentationRun")
Order = get_model("order", "Order")
ALICE_EMAIL = "alice@example.com"


@dataclass
class Shop:
    alice: Any
    bob: Any
    alice_client: Client
    alice_visitor: str
    guest_visitor: str
    alice_order: Any
    guest_order: Any
    bob_order: Any


def login(client: Client, user: Any) -> None:
    resp = client.post(
        reverse("customer:login"), {"login-username": user.email, "login-password": "pw", "login_submit": "1"}
    )
    assert resp.status_code == 302, resp.content[:500]


def member(run: Any, user: Any = None, guest_email: str = "", segment: str = "Champions") -> Any:
    return CustomerSegment.objects.create(
        run=run,
        user=user,
        guest_email=guest_email,
        recency_days=3,
        frequency=2,
        monetary=Decimal("30.00"),
        r_score=5,
        f_score=4,
        m_score=3,
        segment=segment,
    )


def two_runs(alice: Any, bob: Any) -> None:
    """Memberships in an old and the current segmentation run; Alice's segment is then cached."""
    old = SegmentationRun.objects.create(as_of=date(2026, 1, 1), status="succeeded")
    current = SegmentationRun.objects.create(as_of=date(2026, 2, 1), status="succeeded", is_current=True)
    for run in (old, current):
        member(run, user=alice)
        member(run, guest_email=ALICE_EMAIL, segment="New customers")
        member(run, user=bob, segment="Loyal")
    cache.delete(CURRENT_RUN_CACHE_KEY)  # as a run's publication does
    assert current_segment(alice) == "Champions"  # cached in Redis now


@pytest.fixture
def shop(db) -> Shop:
    """Alice through Oscar's real views: each product page she sees caches her blocks."""
    from oscar.test.factories import create_order

    User = get_user_model()
    products = [make_product(f"Item {i}", price="10.00") for i in range(4)]
    g = browser()  # first a guest checkout with her address, on another browser (then she registered)
    view_product(g, products[3])
    add_to_basket(g, products[3])
    guest_order = checkout(g, guest_email="Alice@Example.com")
    guest_visitor = visitor_id_of(g)

    alice = User.objects.create_user("alice", ALICE_EMAIL, "pw")
    bob = User.objects.create_user("bob", "bob@example.com", "pw")
    a = browser()
    view_product(a, products[0])  # anonymous, then merged into her account at login
    alice_visitor = visitor_id_of(a)
    login(a, alice)
    view_product(a, products[1])
    add_to_basket(a, products[1])
    alice_order = checkout(a)
    a.get(reverse("customer:logout"))
    view_product(a, products[2])  # same browser, logged out: a fresh visitor id, nobody's (shared devices)

    Event.objects.create(kind="view", user=bob, product=products[0])  # Bob: rows of his own
    bob_order = create_order(user=bob)
    two_runs(alice, bob)
    return Shop(alice, bob, a, alice_visitor, guest_visitor, alice_order, guest_order, bob_order)


@pytest.fixture
def light_shop(db) -> Shop:
    """The same kinds of rows written directly (for the tests of the doors: account deletion, admin)."""
    from segmentation.testing import make_order

    User = get_user_model()
    product = make_product("Item", price="10.00")
    alice = User.objects.create_user("alice", ALICE_EMAIL, "pw")
    bob = User.objects.create_user("bob", "bob@example.com", "pw")
    alice_visitor, guest_visitor = "a" * 32, "b" * 32
    alice_order = make_order(user=alice)
    guest_order = make_order(guest_email="Alice@Example.com")
    Event.objects.bulk_create(
        [
            Event(kind="view", user=alice, visitor_id=alice_visitor, product=product),
            Event(kind="view", visitor_id=alice_visitor, product=product),  # logged out, same browser
            Event(
                kind="purchase", user=alice, visitor_id=alice_visitor, product=product, order_number=alice_order.number
            ),
            Event(kind="purchase", visitor_id=guest_visitor, product=product, order_number=guest_order.number),
            Event(kind="view", user=bob, product=product),
        ]
    )
    two_runs(alice, bob)
    return Shop(alice, bob, Client(), alice_visitor, guest_visitor, alice_order, guest_order, make_order(user=bob))


def alice_rows(shop: Shop) -> dict[str, int]:
    """Every row of hers in our tables, each table queried explicitly."""
    numbers = [shop.alice_order.number, shop.guest_order.number]
    visitors = [shop.alice_visitor, shop.guest_visitor]
    return {
        "events by account": Event.objects.filter(user_id=shop.alice.pk).count(),
        "events by visitor": Event.objects.filter(visitor_id__in=visitors).count(),
        "events of her orders": Event.objects.filter(order_number__in=numbers).count(),
        "memberships by account": CustomerSegment.objects.filter(user_id=shop.alice.pk).count(),
        "memberships by e-mail": CustomerSegment.objects.filter(guest_email__iexact=ALICE_EMAIL).count(),
    }


def bob_rows(shop: Shop) -> tuple[int, int]:
    return Event.objects.filter(user=shop.bob).count(), CustomerSegment.objects.filter(user=shop.bob).count()


def cache_keys_of(shop: Shop) -> list[str]:
    """Keys in Redis that name her: blocks and generation by account or visitor id, her segment."""
    pk = shop.alice.pk
    mine = re.compile(rf":u{pk}(:|$)|{shop.alice_visitor}|{shop.guest_visitor}|^segmentation:segment:\d+:{pk}$")
    return [k for k in map(str, cache.keys("*")) if mine.search(k)]


def her_events(shop: Shop) -> int:
    return Event.objects.filter(
        Q(user_id=shop.alice.pk)
        | Q(visitor_id__in=[shop.alice_visitor, shop.guest_visitor])
        | Q(order_number__in=[shop.alice_order.number, shop.guest_order.number])
    ).count()


@pytest.mark.postgres
@pytest.mark.redis  # her cache keys are listed with django-redis
def test_export_then_erase_by_email(shop, tmp_path, django_capture_on_commit_callbacks):
    # Art. 15/20: her data as JSON, only hers (her guest order belongs to --email, not --user)
    path = tmp_path / "alice.json"
    call_command("export_personal_data", user=shop.alice.pk, output=path, stderr=StringIO())
    text = path.read_text()
    data = json.loads(text)
    assert data == personal_data.export(personal_data.person_for_user(shop.alice.pk))  # round trip
    assert data["person"] == {"user_ids": [shop.alice.pk], "emails": [], "visitor_ids": [shop.alice_visitor]}
    assert sorted(e["kind"] for e in data["events"]) == ["basket", "purchase", "view", "view"]
    assert {e["user_id"] for e in data["events"]} == {shop.alice.pk}  # the view before login was merged
    assert [o["number"] for o in data["orders"]] == [shop.alice_order.number]
    assert [(s["as_of"], s["segment"], s["current"]) for s in data["segments"]] == [
        ("2026-01-01", "Champions", False),
        ("2026-02-01", "Champions", True),
    ]
    recent = next(r for r in data["recommendations"] if r["user_id"] and r["placement"] == "recently_viewed")
    assert recent["items"] and all(i["reason"] == "You viewed this recently" for i in recent["items"])
    for other in (str(shop.bob_order.number), "bob@example.com", shop.guest_visitor, shop.guest_order.number):
        assert other not in text
    assert shop.bob.pk not in {e["user_id"] for e in data["events"]} | {s["user_id"] for s in data["segments"]}

    # Art. 17: every row of hers, as account and as guest
    before = alice_rows(shop)
    assert all(before.values()), before
    assert cache_keys_of(shop)
    bob_before = bob_rows(shop)
    n_events = her_events(shop)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):  # the cache is cleared once the erasure commits
        call_command("erase_personal_data", email=" ALICE@example.com ", stdout=out)
    assert re.search(rf"events deleted\s+{n_events}\n", out.getvalue()), out.getvalue()
    assert alice_rows(shop) == dict.fromkeys(before, 0)
    assert cache_keys_of(shop) == [] and current_segment(shop.alice) is None
    assert bob_rows(shop) == bob_before
    # Oscar keeps the orders; no model learns from them: the next training's export and segmentation
    assert Order.objects.filter(pk__in=[shop.alice_order.pk, shop.guest_order.pk]).count() == 2
    assert set(ErasedOrder.objects.values_list("order_id", flat=True)) == {shop.alice_order.pk, shop.guest_order.pk}
    log = export_behaviour(timezone.now() + timedelta(seconds=1)).frame
    others = log[log["person"] != shop.bob.pk]  # the view after her logout: a fresh id, nobody's
    assert len(others) == 1 and others["order"].tolist() == [-1]
    assert set(log["order"]) == {-1, shop.bob_order.pk}
    customers, _info = aggregate_customers(timezone.localdate())
    assert customers["user_id"].tolist() == [float(shop.bob.pk)] and set(customers["guest"]) == {""}

    again = StringIO()  # idempotent: nothing left to delete
    call_command("erase_personal_data", email=ALICE_EMAIL, stdout=again)
    assert re.search(r"events deleted\s+0\n", again.getvalue())
    assert re.search(r"orders left out by an earlier erasure\s+2\n", again.getvalue())


def test_deleting_the_account_in_oscar_erases_her(light_shop):
    shop = light_shop
    shop.alice_client.force_login(shop.alice)
    resp = shop.alice_client.post(reverse("customer:profile-delete"), {"password": "pw"})
    assert resp.status_code == 302
    assert not get_user_model().objects.filter(pk=shop.alice.pk).exists()
    rows = alice_rows(shop)
    # what remains is only what --email covers: the guest order's browser and the guest membership
    assert rows["events by account"] == rows["memberships by account"] == 0
    assert Event.objects.filter(visitor_id=shop.alice_visitor).count() == 0  # not left behind as anonymous
    assert ErasedOrder.objects.filter(order=shop.alice_order).exists()
    assert Order.objects.get(pk=shop.alice_order.pk).user_id is None  # Oscar keeps the order


def test_the_admin_action_is_for_staff_with_the_permission(light_shop):
    shop = light_shop
    url = reverse("admin:auth_user_changelist")
    staff = get_user_model().objects.create_user("clerk", "clerk@example.com", "pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))
    clerk = Client()
    clerk.force_login(staff)
    assert "erase_personal_data_of_users" not in clerk.get(url).content.decode()
    post = {"action": "erase_personal_data_of_users", "_selected_action": [shop.alice.pk]}
    clerk.post(url, post)
    assert alice_rows(shop)["events by account"] > 0  # refused: no permission

    staff.user_permissions.add(Permission.objects.get(codename="erase_personal_data"))
    clerk = Client()
    clerk.force_login(staff)
    assert "erase_personal_data_of_users" in clerk.get(url).content.decode()
    confirm = clerk.post(url, post)
    assert confirm.status_code == 200 and b"Yes, erase" in confirm.content
    assert alice_rows(shop)["events by account"] > 0  # only asked so far
    done = clerk.post(url, {**post, "post": "yes"})
    assert done.status_code == 302
    rows = alice_rows(shop)
    assert rows["events by account"] == rows["memberships by account"] == 0

    # the event admin: the people behind events (an account; an anonymous browser and its guest order)
    root = Client()
    root.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    picked = Event.objects.filter(Q(user=shop.bob) | Q(visitor_id=shop.guest_visitor)).values_list("pk", flat=True)
    post = {"action": "erase_people", "_selected_action": list(picked), "post": "yes"}
    assert root.post(reverse("admin:recommender_event_changelist"), post).status_code == 302
    assert bob_rows(shop) == (0, 0) and not Event.objects.filter(visitor_id=shop.guest_visitor).exists()
    assert ErasedOrder.objects.filter(order=shop.guest_order).exists()


@hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(identifier=st.one_of(st.text(max_size=40), st.emails()), as_email=st.booleans())
def test_any_other_identifier_erases_nobody(light_shop, identifier, as_email):
    """Open-ended input to the command: an address or visitor id that is nobody's removes nothing."""
    shop = light_shop
    known = {ALICE_EMAIL, "bob@example.com", shop.alice_visitor, shop.guest_visitor}
    assume(identifier.strip().lower() not in known)
    before = (Event.objects.count(), CustomerSegment.objects.count(), ErasedOrder.objects.count())
    option = {"email": identifier} if as_email else {"visitor": identifier}
    try:
        call_command("erase_personal_data", **option, stdout=StringIO())
    except CommandError:  # names nobody (empty, too long, control characters): refused
        value = identifier.strip()
        # (call_command passes a required option's value as its own word: argparse takes "-x" for an option)
        assert not value or len(value) > 32 or not value.isprintable() or identifier.startswith("-")
    assert (Event.objects.count(), CustomerSegment.objects.count(), ErasedOrder.objects.count()) == before
