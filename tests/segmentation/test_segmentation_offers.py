"""Segment-targeted offers through Oscar's real basket and checkout (Django test client)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from django.core.cache import cache
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from oscar.core.loading import get_model
from oscar.test.factories import CountryFactory, UserFactory, create_product

from segmentation.models import CustomerSegment, SegmentationRun
from segmentation.offers import SegmentCondition, create_segment_offer, offers_for_segment
from tests.helpers import add_to_basket
from tests.helpers import checkout as place_order

pytestmark = pytest.mark.django_db
Order = get_model("order", "Order")


def make_member(user, segment: str) -> CustomerSegment:
    run = SegmentationRun.objects.filter(is_current=True).first() or SegmentationRun.objects.create(
        as_of=date(2024, 6, 30), status="succeeded", is_current=True
    )
    return CustomerSegment.objects.create(
        run=run,
        user=user,
        recency_days=3,
        frequency=9,
        monetary=D("900"),
        r_score=5,
        f_score=5,
        m_score=5,
        segment=segment,
    )


@pytest.fixture
def shop():
    CountryFactory(iso_3166_1_a2="GB", printable_name="United Kingdom", is_shipping_country=True)
    product = create_product(price=D("20.00"), num_in_stock=100)
    offer = create_segment_offer(["Champions"], percent=10)
    return product, offer


def checkout(client, product, guest_email: str | None = None):
    """Add one product to the basket and place the order; returns (basket total, order)."""
    add_to_basket(client, product)
    total = client.get(reverse("basket:summary")).context["basket"].total_incl_tax
    return total, place_order(client, guest_email=guest_email)


def test_member_gets_the_discount_at_checkout(client, shop):
    product, offer = shop
    user = UserFactory()
    make_member(user, "Champions")
    client.force_login(user)
    basket_total, order = checkout(client, product)
    assert basket_total == D("18.00")
    assert order.user == user
    assert order.total_incl_tax == D("18.00")
    assert order.total_discount_incl_tax == D("2.00")
    assert [d.offer_id for d in order.discounts.all()] == [offer.pk]


def test_non_member_pays_full_price(client, shop):
    product, _offer = shop
    user = UserFactory()
    make_member(user, "Hibernating")
    client.force_login(user)
    basket_total, order = checkout(client, product)
    assert basket_total == D("20.00")
    assert order.total_incl_tax == D("20.00") and not order.discounts.exists()


def test_anonymous_guest_pays_full_price(client, shop):
    product, _offer = shop
    basket_total, order = checkout(client, product, guest_email="someone@example.com")
    assert basket_total == D("20.00")
    assert order.user is None and order.total_incl_tax == D("20.00")


def test_condition_protocol_and_name(shop):
    _product, offer = shop
    cond = offer.condition.proxy()
    assert isinstance(cond, SegmentCondition)
    assert cond.target_segments() == ["Champions"]
    assert "Champions" in offer.condition.name
    assert cond.is_partially_satisfied(offer, None) is False and cond.get_upsell_message(offer, None) is None


def test_segment_promotions_tag_shows_own_segment_only(shop):
    _product, offer = shop
    member, other = UserFactory(), UserFactory()
    make_member(member, "Champions")
    make_member(other, "Lost")
    tpl = Template("{% load segmentation_tags %}{% segment_promotions %}")
    for user, visible in ((member, True), (other, False)):
        request = RequestFactory().get("/")
        request.user = user
        html = tpl.render(Context({"request": request}))
        assert (offer.name in html) is visible
    assert offers_for_segment("Champions") == [offer]
    assert offers_for_segment(None) == []


def test_admin_action_creates_offer(admin_client):
    user = UserFactory()
    m = make_member(user, "At risk")
    r = admin_client.post(
        reverse("admin:segmentation_customersegment_changelist"),
        {"action": "create_offer_for_segment", "_selected_action": [m.pk]},
    )
    assert r.status_code == 302
    offer = get_model("offer", "ConditionalOffer").objects.get()
    assert offer.condition.proxy().target_segments() == ["At risk"]
    assert offer.offer_type == "Site" and offer.benefit.value == D("10")
    assert offer.condition.range.includes_all_products


def test_discount_applies_once_to_every_line_and_unit(client, shop):
    """The condition consumes nothing itself; Oscar stops re-applying once every unit is discounted."""
    product, _offer = shop
    other = create_product(price=D("5.00"), num_in_stock=100)
    user = UserFactory()
    make_member(user, "Champions")
    client.force_login(user)
    client.post(reverse("basket:add", kwargs={"pk": product.pk}), {"quantity": 3})
    client.post(reverse("basket:add", kwargs={"pk": other.pk}), {"quantity": 2})
    basket = client.get(reverse("basket:summary")).context["basket"]
    assert basket.total_incl_tax_excl_discounts == D("70.00")
    assert basket.total_incl_tax == D("63.00")  # 10% of everything, exactly once
    assert len(basket.offer_applications) == 1


def test_new_run_changes_the_segment_a_shopper_sees():
    from segmentation import services

    user = UserFactory()
    make_member(user, "Champions")
    assert services.current_segment(user) == "Champions"
    old = SegmentationRun.objects.get(is_current=True)
    old.is_current = False
    old.save()
    new = SegmentationRun.objects.create(as_of=date(2024, 7, 31), status="succeeded", is_current=True)
    CustomerSegment.objects.create(
        run=new,
        user=user,
        recency_days=40,
        frequency=9,
        monetary=D("900"),
        r_score=2,
        f_score=5,
        m_score=5,
        segment="Can't lose them",
    )
    cache.delete(services.CURRENT_RUN_CACHE_KEY)  # what a successful run does on commit
    assert services.current_segment(user) == "Can't lose them"


def test_demo_shop_shows_a_member_their_segment_offer(client, shop):
    _product, offer = shop
    member = UserFactory()
    make_member(member, "Champions")
    client.force_login(member)
    for url in (reverse("catalogue:index"), reverse("basket:summary")):
        assert offer.name in client.get(url).content.decode(), url
    client.force_login(UserFactory())
    assert offer.name not in client.get(reverse("basket:summary")).content.decode()
