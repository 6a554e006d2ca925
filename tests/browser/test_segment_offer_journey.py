"""Staff create a segment offer on the segments dashboard and its member sees the discount in
their basket, in a real browser (Chromium through Playwright, on pytest-django's live server)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from oscar.core.loading import get_model

from tests.browser.pages import log_in, submit
from tests.helpers import make_product

pytestmark = [pytest.mark.browser, pytest.mark.slow]


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
