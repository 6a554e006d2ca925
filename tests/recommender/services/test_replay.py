"""Offline replay: the last days' purchases against the live models, on a shop trained in the test.

The shop (``tests/training_shop.py``) is trained once up to ``AS_OF``; each test adds its own
buyers and orders in a window after ``AS_OF`` that the models never saw, so every figure follows
from the construction: after viewing one product of a pair, its partner is what every model
learnt to recommend.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from oscar.core.loading import get_model

from recommender.abstract_models import ModelKind, VersionStatus
from recommender.ml.data import SessionData
from recommender.ml.datasets import NextItemCases
from recommender.ml.evaluation import MISS_RANK, rank_cases
from recommender.ml.popularity import PopularityRecommender
from recommender.services import versions
from recommender.services.replay import replay_orders
from recommender.services.training import train_recommenders
from tests.training_shop import AS_OF, module_shop, shop_per_test

Event = get_model("recommender", "Event")
Line = get_model("order", "Line")
Order = get_model("order", "Order")
ModelVersion = get_model("recommender", "ModelVersion")

#: the tests' window: five days well after the data the models learnt from
WINDOW_END = AS_OF + timedelta(days=10)
WINDOW_START = WINDOW_END - timedelta(days=5)


#: the kinds a replay asks in these tests (the others are not trained: the suite's time is shared)
KINDS = (ModelKind.TRENDING, ModelKind.ALSO_BOUGHT, ModelKind.ALSO_VIEWED, ModelKind.NEXT_ITEM)


def _train(shop) -> None:
    run = train_recommenders(AS_OF, list(KINDS))
    for kind in KINDS:
        assert run.counts["kinds"][kind]["status"] == VersionStatus.LIVE, run.counts["kinds"][kind]


trained_shop = module_shop(_train)
shop = shop_per_test()


def buyer(name: str):
    return get_user_model().objects.create_user(name, f"{name}@example.com", "pw")


def view(user, product, when) -> None:
    Event.objects.create(kind="view", user=user, product=product, created=when)


def buy(user, products, when, status: str | None = None):
    from oscar.apps.partner.strategy import Default
    from oscar.test.factories import create_order

    Basket = get_model("basket", "Basket")
    basket = Basket.objects.create(owner=user)
    basket.strategy = Default()
    for product in products:
        basket.add_product(product)
    order = create_order(basket=basket, user=user)
    Order.objects.filter(pk=order.pk).update(date_placed=when, **({"status": status} if status else {}))
    return order


def popularity_rank(target, excluded: set) -> int:
    """The conservative rank of ``target`` among the products with any activity, by order lines before
    the window (the best sellers as they were), counted here with the ORM."""
    counts: dict[int, int] = {}
    lines = Line.objects.filter(order__date_placed__lt=WINDOW_START).exclude(order__status="Cancelled")
    for pid in lines.values_list("product_id", flat=True):
        counts[pid] = counts.get(pid, 0) + 1
    catalogue = set(Event.objects.values_list("product_id", flat=True)) | set(
        Line.objects.values_list("product_id", flat=True)
    )
    mine = counts.get(target.pk, 0)
    return sum(1 for pid in catalogue - excluded if counts.get(pid, 0) >= mine)


def test_purchases_predictable_by_construction_are_all_hits(shop):
    start = WINDOW_START + timedelta(days=1)
    expected_pop = []
    for pair in (1, 2, 5, 6):
        user = buyer(f"replay{pair}")
        first, second = shop.products[2 * pair], shop.products[2 * pair + 1]
        view(user, first, start)
        buy(user, [second], start + timedelta(hours=pair))
        rank = popularity_rank(second, {first.pk})
        expected_pop.append(1.0 / rank if rank <= 20 else 0.0)
    # a cancelled order is not a purchase (export_behaviour's rule)
    cancelled = buyer("cancelled")
    view(cancelled, shop.products[6], start)
    buy(cancelled, [shop.products[7]], start + timedelta(hours=9), status="Cancelled")

    replay = replay_orders(days=5, k=20, as_of=WINDOW_END)

    assert (replay.purchases, replay.orders, replay.buyers) == (4, 4, 4) and not replay.skipped
    assert set(replay.kinds) == {"next_item", "also_bought", "also_viewed"}
    for kind, figures in replay.kinds.items():
        assert figures["scored"] == 4 and figures["unscorable"] == {"no_history": 0, "unknown_product": 0}, kind
        assert figures["bought_from_history"] == 0 and figures["seen_in_training"] == 0, kind
        assert figures["metrics"]["hr@20"] == 1.0 and figures["metrics_all_purchases"]["hr@20"] == 1.0, kind
        assert figures["after_training"]["scored"] == 4, kind
        # popularity on the same purchases, leaving out the same products (next item: the viewed one)
        pop = figures["popularity"]
        if kind == "next_item":
            assert pop["mrr@20"] == pytest.approx(np.mean(expected_pop))
            assert pop["hr@20"] == np.mean([r > 0 for r in expected_pop])
    # the partner is the first similar item of the viewed product
    assert replay.kinds["also_viewed"]["metrics"]["mrr@20"] == 1.0
    assert replay.kinds["next_item"]["metrics"]["mrr@20"] == 1.0


def test_unscorable_purchases_are_counted_not_hidden(shop):
    from oscar.test.factories import create_product

    start = WINDOW_START + timedelta(days=1)
    novelty = create_product(title="New", upc="NEW", price=Decimal("9.00"), num_in_stock=5)
    newcomer, curious, regular, repeat = (buyer(n) for n in ("newcomer", "curious", "regular", "repeat"))
    buy(newcomer, [shop.products[7]], start)  # no history at all
    view(curious, shop.products[6], start)
    buy(curious, [novelty], start + timedelta(hours=1))  # a product no model knows
    view(regular, shop.products[10], start)
    view(regular, shop.products[11], start + timedelta(minutes=1))  # the run-up: its history stops before
    buy(regular, [shop.products[11]], start + timedelta(hours=2))
    view(repeat, shop.products[8], start)
    buy(repeat, [shop.products[9]], start + timedelta(hours=3))  # predictable
    view(repeat, shop.products[9], start + timedelta(hours=4))
    buy(repeat, [shop.products[9]], start + timedelta(hours=5))  # bought before: serving leaves it out
    also_bought = ModelVersion.objects.get(kind=ModelKind.ALSO_BOUGHT, status=VersionStatus.LIVE)
    versions.retire(also_bought)
    kinds = ["next_item", "also_viewed", "also_bought", "trending"]

    replay = replay_orders(days=5, k=20, kinds=kinds, as_of=WINDOW_END)

    assert (replay.purchases, replay.orders, replay.buyers, replay.run_up_cut) == (5, 5, 4, 2)
    assert replay.popularity["n_cases"] == 5
    assert replay.skipped == {"also_bought": "no live version (train one: manage.py train_recommenders)"}
    nxt, similar, trending = (replay.kinds[k] for k in ("next_item", "also_viewed", "trending"))
    for figures in (nxt, similar):  # the regular and the first repeat are hits, the repeat purchase a miss
        assert figures["unscorable"] == {"no_history": 1, "unknown_product": 1} and figures["scored"] == 3
        assert figures["bought_from_history"] == 1
        assert figures["metrics"]["hr@20"] == pytest.approx(2 / 3)
        assert figures["metrics_all_purchases"]["hr@20"] == pytest.approx(2 / 5)
    # trending needs no history; the unknown product stays unscorable
    assert trending["unscorable"] == {"no_history": 0, "unknown_product": 1} and trending["scored"] == 4
    assert trending["metrics"]["n_cases"] == 4 and trending["metrics_all_purchases"]["n_cases"] == 5

    # everything before the order: the regular's view of the product it bought is in its history
    strict = replay_orders(days=5, k=20, kinds=["next_item"], as_of=WINDOW_END, keep_run_up=True)
    assert strict.run_up_cut == 0 and strict.kinds["next_item"]["bought_from_history"] == 2
    assert strict.kinds["next_item"]["metrics"]["hr@20"] == pytest.approx(1 / 3)


def test_the_command_prints_a_table_and_writes_json(shop, tmp_path):
    user = buyer("commander")
    view(user, shop.products[4], WINDOW_START + timedelta(days=2))
    buy(user, [shop.products[5]], WINDOW_START + timedelta(days=3))
    out, path = StringIO(), tmp_path / "replay.json"
    as_of = WINDOW_END.isoformat()
    call_command(
        "replay_orders", "--days", "5", "--k", "10", "--as-of", as_of, "--json", str(path), "--no-progress", stdout=out
    )
    text = out.getvalue()
    assert "1 purchases in 1 orders by 1 buyers" in text and "| next_item " in text and "| popularity " in text
    figures = json.loads(path.read_text())
    assert figures["purchases"] == 1 and figures["k"] == 10 and figures["max_history_length"] == 50
    assert figures["kinds"]["next_item"]["metrics"]["hr@10"] == 1.0
    assert figures["kinds"]["also_viewed"]["scored"] == 1

    out = StringIO()
    later = (WINDOW_END + timedelta(days=30)).isoformat()
    call_command("replay_orders", "--days", "5", "--as-of", later, "--json", str(path), "--no-progress", stdout=out)
    assert "no orders in the 5 days before" in out.getvalue()
    assert json.loads(path.read_text())["purchases"] == 0


def test_rank_cases_leaves_out_what_a_case_excludes():
    model = PopularityRecommender().fit(SessionData([np.array([0, 0, 0, 1, 1, 2])], 4))
    cases = NextItemCases([np.array([3])] * 3, np.array([1, 1, 0]))
    ranks, _top = rank_cases(model, cases, exclude=[np.array([], dtype=np.int64), np.array([0]), np.array([0])])
    assert ranks.tolist() == [2, 1, MISS_RANK]
