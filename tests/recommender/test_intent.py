"""Purchase intent in the shop: trained nightly from the shop's events, scored per visitor through the
real views, acted on with an offer through the real checkout, private like the events."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse
from oscar.core.loading import get_model

from recommender.abstract_models import ModelKind, TrainingStatus, VersionStatus
from recommender.offers import create_intent_offer
from recommender.services import personal_data, versions
from recommender.services.gate import NextActionGate
from recommender.services.training import train_recommenders
from recommender.serving.intent import visitor_intent
from tests.helpers import BROWSER, add_to_basket, browser, checkout, view_product
from tests.training_shop import AS_OF, build_intent_shop, module_data

Event = get_model("recommender", "Event")
ModelVersion = get_model("recommender", "ModelVersion")

# the candidate serves as evaluated (no refit: a third less training; LIGHT runs elsewhere refit)
SETTINGS = {
    "NEXT_ITEM_MODEL": "hybrid",
    "MIN_HOLDOUT_CASES": 5,
    "INTENT_PARAMS": {"epochs": 12},
    "REFIT_AFTER_EVALUATION": False,
}


def build_and_train(tmp: str) -> list:
    products = build_intent_shop(customers=30)
    run = train_recommenders(AS_OF, kinds=[ModelKind.NEXT_ACTION])
    assert run.status == TrainingStatus.SUCCEEDED, run.error
    return products


trained = module_data(build_and_train, RECOMMENDER=SETTINGS)


@pytest.fixture
def shop(trained, db, settings):
    products, media = trained
    settings.MEDIA_ROOT = media
    settings.RECOMMENDER = SETTINGS
    versions.forget_loaded()
    yield products
    versions.forget_loaded()


def intent_of_client(client, **headers):
    """The purchase intent of a test client's visitor, as a request of that browser sees it."""
    request = RequestFactory().get("/", HTTP_USER_AGENT=BROWSER, **headers)
    request.COOKIES = {name: morsel.value for name, morsel in client.cookies.items()}
    request.user = AnonymousUser()
    return visitor_intent(request)


def test_the_nightly_run_makes_a_live_version_that_beats_both_baselines(shop, settings):
    version = ModelVersion.objects.get(kind=ModelKind.NEXT_ACTION, status=VersionStatus.LIVE)
    m = version.metrics
    assert m["candidate"]["cell"] == "lstm" and m["other_cell"]["cell"] == "gru"
    assert m["candidate"]["macro_f1"] > max(m["majority"]["macro_f1"], m["repeat_last"]["macro_f1"])
    assert set(m["candidate"]["per_class_f1"]) == {"view", "basket", "purchase", "leave"}
    assert m["n_cases"] == version.counts["held_out_cases"] >= 5
    cal = m["calibration"]
    assert 0 <= cal["brier"] < cal["brier_base_rate"] and sum(r["n"] for r in cal["reliability"]) == m["n_cases"]
    assert 0 < m["intent"]["bands"]["medium"] <= m["intent"]["bands"]["high"] < 1
    assert sum(m["intent"]["visitors_by_band"]["counts"].values()) > 0
    assert version.holdout_start == version.data_end - timedelta(days=14)
    # safetensors + JSON, never pickle
    folder = settings.MEDIA_ROOT + "/" + version.artifact_path
    import pathlib

    names = sorted(p.name for p in pathlib.Path(folder).iterdir())
    assert names == ["config.json", "items.json", "model.safetensors"]
    assert json.loads(pathlib.Path(folder, "items.json").read_text())["meta"]["bands"] == m["intent"]["bands"]


def test_the_gate_rejects_a_model_no_better_than_the_majority_action():
    metrics = {
        "n_cases": 400,
        "candidate": {"macro_f1": 0.21},
        "majority": {"macro_f1": 0.21},
        "repeat_last": {"macro_f1": 0.15},
    }
    decision = NextActionGate(min_cases=20).decide(metrics)
    assert not decision.promote and "does not beat both baselines" in decision.reason
    assert NextActionGate(min_cases=20).decide(metrics | {"candidate": {"macro_f1": 0.3}}).promote
    assert not NextActionGate(min_cases=500).decide(metrics | {"candidate": {"macro_f1": 0.3}}).promote


def test_a_visitor_with_a_basket_has_a_higher_intent_than_one_who_only_browses(shop):
    hesitating, browsing = browser(), browser()
    view_product(hesitating, shop[0])
    add_to_basket(hesitating, shop[0])
    assert hesitating.get(reverse("basket:summary")).status_code == 200
    view_product(hesitating, shop[1])
    for product in shop[2:5]:
        view_product(browsing, product)
    high, low = intent_of_client(hesitating), intent_of_client(browsing)
    assert high is not None and low is not None
    assert high.score > low.score, (high, low)
    # the band, never the probability, reaches the page and the API
    body = hesitating.get(reverse("recommender-api:intent")).json()
    assert body == {"band": high.band} and body["band"] in ("low", "medium", "high")
    assert "private" in hesitating.get(reverse("recommender-api:intent"))["Cache-Control"]


def test_no_score_without_consent_for_gpc_or_bots(shop, settings):
    visitor = browser()
    view_product(visitor, shop[0])
    add_to_basket(visitor, shop[0])
    assert intent_of_client(visitor) is not None
    assert intent_of_client(visitor, HTTP_SEC_GPC="1") is None
    assert visitor.get(reverse("recommender-api:intent"), HTTP_SEC_GPC="1").json() == {"band": None}
    request = RequestFactory().get("/", HTTP_USER_AGENT="Googlebot/2.1")
    request.COOKIES = {name: morsel.value for name, morsel in visitor.cookies.items()}
    request.user = AnonymousUser()
    assert visitor_intent(request) is None
    settings.RECOMMENDER = SETTINGS | {"REQUIRE_CONSENT": True}
    assert intent_of_client(visitor) is None


def test_the_offer_applies_to_the_hesitating_visitor_only_through_the_checkout(shop):
    hesitating, other, private = browser(), browser(), browser(sec_gpc="1")
    view_product(hesitating, shop[0])
    add_to_basket(hesitating, shop[0])
    view_product(hesitating, shop[1])
    score = intent_of_client(hesitating).score
    offer = create_intent_offer(max(score - 1e-4, 0.0), min(score + 1e-4, 1.0), percent=10)
    for product in shop[2:5]:
        view_product(other, product)
    add_to_basket(other, shop[4])
    assert not (score - 1e-4 <= intent_of_client(other).score < score + 1e-4)
    for client in (private,):  # the same behaviour without consent to tracking: no score, no offer
        view_product(client, shop[0])
        add_to_basket(client, shop[0])
        view_product(client, shop[1])

    # the offer is listed only to the visitor it applies to, under its shopper-facing name
    assert offer.name.encode() in hesitating.get(reverse("offer:list")).content
    assert offer.name.encode() not in other.get(reverse("offer:list")).content
    detail = reverse("offer:detail", kwargs={"slug": offer.slug})
    assert hesitating.get(detail).status_code == 200 and other.get(detail).status_code == 404

    placed = checkout(hesitating, guest_email="hesitating@example.com")
    assert placed.total_discount_incl_tax == D("1.00")
    assert [d.offer_id for d in placed.discounts.all()] == [offer.pk]
    for client, email in ((other, "other@example.com"), (private, "private@example.com")):
        order = checkout(client, guest_email=email)
        assert not order.discounts.exists() and order.total_discount_incl_tax == D("0.00")


def test_erasure_leaves_no_score_to_read_and_export_includes_it(shop, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    from recommender.serving.generations import generation_key
    from recommender.serving.intent import score_key
    from recommender.serving.stores import local_get
    from tests.helpers import visitor_id_of

    visitor = browser()
    view_product(visitor, shop[0])
    add_to_basket(visitor, shop[0])
    found = intent_of_client(visitor)
    vid = visitor_id_of(visitor)
    generation = cache.get(generation_key(f"v{vid}"))
    assert local_get(score_key(f"v{vid}", generation, found.version_id)) == pytest.approx(found.score)
    person = personal_data.person_for_visitor(vid)
    exported = personal_data.export(person)["purchase_intent"]
    assert exported == [
        {
            "user_id": None,
            "visitor_id": vid,
            "band": found.band,
            "probability": round(found.score, 4),
            "model_version": found.version_id,
        }
    ]
    with django_capture_on_commit_callbacks(execute=True):
        personal_data.erase(person)
    # the score kept in this process is under the erased generation: no request reads it again
    assert cache.get(generation_key(f"v{vid}")) != generation
    assert intent_of_client(visitor) is None  # no history left, no score


def test_staff_create_an_intent_offer_from_the_behaviour_page(shop, client, django_user_model):
    staff = django_user_model.objects.create_user("boss", "boss@example.com", "pw", is_staff=True)
    client.force_login(staff)
    page = client.get(reverse("segmentation_dashboard:segmentation-behaviour"))
    assert b'id="intent-offer-form"' in page.content
    url = reverse("recommender_dashboard:recommender-create-intent-offer")
    response = client.post(url, {"min_percent": "20", "max_percent": "60", "percent": "5"})
    ConditionalOffer = get_model("offer", "ConditionalOffer")
    offer = ConditionalOffer.objects.get()
    assert response["Location"] == reverse("dashboard:offer-detail", kwargs={"pk": offer.pk})
    target = offer.condition.intent_target
    assert (target.min_intent, target.max_intent) == (0.2, 0.6) and "intent" not in offer.name.lower()
    client.post(url, {"min_percent": "60", "max_percent": "20", "percent": "5"})
    assert ConditionalOffer.objects.count() == 1  # a range that ends before it starts creates nothing
    shopper = browser()
    assert shopper.post(url, {"min_percent": "1", "max_percent": "2", "percent": "5"}).status_code in (302, 403)
    assert ConditionalOffer.objects.count() == 1
