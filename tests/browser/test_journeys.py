"""What shoppers and staff see in a real browser (Chromium through Playwright, on the live server).

Four journeys, each through Oscar's real pages: an anonymous shopper browses, sees the blocks
follow them, adds a recommended product and checks out as a guest; a customer logs in and keeps
the history of their anonymous visit; staff create a segment offer on the segments dashboard and
its member sees the discount in their basket; staff roll a model back on the models page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from oscar.core.loading import get_model

from recommender.abstract_models import ModelKind, VersionStatus
from recommender.services import versions
from recommender.services.training import train_recommenders
from tests.helpers import make_product
from tests.training_shop import AS_OF, LIGHT, TrainingShop, build_shop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ModelVersion = get_model("recommender", "ModelVersion")
Order = get_model("order", "Order")
Country = get_model("address", "Country")


# -- what the page shows -------------------------------------------------------------------------


def block(page: Any, placement: str) -> Any:
    return page.locator(f'section[data-placement="{placement}"]')


def titles(page: Any, placement: str) -> list[str]:
    """Product titles of one recommendation block, in the order shown."""
    return block(page, placement).locator("h3 a").evaluate_all("links => links.map(a => a.title)")


def reasons(page: Any, placement: str) -> list[str]:
    return [r.strip() for r in block(page, placement).locator(".recommendation-reason").all_inner_texts()]


def card(page: Any, placement: str, title: str) -> Any:
    return block(page, placement).locator("li.recommendation").filter(has=page.locator(f'h3 a[title="{title}"]'))


def submit(button: Any) -> None:
    """Click a form's button and wait for the page the POST leads to."""
    with button.page.expect_navigation():
        button.click()


def log_in(page: Any, email: str, password: str = "pw") -> None:
    """Through Oscar's own login form."""
    page.goto("/accounts/login/")
    page.fill("#id_login-username", email)
    page.fill("#id_login-password", password)
    page.click("button[name=login_submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


# -- shops ---------------------------------------------------------------------------------------


@contextmanager
def no_search_indexing() -> Iterator[None]:
    """Oscar turns on Haystack's realtime indexing: every product saved would be written to the
    shop's search index on disk. The journeys never search, so products are not indexed."""
    processor = apps.get_app_config("haystack").signal_processor
    processor.teardown()
    try:
        yield
    finally:
        processor.setup()


@pytest.fixture
def trained_shop(live_server: Any, settings: Any, tmp_path: Any) -> Any:
    """The training shop with every kind trained as of ``AS_OF``, and an earlier "also viewed"."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.RECOMMENDER = LIGHT
    versions.forget_loaded()
    with transaction.atomic(), no_search_indexing():  # one commit, not one per row
        shop = build_shop(orders=8)
        Country.objects.create(iso_3166_1_a2="GB", printable_name="United Kingdom", name="UK", is_shipping_country=True)
    train_recommenders(AS_OF - timedelta(days=10), [ModelKind.ALSO_VIEWED])
    run = train_recommenders(AS_OF)
    assert run.counts["kinds"]["next_item"]["status"] == VersionStatus.LIVE
    yield shop
    versions.forget_loaded()


# -- the journeys --------------------------------------------------------------------------------


def test_anonymous_shopper_follows_recommendations_to_a_guest_checkout(open_page: Any, trained_shop: TrainingShop):
    page = open_page()
    page.goto("/catalogue/")
    assert block(page, "for_you").locator("h2").inner_text() == "Recommended for you"
    before = titles(page, "for_you")
    assert before and set(reasons(page, "for_you")) <= {"Popular right now", "One of our best sellers"}

    page.goto(trained_shop.products[6].get_absolute_url())
    assert block(page, "also_bought").locator("h2").inner_text() == "Customers who bought this also bought"
    assert titles(page, "also_bought")[0] == "Product 07"
    assert reasons(page, "also_bought")[0] in ("Often bought with Product 06", "Viewed together with Product 06")

    page.goto("/catalogue/")
    after = titles(page, "for_you")
    assert after != before and "Product 07" in after and "Product 06" not in after
    assert "Because you viewed Product 06" in reasons(page, "for_you")

    submit(card(page, "for_you", "Product 07").get_by_role("button", name="Add to basket"))
    page.goto("/basket/")
    assert page.locator("#basket_formset .basket-items h3").all_inner_texts() == ["Product 07"]
    assert "Product 07" not in titles(page, "for_you") + titles(page, "bought_together")

    page.get_by_role("link", name="Proceed to checkout").click()
    page.fill("#id_username", "guest@example.com")
    page.check("input[name=options][value=anonymous]")
    page.get_by_role("button", name="Continue").click()
    page.fill("#id_first_name", "Ada")
    page.fill("#id_last_name", "Lovelace")
    page.fill("#id_line1", "1 Analytical Row")
    page.fill("#id_line4", "London")
    page.fill("#id_postcode", "N1 9GU")
    page.get_by_role("button", name="Continue").click()
    # one shipping method: Oscar skips that step; the demo takes no payment (Oscar's own stub page)
    page.get_by_role("link", name="Continue").click()
    page.click("#place-order")
    page.wait_for_url("**/checkout/thank-you/")
    order = Order.objects.get(number=page.locator("p.lead strong").inner_text())
    assert order.user is None and order.guest_email == "guest@example.com"
    assert [line.product.title for line in order.lines.all()] == ["Product 07"]


def test_customer_logs_in_and_keeps_their_history(open_page: Any, trained_shop: TrainingShop):
    get_user_model().objects.create_user("ada", "ada@example.com", "pw")  # a new account: no history yet
    page = open_page()
    page.goto(trained_shop.products[12].get_absolute_url())
    log_in(page, "ada@example.com")
    page.goto(trained_shop.products[20].get_absolute_url())
    assert titles(page, "recently_viewed") == ["Product 12"]  # what they viewed before logging in
    page.goto("/catalogue/")
    assert block(page, "for_you").locator("h2").inner_text() == "Recommended for you"
    # the model reads the whole history: the pairs of both products, the one viewed before login too
    assert {"Product 13", "Product 21"} <= set(titles(page, "for_you"))
    assert "Because you viewed Product 20" in reasons(page, "for_you")


@pytest.fixture
def segmented_shop(live_server: Any, settings: Any) -> tuple[Any, str, Any]:
    """A real segmentation run over a few customers' orders; returns (member, segment, product)."""
    from segmentation import services
    from segmentation.testing import make_order

    User = get_user_model()
    with transaction.atomic():
        customers = [User.objects.create_user(f"c{i}", f"c{i}@example.com", "pw") for i in range(12)]
        for i, customer in enumerate(customers):
            for n in range(1 + i % 4):
                make_order(user=customer, total=20 + 15 * i, placed=f"2024-0{1 + (i + n) % 6}-{10 + i}")
    services.run_segmentation(date(2024, 6, 30))
    member = customers[-1]
    staff = User.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    # Oscar's offer pages need the offer permissions besides is_staff (a marketing manager's rights)
    staff.user_permissions.set(
        Permission.objects.filter(content_type__app_label="offer", codename__endswith="_conditionaloffer")
    )
    with no_search_indexing():
        teapot = make_product("Blue teapot", price="20.00")
    return member, services.current_segment(member), teapot


def test_staff_offer_for_a_segment_reaches_its_member_basket(open_page: Any, segmented_shop: tuple[Any, str, Any]):
    member, segment, teapot = segmented_shop
    staff = open_page()
    log_in(staff, "staff@example.com")
    staff.goto("/dashboard/segments/")
    assert staff.get_by_role("heading", name="Customer segments").count() >= 1
    row = (
        staff.locator("tr")
        .filter(has=staff.get_by_role("link", name=segment, exact=True))
        .filter(has=staff.locator("input[name=percent]"))
    )
    row.locator("input[name=percent]").fill("15")
    row.get_by_role("button", name="Create offer").click()
    staff.wait_for_url(re.compile(r"/dashboard/offers/\d+/"))
    assert "Created the offer" in staff.locator(".alert-success").inner_text()

    shopper = open_page()
    log_in(shopper, member.email)
    shopper.goto(teapot.get_absolute_url())
    submit(shopper.locator("#add_to_basket_form").get_by_role("button", name="Add to basket"))
    shopper.goto("/basket/")
    totals = shopper.locator("#basket_totals")
    assert "Basket total (after discounts)" in totals.inner_text()
    assert totals.locator("th.total.text-right").first.inner_text().strip() == "£17.00"
    basket = get_model("basket", "Basket").objects.get(owner=member, status="Open")
    assert basket.lines.get().product == teapot and Decimal("20.00") == teapot.stockrecords.get().price


def test_staff_roll_back_a_model_version(open_page: Any, trained_shop: TrainingShop):
    get_user_model().objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    live = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE)
    earlier = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.RETIRED)
    page = open_page()
    log_in(page, "staff@example.com")
    page.goto("/dashboard/recommendations/models/")
    assert page.get_by_role("heading", name="Recommendation models").count() >= 1
    kind_row = page.locator("#live-versions tr").filter(has_text="Customers who viewed this also viewed")
    assert kind_row.locator("td").nth(1).inner_text() == f"v{live.pk}"

    version_row = page.locator("#versions tbody tr").filter(has=page.get_by_text(f"v{earlier.pk}", exact=True))
    submit(version_row.get_by_role("button", name="Roll back to this"))
    assert kind_row.locator("td").nth(1).inner_text() == f"v{earlier.pk}"
    assert "is live" in page.locator(".alert-success").inner_text()
    live.refresh_from_db()
    assert live.status == VersionStatus.RETIRED
