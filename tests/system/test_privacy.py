"""Privacy of a browser's identity and of segments, through Oscar's real views.

* the visitor cookie is signed; at login an account gets only what this browser recorded;
  logins and logouts give the browser a fresh, non-mergeable id (shared devices);
* segment offers are listed only to the segment's members, under a shopper-facing name.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from recommender.models import Event
from tests.helpers import browser, cookie_payload, make_product, view_product
from tests.segmentation.test_segmentation_offers import make_member

pytestmark = pytest.mark.django_db
COOKIE = "oscar_visitor"


def login(client, user) -> None:  # type: ignore[no-untyped-def]
    resp = client.post(
        reverse("customer:login"), {"login-username": user.email, "login-password": "pw", "login_submit": "1"}
    )
    assert resp.status_code == 302, resp.content[:500]


@pytest.fixture
def products():
    return [make_product(title=f"Item {i}") for i in range(5)]


@pytest.fixture
def people():
    User = get_user_model()
    return [User.objects.create_user(username=n, email=f"{n}@example.com", password="pw") for n in ("ann", "eve")]


def test_a_copied_cookie_merges_nothing_into_another_account(products, people):
    ann, eve = people
    victim = browser()
    for product in products:
        view_product(victim, product)
    vid = cookie_payload(victim).split("|")[0]
    assert Event.objects.filter(visitor_id=vid, user=None).count() == 5
    # the whole signed cookie copied into another browser, and the bare id (as in old cookies)
    for value in (victim.cookies[COOKIE].value, vid):
        thief = browser()
        thief.cookies[COOKIE] = value
        view_product(thief, products[0])
        login(thief, eve)
        thief.post(reverse("customer:logout"))
    assert Event.objects.filter(visitor_id=vid, user=None).count() == 5  # still the victim's alone
    assert Event.objects.filter(user=eve).count() == 2  # only what the thief's browser recorded
    # the victim's own login still takes the victim's whole history
    login(victim, ann)
    assert Event.objects.filter(visitor_id=vid, user=ann).count() == 5


def test_a_copied_cookie_sees_and_takes_none_of_the_later_views_of_its_browser(products, people):
    """The cookie copied into another browser: that browser sees none of the first one's history, and
    its login takes none of the views the first browser makes after the copy."""
    _ann, eve = people
    victim = browser()
    view_product(victim, products[0])
    thief = browser()
    thief.cookies[COOKIE] = victim.cookies[COOKIE].value
    recent = reverse("recommender-api:recommendations", kwargs={"placement": "recently_viewed"})
    assert thief.get(recent).json()["results"] == []
    view_product(thief, products[1])
    for product in products[2:]:  # the victim browses on after the copy
        view_product(victim, product)
    assert [r["title"] for r in thief.get(recent).json()["results"]] == ["Item 1"]
    login(thief, eve)
    assert list(Event.objects.filter(user=eve).values_list("product__title", flat=True)) == ["Item 1"]
    vid = cookie_payload(victim).split("|")[0]
    assert Event.objects.filter(visitor_id=vid, user=None).count() == 4
    assert [r["title"] for r in victim.get(recent).json()["results"]][:1] == ["Item 4"]


def test_a_shared_device_never_gives_one_persons_views_to_another(products, people):
    ann, _eve = people
    device = browser()
    view_product(device, products[0])
    first = cookie_payload(device)
    login(device, ann)
    assert Event.objects.filter(user=ann).count() == 1
    after_login = cookie_payload(device)
    device.post(reverse("customer:logout"))
    after_logout = cookie_payload(device)
    assert len({first, after_login, after_logout}) == 3 and after_logout.endswith("|0")
    view_product(device, products[3])  # a second person, anonymous, on the same browser
    view_product(device, products[4])
    stranger = after_logout.split("|")[0]
    assert Event.objects.filter(visitor_id=stranger, user=None).count() == 2
    login(device, ann)  # the first person signs in again
    assert Event.objects.filter(visitor_id=stranger, user=None).count() == 2
    assert set(Event.objects.filter(user=ann).values_list("product__title", flat=True)) == {"Item 0"}
    recent = device.get(reverse("recommender-api:recommendations", kwargs={"placement": "recently_viewed"}))
    assert [r["title"] for r in recent.json()["results"]] == ["Item 0"]


def test_untracked_browsers_lose_the_cookie_at_login(products, people):
    ann, _eve = people
    client = browser()
    view_product(client, products[0])
    assert cookie_payload(client)
    gpc = browser(**{"Sec-GPC": "1"})
    gpc.cookies[COOKIE] = client.cookies[COOKIE].value
    login(gpc, ann)
    assert cookie_payload(gpc) == "" and not Event.objects.filter(user=ann).exists()


# -- segment names stay private -------------------------------------------------------------


def test_segment_offers_are_listed_only_to_members_under_a_shopper_name(products, people):
    from segmentation.offers import create_segment_offer

    ann, eve = people
    make_member(ann, "At risk")
    make_member(eve, "Champions")
    offer = create_segment_offer(["At risk"], percent=10)
    both = create_segment_offer(
        ["At risk", "Champions"], percent=5, shopper_name="Welcome back", shopper_description="5% <b>off</b>"
    )
    both.condition.segment_targets.filter(segment="Champions").update(shopper_name="Thanks for being a star")
    detail = reverse("offer:detail", kwargs={"slug": offer.slug})
    anonymous, member, other = browser(), browser(), browser()
    member.force_login(ann)
    other.force_login(eve)
    pages = {}
    for who, client in (("anonymous", anonymous), ("member", member), ("other", other)):
        pages[who] = client.get(reverse("offer:list")).content.decode() + client.get("/catalogue/").content.decode()
        assert "At risk" not in pages[who] and "Champions" not in pages[who], who
        assert client.get(detail).status_code == (200 if who == "member" else 404), who
    assert "10% off, just for you" in pages["member"]
    assert "A thank-you for shopping with us: 10% off." in pages["member"]
    assert "Welcome back" in pages["member"] and "5% &lt;b&gt;off&lt;/b&gt;" in pages["member"]  # plain text
    assert "10% off, just for you" not in pages["anonymous"] + pages["other"]
    assert "Thanks for being a star" in pages["other"] and "Welcome back" not in pages["anonymous"] + pages["other"]
    member_detail = member.get(detail).content.decode()
    assert "10% off, just for you" in member_detail and "At risk" not in member_detail
    # the member's basket names the discount as the shopper sees it, never the segment
    member.post(reverse("basket:add", kwargs={"pk": products[0].pk}), {"quantity": 1})
    basket = member.get(reverse("basket:summary")).content.decode()
    assert "10% off, just for you" in basket and "At risk" not in basket
