"""Shoppers and staff on a trained shop, in a real browser (Chromium through Playwright).

An anonymous shopper browses, sees the blocks follow them, adds a recommended product and checks
out as a guest; a customer logs in and keeps the history of their anonymous visit; staff roll a
model back on the models page. The three share one trained shop, built and committed once for the
module and served by the module's own live server (what the pages write, such as the guest's
order, is committed and stays until the module ends, which flushes the database). Each journey
uses its own products and people; the rollback, which changes a live version, comes last.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from oscar.core.loading import get_model

from recommender.abstract_models import ModelKind, VersionStatus
from recommender.services import versions
from recommender.services.training import train_recommenders
from tests.browser.conftest import module_live_server
from tests.browser.pages import block, card, log_in, reasons, submit, titles
from tests.training_shop import AS_OF, LIGHT, TrainingShop, build_shop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ModelVersion = get_model("recommender", "ModelVersion")
Order = get_model("order", "Order")
Country = get_model("address", "Country")
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def served_shop(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[Any]:
    """``(shop, media root, url)``: the training shop with every kind trained as of ``AS_OF`` and an
    earlier "also viewed" version, a new customer and a staff member, committed and served; flushed
    away when the module is done."""
    media = str(tmp_path_factory.mktemp("media"))
    with (
        django_db_blocker.unblock(),
        override_settings(MEDIA_ROOT=media, RECOMMENDER=LIGHT, PASSWORD_HASHERS=FAST_HASHER),
    ):
        versions.forget_loaded()
        with transaction.atomic():  # one commit, not one per row
            shop = build_shop(orders=8)
            Country.objects.create(
                iso_3166_1_a2="GB", printable_name="United Kingdom", name="UK", is_shipping_country=True
            )
            User = get_user_model()
            User.objects.create_user("ada", "ada@example.com", "pw")  # a new account: no history yet
            User.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
        train_recommenders(AS_OF - timedelta(days=10), [ModelKind.ALSO_VIEWED])
        run = train_recommenders(AS_OF)
        assert run.counts["kinds"]["next_item"]["status"] == VersionStatus.LIVE
    try:
        with module_live_server() as url:
            yield shop, media, url
    finally:
        versions.forget_loaded()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def server_url(served_shop: Any) -> str:
    return served_shop[2]


@pytest.fixture
def trained_shop(served_shop: Any, db: Any, settings: Any) -> TrainingShop:
    """The served shop (the test's own transaction reads what the server commits)."""
    shop, media, _url = served_shop
    settings.MEDIA_ROOT = media
    settings.RECOMMENDER = LIGHT
    return shop


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


def test_staff_roll_back_a_model_version(open_page: Any, trained_shop: TrainingShop):
    live = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.LIVE)
    earlier = ModelVersion.objects.get(kind=ModelKind.ALSO_VIEWED, status=VersionStatus.RETIRED)
    page = open_page()
    log_in(page, "staff@example.com")
    page.goto("/dashboard/recommendations/models/")
    assert page.get_by_role("heading", name="Recommendation models").count() >= 1
    kind_row = page.locator("#live-versions tr").filter(has_text="Customers who viewed this also viewed")
    assert kind_row.locator("td").nth(1).inner_text() == f"v{live.pk}"

    version_row = page.locator("#versions tbody tr").filter(has=page.get_by_text(f"v{earlier.pk}", exact=True))
    submit(version_row.get_by_role("link", name="Roll back to this…"))
    # a page says what changes and asks for the box to be ticked (the server refuses a POST without it)
    assert f"instead of v{live.pk}" in page.locator("#what-changes").inner_text()
    page.get_by_label("I understand that this changes the recommendations every shopper sees").check()
    submit(page.get_by_role("button", name="Roll back to this version"))
    assert kind_row.locator("td").nth(1).inner_text() == f"v{earlier.pk}"
    assert "is live" in page.locator(".alert-success").inner_text()
    live.refresh_from_db()
    assert live.status == VersionStatus.RETIRED
