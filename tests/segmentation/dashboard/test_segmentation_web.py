"""Staff-only dashboard pages, admin and API; CSV export; nothing for shoppers to read."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.urls import reverse
from oscar.test.factories import UserFactory

from segmentation import services
from segmentation.models import CustomerSegment
from segmentation.testing import make_order
from tests.training_shop import module_data

pytestmark = pytest.mark.django_db


def _build_runs(tmp: str):
    import random

    rnd = random.Random(3)
    users = [UserFactory(email=f"p{i}@example.com") for i in range(25)]
    for u in users:
        for _ in range(rnd.randint(1, 6)):
            make_order(user=u, total=rnd.randint(5, 200), placed=f"2024-0{rnd.randint(1, 6)}-{rnd.randint(10, 28)}")
    make_order(guest_email="guest@example.com", total=20, placed="2024-06-01")
    first = services.run_segmentation(date(2024, 3, 31))
    second = services.run_segmentation(date(2024, 6, 30))
    return users, first, second


module_runs = module_data(_build_runs)


@pytest.fixture
def runs(module_runs, db):
    """25 customers and two segmentation runs, built once per module; each test rolls back."""
    return module_runs[0]


@pytest.fixture
def staff(client):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    return client


def dashboard_urls(users, run):
    m = CustomerSegment.objects.filter(run=run).first()
    return [
        reverse("segmentation_dashboard:segmentation-overview"),
        reverse("segmentation_dashboard:segmentation-segment") + f"?name={m.segment}",
        reverse("segmentation_dashboard:segmentation-segment") + "?churn=1&r=5&q=example",
        reverse("segmentation_dashboard:segmentation-customer", kwargs={"user_id": users[0].pk}),
        reverse("segmentation_dashboard:segmentation-guest") + "?email=guest@example.com",
    ]


def test_staff_sees_dashboard_pages_with_charts(staff, runs):
    users, first, second = runs
    for url in dashboard_urls(users, second):
        r = staff.get(url)
        assert r.status_code == 200, url
        nan = re.search(rb".{0,80}\bnan\b.{0,80}", r.content.lower())  # a figure, not a word such as "financial"
        assert nan is None, (url, nan and nan.group())
    page = staff.get(reverse("segmentation_dashboard:segmentation-overview")).content.decode()
    assert page.count("<svg") >= 4  # sizes, heat map, scatter, churn over runs
    assert "Movement between segments" in page
    assert staff.get(reverse("segmentation_dashboard:segmentation-overview") + f"?run={first.pk}").status_code == 200


def test_segment_csv_export(staff, runs):
    _users, _first, second = runs
    seg = next(iter(second.segment_counts))
    r = staff.get(reverse("segmentation_dashboard:segmentation-segment") + f"?name={seg}&format=csv")
    assert r.status_code == 200 and r["Content-Type"] == "text/csv"
    lines = b"".join(r.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("run,as_of,user_id")
    assert len(lines) == 1 + second.segment_counts[seg]


def test_create_offer_from_dashboard(staff, admin_client, runs):
    """The button makes an ordinary Oscar Site offer: a segment condition targeting the segment, a
    percentage benefit on the all-products range, shopper-facing texts that do not name the segment."""
    from decimal import Decimal

    from oscar.core.loading import get_model

    from segmentation.models import SegmentTarget
    from segmentation.offers import segment_condition_path

    ConditionalOffer = get_model("offer", "ConditionalOffer")
    Benefit = get_model("offer", "Benefit")
    r = staff.post(
        reverse("segmentation_dashboard:segmentation-create-offer"), {"segment": "Champions", "percent": "15"}
    )
    offer = ConditionalOffer.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("dashboard:offer-detail", kwargs={"pk": offer.pk})
    assert (offer.name, offer.description) == ("15% off, just for you", "A thank-you for shopping with us: 15% off.")
    assert offer.offer_type == ConditionalOffer.SITE and offer.exclusive and offer.is_available()
    condition, benefit = offer.condition, offer.benefit
    assert condition.proxy_class == segment_condition_path()
    targets = SegmentTarget.objects.filter(condition=condition).values_list(
        "segment", "shopper_name", "shopper_description"
    )
    assert list(targets) == [("Champions", "15% off, just for you", "A thank-you for shopping with us: 15% off.")]
    assert (benefit.type, benefit.value) == (Benefit.PERCENTAGE, Decimal("15.00"))
    assert benefit.range_id == condition.range_id
    assert condition.range.name == "All products (segment offers)" and condition.range.includes_all_products
    from django.contrib.messages import get_messages

    shown = [str(m) for m in get_messages(r.wsgi_request)]
    assert shown == ['Created the offer "15% off, just for you". Review or edit it here.']
    # Oscar's own offer page shows the condition by its segment (staff only see the segment's name)
    page = admin_client.get(r["Location"]).content.decode()
    assert "<td>Customer is in segment 'Champions'</td>" in page
    assert "<td>15.00% discount on All products (segment offers)</td>" in page


def test_non_staff_and_anonymous_are_kept_out(client, runs):
    users, _first, second = runs
    urls = [
        *dashboard_urls(users, second),
        reverse("admin:segmentation_segmentationrun_changelist"),
        reverse("admin:segmentation_customersegment_changelist"),
    ]
    api = ["/api/segmentation/runs/", "/api/segmentation/runs/current/", "/api/segmentation/memberships/"]
    for url in urls + api:
        assert client.get(url).status_code in (302, 401, 403), url
    client.force_login(users[0])  # a shopper: not even their own membership via these URLs
    for url in urls:
        assert client.get(url).status_code in (302, 403), url
    for url in api:
        assert client.get(url).status_code == 403, url
    r = client.post(reverse("segmentation_dashboard:segmentation-create-offer"), {"segment": "Champions"})
    assert r.status_code in (302, 403)
    from oscar.core.loading import get_model

    assert not get_model("offer", "ConditionalOffer").objects.exists()


def test_staff_api(staff, runs):
    users, first, second = runs
    r = staff.get("/api/segmentation/runs/")
    assert r.status_code == 200 and r.json()["count"] == 2
    cur = staff.get("/api/segmentation/runs/current/").json()
    assert cur["id"] == second.pk and cur["segments"]
    r = staff.get(f"/api/segmentation/memberships/?user={users[0].pk}")
    assert r.status_code == 200
    rows = r.json()["results"]
    assert len(rows) == 1 and rows[0]["run"] == second.pk and rows[0]["email"] == users[0].email
    both = CustomerSegment.objects.filter(run=first, user__isnull=False).first().user_id
    every = staff.get(f"/api/segmentation/memberships/?run=all&user={both}").json()["results"]
    assert {row["run"] for row in every} == {first.pk, second.pk}


def test_admin_pages_and_csv_action(admin_client, runs):
    from html import escape

    _users, first, second = runs
    r = admin_client.get(reverse("admin:segmentation_segmentationrun_changelist"))
    assert r.status_code == 200
    assert [run.pk for run in r.context["cl"].result_list] == [second.pk, first.pk]  # newest first
    page = r.content.decode()
    for run in (first, second):
        assert reverse("admin:segmentation_segmentationrun_change", args=[run.pk]) in page
    # the churn-risk filter lists exactly the members at risk (of both runs), each by their e-mail
    risky = list(CustomerSegment.objects.filter(run=first).order_by("pk").values_list("pk", flat=True)[:2])
    risky += CustomerSegment.objects.filter(run=second).order_by("-pk").values_list("pk", flat=True)[:3]
    CustomerSegment.objects.update(churn_risk=False)
    CustomerSegment.objects.filter(pk__in=risky).update(churn_risk=True)
    at_risk = CustomerSegment.objects.filter(churn_risk=True)
    r = admin_client.get(reverse("admin:segmentation_customersegment_changelist") + "?churn_risk__exact=1")
    assert r.status_code == 200
    assert sorted(m.pk for m in r.context["cl"].result_list) == sorted(risky)
    page = r.content.decode()
    for m in at_risk:
        assert escape(m.customer_label) in page
    chosen = list(CustomerSegment.objects.filter(run=second).order_by("pk")[:5])
    r = admin_client.post(
        reverse("admin:segmentation_customersegment_changelist"),
        {"action": "export_csv", "_selected_action": [m.pk for m in chosen]},
    )
    assert r.status_code == 200
    lines = b"".join(r.streaming_content).decode().splitlines()
    assert lines[0].startswith("run,as_of,user_id,email,guest_email,segment,")
    rows = sorted(line.split(",")[:6] for line in lines[1:])
    want = [
        [
            str(second.pk),
            second.as_of.isoformat(),
            str(m.user_id or ""),
            m.user.email if m.user_id else "",
            "",
            m.segment,
        ]
        for m in chosen
    ]
    assert rows == sorted(want)


def test_customer_row_for_oscars_customer_page(runs):
    from django.template import Context, Template

    _users, _first, second = runs
    m = CustomerSegment.objects.filter(run=second, user__isnull=False).first()
    html = Template("{% load segmentation_tags %}{% customer_segment_row u %}").render(Context({"u": m.user}))
    assert m.segment in html and f"/dashboard/segments/customer/{m.user_id}/" in html
