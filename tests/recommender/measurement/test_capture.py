"""Impressions, clicks, attributed orders and the A/B holdout, through the shop's real views and checkout."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client
from django.urls import reverse
from oscar.core.loading import get_model

from recommender.abstract_models import Arm, VersionStatus
from recommender.measurement.assignment import arm_of, forget_running, hashed_arm, start_experiment
from recommender.services.training import train_recommenders
from recommender.serving.blocks import Visitor
from tests.helpers import add_to_basket, browser, checkout, view_product, visitor_id_of
from tests.training_shop import AS_OF, module_shop, shop_per_test

Impression = get_model("recommender", "Impression")
Click = get_model("recommender", "Click")
AttributedLine = get_model("recommender", "AttributedLine")
Exposure = get_model("recommender", "Exposure")
Product = get_model("catalogue", "Product")
CATALOGUE = "/catalogue/"


def _train(shop) -> None:
    run = train_recommenders(AS_OF)
    assert run.counts["kinds"]["also_viewed"]["status"] == VersionStatus.LIVE


trained_shop = module_shop(_train)
shop = shop_per_test()


@pytest.fixture(autouse=True)
def _no_experiment_cached():
    forget_running()
    yield
    forget_running()


def block_links(html: str, placement: str) -> list[str]:
    """The product links of one block, in order."""
    match = re.search(rf'data-placement="{placement}">(.*?)</section>', html, re.S)
    return re.findall(r'<h3 class="mt-3"><a href="([^"]*\?rec=[^"]+)"', match.group(1)) if match else []


def _product_of(url: str):
    path = urlparse(url).path
    return next(p for p in Product.objects.all() if p.get_absolute_url() == path)


def test_each_block_a_page_shows_is_one_impression_written_in_one_insert(shop):
    client = browser()
    html = view_product(client, shop.products[6]).content.decode()
    shown = {p: block_links(html, p) for p in ("also_bought", "also_viewed")}
    rows = {i.placement: i for i in Impression.objects.all()}
    assert set(rows) == {"also_bought", "also_viewed"}  # "recently viewed" is empty on a first visit
    vid = visitor_id_of(client)
    for placement, links in shown.items():
        row = rows[placement]
        assert row.visitor_id == vid and row.user_id is None and row.arm == "" and row.experiment_id is None
        assert row.product_ids == [_product_of(url).pk for url in links]
        assert len(row.rungs) == len(links) == len(row.version_ids)


def test_a_click_through_a_link_is_recorded_once_with_its_impression_and_position(shop):
    client = browser()
    html = view_product(client, shop.products[6]).content.decode()
    url = block_links(html, "also_viewed")[1]
    impression = Impression.objects.get(placement="also_viewed")
    assert view_product(client, _product_of(url), data={}).status_code == 200  # without the token: no click
    assert not Click.objects.exists()
    client.get(url)
    client.get(url)  # a reload is the same click
    click = Click.objects.get()
    assert click.impression_id == impression.impression_id and click.position == 2
    assert click.product_id == impression.product_ids[1] and click.placement == "also_viewed"
    assert click.visitor_id == visitor_id_of(client) and click.rung == impression.rungs[1]


def test_a_token_of_another_visitor_or_moved_to_another_product_is_ignored(shop):
    alice, mallory = browser(), browser()
    html = view_product(alice, shop.products[6]).content.decode()
    url = block_links(html, "also_viewed")[0]
    view_product(mallory, shop.products[20])
    mallory.get(url)  # a copied link: the token names Alice's visitor
    token = parse_qs(urlparse(url).query)["rec"][0]
    other = next(p for p in shop.products if p.pk != _product_of(url).pk)
    alice.get(other.get_absolute_url(), {"rec": token})  # the token names another product
    alice.get(other.get_absolute_url(), {"rec": token[:-2] + "xx"})  # forged
    api = reverse("recommender-api:click")
    assert mallory.post(api, {"attribution": token, "product": _product_of(url).pk}).status_code == 204
    assert not Click.objects.exists()
    assert alice.post(api, {"attribution": token, "product": _product_of(url).pk}).status_code == 204
    assert Click.objects.get().visitor_id == visitor_id_of(alice)


def test_an_order_after_a_click_is_attributed_once_within_the_window(shop, settings):
    client = browser()
    html = view_product(client, shop.products[6]).content.decode()
    url = block_links(html, "also_viewed")[0]
    clicked = _product_of(url)
    client.get(url)
    add_to_basket(client, clicked, quantity=2)
    add_to_basket(client, shop.products[30])  # not clicked: not attributed
    order = checkout(client, guest_email="ada@example.com")
    line = order.lines.get(product=clicked)
    attributed = AttributedLine.objects.get()
    assert attributed.line_id == line.pk and attributed.quantity == 2
    assert attributed.revenue == line.line_price_incl_tax == 2 * (Decimal("5.00") + shop.products.index(clicked))
    assert attributed.placement == "also_viewed" and attributed.click == Click.objects.get()


def test_no_attribution_outside_the_window(shop, settings):
    client = browser()
    html = view_product(client, shop.products[6]).content.decode()
    url = block_links(html, "also_viewed")[0]
    client.get(url)
    Click.objects.update(created=Click.objects.get().created - timedelta(hours=25))
    add_to_basket(client, _product_of(url))
    checkout(client, guest_email="ada@example.com")
    assert not AttributedLine.objects.exists()


def test_bots_and_gpc_record_nothing(shop):
    view_product(browser(**{"Sec-GPC": "1"}), shop.products[6])
    view_product(Client(HTTP_USER_AGENT="Googlebot/2.1"), shop.products[6])
    assert not Impression.objects.exists()


def _visitor_in(arm: str, salt: str, share: float) -> str:
    return next(v for n in range(1, 10_000) if hashed_arm(salt, f"v{(v := f'{n:032x}')}", share) == arm)


def test_control_sees_best_sellers_in_the_same_blocks_and_the_arm_is_stored(shop, settings):
    experiment = start_experiment("first test", control_share=0.5)
    seen = {}
    for arm in (Arm.CONTROL, Arm.TREATMENT):
        client = browser()
        view_product(client, shop.products[39])  # an event: the visitor has an id
        while arm_of(Visitor(None, visitor_id_of(client)))[1] != arm:  # draw visitors until one is in the arm
            client = browser()
            view_product(client, shop.products[39])
        html = view_product(client, shop.products[6]).content.decode()
        seen[arm] = set(re.findall(r'data-rung="([^"]+)"', html))
        impressions = Impression.objects.filter(visitor_id=visitor_id_of(client), placement="also_viewed")
        assert impressions and {i.arm for i in impressions} == {arm} and impressions[0].experiment == experiment
        assert Exposure.objects.get(experiment=experiment, person=f"v{visitor_id_of(client)}").arm == arm
    # the same blocks; in the control the model blocks hold best sellers ("recently viewed" is the
    # visitor's own history in both arms)
    assert seen[Arm.CONTROL] == {"best_sellers", "recently_viewed"}
    assert {"also_viewed", "also_bought"} & seen[Arm.TREATMENT] and "best_sellers" not in seen[Arm.TREATMENT]


def test_a_persons_exposure_is_written_once_with_their_first_page(shop):
    """The exposure travels with a page's impressions; later pages, in this process or after it
    forgot writing it (another process), leave the first row as it was."""
    from recommender.serving.stores import forget_local

    experiment = start_experiment("exposure test", control_share=0.5)
    client = browser()
    view_product(client, shop.products[6])
    view_product(client, shop.products[7])
    person = f"v{visitor_id_of(client)}"
    first = Exposure.objects.get(experiment=experiment, person=person)
    Exposure.objects.filter(pk=first.pk).update(orders=2)  # as if they had ordered since
    forget_local()
    view_product(client, shop.products[8])
    assert Impression.objects.filter(visitor_id=visitor_id_of(client)).values("created").distinct().count() >= 3
    again = Exposure.objects.get(experiment=experiment, person=person)
    assert (again.pk, again.first_seen, again.arm, again.orders) == (first.pk, first.first_seen, first.arm, 2)
    assert again.arm == hashed_arm(experiment.salt, person, 0.5)


def test_the_arm_is_stable_across_requests_and_login(shop, django_user_model):
    experiment = start_experiment("login test", control_share=0.5)
    user = django_user_model.objects.create_user("newbie", "newbie@example.com", "pw")
    for _attempt in range(50):  # a visitor whose arm differs from the account's own draw
        client = browser()
        view_product(client, shop.products[6])
        vid = visitor_id_of(client)
        if hashed_arm(experiment.salt, f"v{vid}", 0.5) != hashed_arm(experiment.salt, f"u{user.pk}", 0.5):
            break
    arm = hashed_arm(experiment.salt, f"v{vid}", 0.5)
    for product in shop.products[7:10]:
        view_product(client, product)
    assert {i.arm for i in Impression.objects.filter(visitor_id=vid)} == {arm}
    login = {"login-username": "newbie@example.com", "login-password": "pw", "login_submit": "1"}
    assert client.post(reverse("customer:login"), login).status_code == 302
    view_product(client, shop.products[11])
    assert {i.arm for i in Impression.objects.filter(user=user)} == {arm}  # the visit's arm, carried over
    assert Exposure.objects.get(experiment=experiment, person=f"u{user.pk}").arm == arm


def test_measurement_settings_are_checked(settings):
    from recommender.measurement.checks import check_measurement_settings

    assert check_measurement_settings() == []
    bad = {"ATTRIBUTION_WINDOW": "sesion", "EXPERIMENT_CONTROL_SHARE": 0.9, "IMPRESSIONS_WRITER": "queue"}
    settings.RECOMMENDER = bad
    errors = ["recommender.E024", "recommender.E026", "recommender.E025"]
    assert [e.id for e in check_measurement_settings()] == errors
    settings.RECOMMENDER = {"ATTRIBUTION_WINDOW": "session"}
    assert check_measurement_settings() == []


def test_export_holds_and_erasure_removes_what_was_measured(shop, django_capture_on_commit_callbacks):
    from recommender.services.personal_data import erase, export, person_for_email

    experiment = start_experiment("privacy", control_share=0.5)
    client = browser()
    html = view_product(client, shop.products[6]).content.decode()
    url = block_links(html, "also_viewed")[0] or block_links(html, "also_bought")[0]
    client.get(url)
    add_to_basket(client, _product_of(url))
    checkout(client, guest_email="eve@example.com")
    bystander = browser()
    view_product(bystander, shop.products[8])
    person = person_for_email("eve@example.com")
    data = export(person)["measurement"]
    assert len(data["click"]) == 1 and len(data["attributedline"]) == 1 and data["exposure"][0]["orders"] == 1
    assert {i["impression_id"] for i in data["impression"]} >= {data["click"][0]["impression_id"]}
    with django_capture_on_commit_callbacks(execute=True):
        counts = erase(person)
    assert counts["clicks"] == 1 and counts["attributed_lines"] == 1 and counts["experiment_exposures"] == 1
    assert not Click.objects.exists() and not AttributedLine.objects.exists()
    assert set(Impression.objects.values_list("visitor_id", flat=True)) == {visitor_id_of(bystander)}
    assert list(Exposure.objects.filter(experiment=experiment).values_list("person", flat=True)) == [
        f"v{visitor_id_of(bystander)}"
    ]
