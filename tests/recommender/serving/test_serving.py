"""Shoppers see recommendations: blocks through Oscar's real views, the API, the rules and fallbacks."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from oscar.core.loading import get_model

from recommender.abstract_models import ModelKind, VersionStatus
from recommender.artifacts import ArtifactError
from recommender.services import versions
from recommender.services.training import train_recommenders
from recommender.serving import service as serving
from recommender.serving.blocks import Visitor, visitor_of
from recommender.serving.generations import bump_catalogue_generation
from tests.helpers import (
    BROWSER,
    add_to_basket,
    browser,
    reset_throttle_counts,
    throttle_rates,
    view_product,
    visitor_id_of,
)
from tests.training_shop import AS_OF, LIGHT, module_shop, shop_per_test

Product = get_model("catalogue", "Product")
ModelVersion = get_model("recommender", "ModelVersion")
StockRecord = get_model("partner", "StockRecord")
CATALOGUE = "/catalogue/"


def _train(shop) -> None:
    run = train_recommenders(AS_OF)
    assert run.counts["kinds"]["next_item"]["status"] == VersionStatus.LIVE


trained_shop = module_shop(_train)


shop = shop_per_test()


def block_titles(html: str, placement: str) -> list[str]:
    """Product titles shown in one block of a page, in order."""
    match = re.search(rf'data-placement="{placement}">(.*?)</section>', html, re.S)
    if not match:
        return []
    return re.findall(r'<h3 class="mt-3"><a href="[^"]*\?rec=[^"]+" title="([^"]+)"', match.group(1))


def test_for_you_follows_what_the_visitor_just_viewed(shop):
    client = browser()
    view_product(client, shop.products[6])
    first = block_titles(client.get(CATALOGUE).content.decode(), "for_you")
    assert "Product 07" in first
    view_product(client, shop.products[12])
    second = block_titles(client.get(CATALOGUE).content.decode(), "for_you")
    assert second != first and "Product 13" in second[:2]
    reasons = re.findall(r"recommendation-reason[^>]*>([^<]+)<", client.get(CATALOGUE).content.decode())
    assert "Because you viewed Product 12" in reasons
    # the title in the reason is shared by everyone until the product changes
    renamed = shop.products[12]
    renamed.title = "Product 12, renamed"
    renamed.save()
    view_product(client, shop.products[12])
    reasons = re.findall(r"recommendation-reason[^>]*>([^<]+)<", client.get(CATALOGUE).content.decode())
    assert "Because you viewed Product 12, renamed" in reasons


def block_rungs(html: str, placement: str) -> list[str]:
    """The ladder rung of each product of one block of a page, in order."""
    match = re.search(rf'data-placement="{placement}">(.*?)</section>', html, re.S)
    return re.findall(r'data-rung="([^"]+)"', match.group(1)) if match else []


def test_a_new_visitor_sees_trending_and_best_sellers(shop):
    html = browser().get(CATALOGUE).content.decode()
    # nothing is known of a new visitor: "for you" shows the live trending model's top four, and
    # "Trending now" below it the next four (one page never shows a product twice)
    trending = versions.load(versions.live_version(ModelKind.TRENDING))
    ranking = [trending.product_ids[i] for i in np.argsort(-trending.model.scores_, kind="stable")[:8]]
    titles = [Product.objects.get(pk=pk).get_title() for pk in ranking]
    assert block_titles(html, "for_you") == titles[:4]
    assert block_titles(html, "trending") == titles[4:]
    assert block_rungs(html, "for_you") == block_rungs(html, "trending") == ["trending"] * 4
    block = serving.recommend(None, "for_you", visitor=Visitor(None, ""), strategy=_strategy())
    assert block.items and {i.rung for i in block.items} <= {"trending", "best_sellers"}


def _strategy():
    from oscar.apps.partner.strategy import Default

    return Default()


def test_product_page_blocks_never_show_the_product_nor_the_basket(shop):
    client = browser()
    product, pair = shop.products[6], shop.products[7]
    html = view_product(client, product).content.decode()
    also_bought, also_viewed = block_titles(html, "also_bought"), block_titles(html, "also_viewed")
    assert also_bought[0] == "Product 07" and "Product 06" not in also_bought + also_viewed
    assert not set(also_bought) & set(also_viewed)  # one page never shows a product twice
    add_to_basket(client, pair)
    html = view_product(client, product).content.decode()
    for placement in ("also_bought", "also_viewed", "recently_viewed"):
        assert "Product 07" not in block_titles(html, placement)
        assert "Product 06" not in block_titles(html, placement)
    basket = client.get(reverse("basket:summary")).content.decode()
    assert "Product 07" not in block_titles(basket, "bought_together") + block_titles(basket, "for_you")


def test_out_of_stock_hidden_and_buried_products_never_appear(shop):
    from recommender.models import Bury

    client = browser()
    view_product(client, shop.products[6])
    StockRecord.objects.filter(product=shop.products[7]).update(num_in_stock=0)
    Product.objects.filter(pk=shop.products[13].pk).update(is_public=False)
    Bury.objects.create(product=shop.products[15])
    for product in (shop.products[12], shop.products[14]):
        view_product(client, product)
    pages = [client.get(CATALOGUE).content.decode(), view_product(client, shop.products[6]).content.decode()]
    shown = {t for html in pages for p in serving.placements() for t in block_titles(html, p)}
    assert shown and not shown & {"Product 07", "Product 13", "Product 15"}


def test_a_block_fills_up_when_its_first_candidates_cannot_be_bought(shop):
    """Candidates are judged a chunk at a time (stock and price are fetched for few products): when
    the whole first chunk is out of stock, the next chunks fill the block, in ladder order."""
    visitor, strategy = Visitor(None, ""), _strategy()
    ranked = serving.recommend(None, "trending", visitor=visitor, strategy=strategy, limit=12, load_products=False)
    ranked_ids = [item.product_id for item in ranked.items]
    assert len(ranked_ids) == 12
    StockRecord.objects.filter(product_id__in=ranked_ids[:8]).update(num_in_stock=0)
    bump_catalogue_generation()  # (a queryset update sends no signal)
    block = serving.recommend(None, "trending", visitor=visitor, strategy=strategy, limit=4, load_products=False)
    assert [item.product_id for item in block.items] == ranked_ids[8:12]


def test_curated_recommendations_rank_first_on_product_pages(shop):
    ProductRecommendation = get_model("catalogue", "ProductRecommendation")
    ProductRecommendation.objects.create(primary=shop.products[6], recommendation=shop.products[30], ranking=5)
    html = view_product(browser(), shop.products[6]).content.decode()
    assert block_titles(html, "also_bought")[0] == "Product 30"
    assert "Recommended by our staff" in html


def _categorise(products, names):
    """Product ``i`` goes into category ``names[i % len(names)]``."""
    Category = get_model("catalogue", "Category")
    ProductCategory = get_model("catalogue", "ProductCategory")
    categories = [Category.add_root(name=name) for name in names]
    ProductCategory.objects.bulk_create(
        ProductCategory(product=p, category=categories[i % len(categories)]) for i, p in enumerate(products)
    )
    bump_catalogue_generation()


def test_at_most_n_products_of_one_category_while_the_candidates_allow_it(shop, settings):
    _categorise(shop.products, ["Mugs", "Plates", "Cups"])
    settings.RECOMMENDER = {**LIGHT, "MAX_PER_CATEGORY": 2}
    block = serving.recommend(None, "trending", visitor=Visitor(None, ""), strategy=_strategy(), limit=6)
    categories = [shop.products.index(Product.objects.get(pk=i.product_id)) % 3 for i in block.items]
    assert sorted(categories) == [0, 0, 1, 1, 2, 2]


def _one_category_catalogue(shop, n_products=3000):
    """The shop's products and enough others to make ``n_products``, all in one category, buyable."""
    from oscar.test.factories import create_product

    template = create_product(title="Filler template", price=5, num_in_stock=10)
    record = template.stockrecords.get()
    fillers = Product.objects.bulk_create(
        Product(
            title=f"Filler {i:04d}", slug=f"filler-{i}", product_class=template.product_class, structure="standalone"
        )
        for i in range(n_products - len(shop.products) - 1)
    )
    StockRecord.objects.bulk_create(
        StockRecord(product=p, partner=record.partner, partner_sku=f"F{p.pk}", price=5, num_in_stock=10)
        for p in fillers
    )
    _categorise([*shop.products, template, *fillers], ["Everything"])
    assert Product.objects.count() == n_products


def test_blocks_fill_up_in_a_one_category_catalogue(shop):
    """3,000 products in one category, MAX_PER_CATEGORY at its default (3): every block still holds
    what was asked for: 8 from the service, 4 in the page's 4-wide rows, 10 from the API."""
    _one_category_catalogue(shop)
    visitor, product = Visitor(None, ""), shop.products[6]
    for placement in ("also_bought", "also_viewed", "bought_together", "trending", "for_you"):
        block = serving.recommend(None, placement, product=product, visitor=visitor, strategy=_strategy(), limit=8)
        assert len(block.items) == 8, placement
    client = browser()
    html = view_product(client, product).content.decode()
    assert len(block_titles(html, "also_bought")) == len(block_titles(html, "also_viewed")) == 4
    assert block_titles(html, "also_bought")[0] == "Product 07"
    url = reverse("recommender-api:recommendations", kwargs={"placement": "also_viewed"})
    assert len(client.get(url, {"product": product.pk, "limit": 10}).json()["results"]) == 10


def test_the_baskets_bought_together_is_anchored_on_the_basket(shop):
    """The basket page's "Frequently bought together" shows what is bought with the basket's products;
    two baskets of other products each see their own, through one shared cache."""
    first, second = browser(), browser()
    add_to_basket(first, shop.products[6])
    add_to_basket(second, shop.products[12])
    for client, pair in ((first, "Product 07"), (second, "Product 13"), (first, "Product 07")):
        html = client.get(reverse("basket:summary")).content.decode()
        assert block_titles(html, "bought_together")[0] == pair
    assert "Often bought with Product 06" in first.get(reverse("basket:summary")).content.decode()
    block = serving.recommend(
        None,
        "bought_together",
        visitor=Visitor(None, ""),
        strategy=_strategy(),
        basket_ids={shop.products[6].pk},
    )
    assert block.items[0].rung == "bought_together" and block.items[0].product_id == shop.products[7].pk
    # on a product page the page's product and the basket's both anchor it
    add_to_basket(first, shop.products[20])
    block = serving.recommend(
        None,
        "bought_together",
        product=shop.products[20],
        visitor=Visitor(None, ""),
        strategy=_strategy(),
        basket_ids={shop.products[6].pk},
    )
    assert {i.product_id for i in block.items[:2]} == {shop.products[7].pk, shop.products[21].pk}


def test_the_staff_preview_is_the_customers_own_block(shop, client, django_user_model):
    """Staff see what the customer sees, with the same exclusions: what they bought is left out."""
    from recommender.services import preview

    customer = shop.users[3]  # bought Product 06 and 07
    client.force_login(customer)
    url = reverse("recommender-api:recommendations", kwargs={"placement": "for_you"})
    shopper = [r["id"] for r in client.get(url, {"limit": 5}, HTTP_USER_AGENT=BROWSER).json()["results"]]
    staff_view = preview.for_customer(customer, k=5)
    assert [i.product_id for i in staff_view.items] == shopper and len(shopper) == 5
    assert not {shop.products[6].pk, shop.products[7].pk} & set(shopper)
    staff = django_user_model.objects.create_user("boss", "boss@example.com", "pw", is_staff=True)
    client.force_login(staff)
    preview_url = reverse("recommender-api:preview", kwargs={"user_id": customer.pk, "placement": "for_you"})
    assert [r["id"] for r in client.get(preview_url, {"limit": 5}).json()["results"]] == shopper


def test_bots_get_blocks_that_are_not_personal(shop):
    """A crawler records nothing and sees the blocks every new visitor sees."""
    Event = get_model("recommender", "Event")
    before = Event.objects.count()
    bot = Client(HTTP_USER_AGENT="python-requests/2.32")
    html = view_product(bot, shop.products[6]).content.decode()
    assert block_titles(html, "also_bought")[0] == "Product 07"
    catalogue = bot.get(CATALOGUE).content.decode()
    assert block_titles(catalogue, "for_you") and "Because you viewed" not in catalogue
    assert Event.objects.count() == before


def test_a_damaged_model_file_gives_the_fallback_not_a_500(shop, settings, caplog):
    version = ModelVersion.objects.get(kind=ModelKind.NEXT_ITEM, status=VersionStatus.LIVE)
    path = f"{settings.MEDIA_ROOT}/{version.artifact_path}/model.safetensors"
    with open(path, "rb") as fh:
        intact = fh.read()
    try:
        with open(path, "r+b") as fh:
            fh.truncate(10)
        versions.forget_loaded()
        client = browser()
        view_product(client, shop.products[6])
        response = client.get(CATALOGUE)
        with CaptureQueriesContext(connection) as again:  # later pages do not look the version up again
            for _page in range(3):
                with pytest.raises(ArtifactError):
                    versions.live_model(ModelKind.NEXT_ITEM)
    finally:  # the file is shared by the module's tests
        with open(path, "wb") as fh:
            fh.write(intact)
    assert response.status_code == 200
    rungs = re.findall(r'data-rung="(\w+)"', response.content.decode())
    assert rungs and "model" not in rungs  # item-to-item, trending, best sellers instead
    assert "rung model failed" in caplog.text
    assert not [q["sql"] for q in again.captured_queries if '"recommender_modelversion"."id" =' in q["sql"]]


def test_two_visitors_never_see_each_others_history(shop, monkeypatch, django_user_model):
    """200 alternating requests of an anonymous visitor and a signed-in segment member: any leak
    through a cache, a cookie or a segment would show the other's products, reasons or offer."""
    from segmentation.offers import create_segment_offer
    from tests.segmentation.test_segmentation_offers import make_member

    throttle_rates(monkeypatch, recommendations="10000/min", recommendations_address="10000/min")
    bob_user = django_user_model.objects.create_user("bob", "bob@example.com", "pw")
    make_member(bob_user, "At risk")
    create_segment_offer(["At risk"], percent=10, shopper_name="A secret deal for Bob")
    alice, bob = browser(), browser()
    bob.force_login(bob_user)
    mine = {"a": {6, 7, 8}, "b": {20, 21, 22}}
    for i in mine["a"]:
        view_product(alice, shop.products[i])
    for i in mine["b"]:
        view_product(bob, shop.products[i])
    titles = {k: {f"Product {i:02d}" for i in v} for k, v in mine.items()}
    # mostly the exact "recently viewed"; every 8th request "for you", every 8th "trending" (reasons)
    placements = ("recently_viewed",) * 3 + ("for_you",) + ("recently_viewed",) * 3 + ("trending",)
    urls = {p: reverse("recommender-api:recommendations", kwargs={"placement": p}) for p in set(placements)}
    for n in range(100):
        for who, client in (("a", alice), ("b", bob)):
            other = titles["b" if who == "a" else "a"]
            placement = placements[n % len(placements)]
            data = client.get(urls[placement], {"limit": 10 if placement == "recently_viewed" else 4}).json()
            got = {r["title"] for r in data["results"]}
            viewed = {r["reason"].removeprefix("Because you viewed ") for r in data["results"]}
            sources = {r["source"] for r in data["results"]}
            assert not viewed & other and not (who == "a" and "trending_segment" in sources), (n, who, viewed)
            assert placement != "recently_viewed" or got == titles[who], (n, who, got)
            if n in (0, 99):  # the segment's offer: only for its member, never under the segment's name
                page = client.get("/offers/").content.decode() + client.get(CATALOGUE).content.decode()
                assert ("A secret deal for Bob" in page) is (who == "b") and "At risk" not in page, (n, who)


def test_login_keeps_the_visitors_history(shop):
    client = browser()
    view_product(client, shop.products[6])
    user = shop.users[10]
    client.post(reverse("customer:login"), {"login-username": user.email, "login-password": "pw", "login_submit": "1"})
    html = client.get(CATALOGUE).content.decode()
    assert user.is_authenticated and "Product 07" in block_titles(html, "for_you")
    recent = client.get(reverse("recommender-api:recommendations", kwargs={"placement": "recently_viewed"})).json()
    assert "Product 06" in [r["title"] for r in recent["results"]]


def test_api_returns_priced_products_with_reasons_and_attribution(shop):
    client = browser()
    view_product(client, shop.products[6])
    url = reverse("recommender-api:recommendations", kwargs={"placement": "also_viewed"})
    data = client.get(url, {"product": shop.products[6].pk, "limit": 3}).json()
    assert data["placement"] == "also_viewed" and len(data["results"]) == 3
    first = data["results"][0]
    assert first["title"] == "Product 07" and first["price"] == "12.00" and first["currency"] == "GBP"
    assert first["reason"] == "Viewed together with Product 06" and first["source"] == "also_viewed"
    assert first["url"].startswith("http://testserver/") and "?rec=" in first["url"]
    visitor = visitor_of(_request_with_cookies(client))
    token = serving.read_click_token(first["attribution"], visitor)
    assert len(token.pop("m")) == 32  # the impression's id
    assert token == {
        "p": "also_viewed",
        "v": first["model_version"],
        "i": 1,
        "r": "also_viewed",
        "o": first["id"],
        "w": visitor.digest,
    }
    assert serving.read_click_token(first["attribution"], Visitor(None, "f" * 32)) is None  # not another's
    assert client.get(reverse("recommender-api:recommendations", kwargs={"placement": "nope"})).status_code == 404
    assert client.get(url, {"limit": "x"}).status_code == 400
    assert client.get(url, {"product": 10**9}).status_code == 404


def _request_with_cookies(client):
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.COOKIES.update({k: v.value for k, v in client.cookies.items()})
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    return request


def test_staff_preview_is_for_staff_only(shop, client, django_user_model):
    user = shop.users[3]
    url = reverse("recommender-api:preview", kwargs={"user_id": user.pk, "placement": "for_you"})
    assert client.get(url).status_code in (401, 403)
    client.force_login(user)
    assert client.get(url).status_code == 403
    staff = django_user_model.objects.create_user("boss", "boss@example.com", "pw", is_staff=True)
    client.force_login(staff)
    data = client.get(url).json()
    assert data["results"] and data["results"][0]["source"] == "model"


def test_openapi_schema_covers_both_apps_and_validates(db, tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/recommendations/{placement}/" in text and "/api/segmentation/runs/" in text


def test_the_served_schema_lists_staff_operations_to_staff_only(db, client, django_user_model):
    anonymous = browser().get("/api/schema/", {"format": "json"}).json()["paths"]
    assert "/api/recommendations/{placement}/" in anonymous
    assert not [p for p in anonymous if "preview" in p or p.startswith("/api/segmentation/")]
    client.force_login(django_user_model.objects.create_user("boss", "b@example.com", "pw", is_staff=True))
    staff = client.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert "/api/recommendations/preview/{user_id}/{placement}/" in staff and "/api/segmentation/runs/" in staff


def _event_reads(queries: list[dict]) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("SELECT") and 'FROM "recommender_event"' in q["sql"]]


def test_product_page_blocks_add_at_most_one_query_once_warm(shop, settings):
    """Warm product pages with their three blocks against the same pages with serving switched off."""
    client = browser()
    for product in shop.products[6:9]:  # warm: the visitor's history, the shared lists, facts and cards
        view_product(client, product)
        view_product(client, product)
    counts, impressions = {}, {}
    for enabled in (False, True):
        settings.RECOMMENDER = {**LIGHT, "SERVING_ENABLED": enabled}
        with CaptureQueriesContext(connection) as queries:
            assert view_product(client, shop.products[7 + enabled]).status_code == 200
        # the blocks shown are written in one insert (in its savepoint: the test runs in a transaction)
        writes = [q["sql"] for q in queries if 'INTO "recommender_impression"' in q["sql"]]
        impressions[enabled] = len(writes)
        counts[enabled] = len([q for q in queries if "SAVEPOINT" not in q["sql"]]) - len(writes)
    assert impressions == {False: 0, True: 1}
    assert counts[True] <= counts[False] + 1, counts


def test_the_page_after_a_view_reads_the_history_from_the_cache(shop):
    client = browser()
    view_product(client, shop.products[6])
    client.get(CATALOGUE)  # the history is read once and cached under the visitor's generation
    for product, shown in ((16, ["Product 06"]), (20, ["Product 16", "Product 06"])):
        with CaptureQueriesContext(connection) as queries:
            html = view_product(client, shop.products[product]).content.decode()
        assert _event_reads(queries.captured_queries) == []  # the view was added to the cached history
        assert block_titles(html, "recently_viewed") == shown
    # a view that may be a replay (the client's X-Request-ID) is not added: the history is read again
    with CaptureQueriesContext(connection) as queries:
        for _ in range(2):
            view_product(client, shop.products[18], HTTP_X_REQUEST_ID="retry-1")
        html = view_product(client, shop.products[22]).content.decode()
    assert len(_event_reads(queries.captured_queries)) == 2  # each replay's own page
    assert block_titles(html, "recently_viewed") == ["Product 18", "Product 20", "Product 16", "Product 06"]


def test_a_new_event_invalidates_the_cached_block(shop):
    client = browser()
    view_product(client, shop.products[6])
    before = block_titles(client.get(CATALOGUE).content.decode(), "recently_viewed")
    view_product(client, shop.products[16])
    html = view_product(client, shop.products[18]).content.decode()
    assert "Product 16" in block_titles(html, "recently_viewed") and before != block_titles(html, "recently_viewed")


def test_the_model_is_reloaded_after_a_promotion(shop):
    client = browser()
    view_product(client, shop.products[6])
    live = ModelVersion.objects.get(kind=ModelKind.NEXT_ITEM, status=VersionStatus.LIVE)
    versions.retire(live)
    rungs = re.findall(r'data-rung="(\w+)"', client.get(CATALOGUE).content.decode())
    assert "model" not in rungs
    versions.promote(live)
    assert "model" in re.findall(r'data-rung="(\w+)"', client.get(CATALOGUE).content.decode())


def test_anonymous_api_callers_are_throttled(shop, monkeypatch):
    throttle_rates(monkeypatch, recommendations="3/min")
    client = browser()
    url = reverse("recommender-api:recommendations", kwargs={"placement": "trending"})
    # the first call, without a visitor cookie, counts under the address; its response gives the
    # caller a visitor id (its blocks are measured), whose own count starts with the second call
    assert [client.get(url).status_code for _ in range(5)] == [200, 200, 200, 200, 429]
    if hasattr(cache, "keys"):  # Redis: the count is kept under a keyed hash, never the raw IP
        keys = cache.keys("throttle_recommendations_*")
        assert keys and not any("127.0.0.1" in k for k in keys)


def test_a_forged_forwarded_for_header_does_not_escape_the_throttle(shop, monkeypatch, settings):
    """Each call claims another X-Forwarded-For address: the count is the address Django sees, unless
    the shop declares its proxies (DRF's NUM_PROXIES); a fresh visitor per call meets the address cap."""
    throttle_rates(monkeypatch, recommendations="3/min", recommendations_address="5/min")
    url = reverse("recommender-api:recommendations", kwargs={"placement": "trending"})
    spoofed = [browser().get(url, HTTP_X_FORWARDED_FOR=f"10.0.{n}.1").status_code for n in range(20)]
    assert spoofed == [200] * 3 + [429] * 17  # clients without a visitor cookie count as their address
    reset_throttle_counts()
    visitors = [browser() for _ in range(4)]
    for client in visitors:
        view_product(client, shop.products[1])  # each gets its own visitor cookie
    calls = [client.get(url).status_code for client in visitors for _ in range(2)]
    assert calls.count(200) == 5 and calls[-1] == 429  # each visitor may call 3 times, the address 5
    reset_throttle_counts()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}  # behind one declared proxy
    forwarded = [browser().get(url, HTTP_X_FORWARDED_FOR=f"10.0.{n}.1").status_code for n in range(20)]
    assert forwarded == [200] * 20


def _block_html(html: str, placement: str) -> str:
    match = re.search(rf'data-placement="{placement}">(.*?)</section>', html, re.S)
    return match.group(1) if match else ""


def _titles(block_html: str) -> list[str]:
    return re.findall(r'<h3 class="mt-3"><a href="[^"]*" title="([^"]+)"', block_html)


def test_cached_cards_carry_each_visitors_own_token_and_csrf(shop):
    """A card rendered for one visitor is reused for the next, with the second visitor's link
    tokens and CSRF token: the basket form of a cached card works for them."""
    from django.test import Client

    from tests.helpers import BROWSER

    alice = browser()
    bob = Client(HTTP_USER_AGENT=BROWSER, enforce_csrf_checks=True)
    first = _block_html(view_product(alice, shop.products[6]).content.decode(), "also_bought")
    second = _block_html(view_product(bob, shop.products[6]).content.decode(), "also_bought")
    assert first and _titles(first) == _titles(second)  # one shared list, one set of cached cards
    tokens = {html: set(re.findall(r"\?rec=([^\"&]+)", html)) for html in (first, second)}
    assert tokens[first] and tokens[second] and not tokens[first] & tokens[second]
    assert "__recommender_" not in first + second
    bob_visitor = Visitor(None, visitor_id_of(bob))
    assert all(serving.read_click_token(t, bob_visitor) for t in tokens[second])
    action, csrf = re.search(
        r'<form action="([^"]+)" method="post">\s*<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)"',
        second,
    ).groups()
    response = bob.post(action, {"csrfmiddlewaretoken": csrf, "quantity": 1})
    assert response.status_code == 302
    assert bob.get(reverse("basket:summary")).context["basket"].num_lines == 1


def test_a_saved_stock_change_reaches_cached_blocks_at_once(shop):
    client = browser()
    shown = block_titles(view_product(client, shop.products[6]).content.decode(), "also_bought")
    gone = Product.objects.get(title=shown[0])
    record = StockRecord.objects.get(product=gone)
    record.num_in_stock = 0
    record.save()
    html = view_product(browser(), shop.products[6]).content.decode()
    assert block_titles(html, "also_bought") and gone.title not in block_titles(html, "also_bought")


def test_callers_arriving_together_never_pass_the_throttle(shop, monkeypatch, settings):
    """Eight threads call at once: the count is one atomic counter (Redis INCR in production; here the
    memory cache's incr, atomic under its lock, so a Redis slowed by a busy machine cannot open the
    cache's circuit breaker and let calls through), so no call overwrites another's and exactly the
    limit passes (DRF's history list let about 140 of 200 through a limit of 120)."""
    settings.CACHES = {**settings.CACHES, "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from concurrent.futures import ThreadPoolExecutor

    throttle_rates(monkeypatch, recommendations="1000/h", recommendations_address="30/h")
    url = reverse("recommender-api:recommendations", kwargs={"placement": "trending"})

    def call(n: int) -> int:
        return browser().get(url, HTTP_X_FORWARDED_FOR=f"10.1.{n}.1").status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, range(60)))
    assert statuses.count(200) == 30 and statuses.count(429) == 30
