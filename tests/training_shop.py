"""A small shop with a learnable history: people view (and buy) products in fixed pairs.

Forty products form twenty pairs ``(P2i, P2i+1)``; each visit views one pair in order, mostly
the person's favourite pair. Popularity cannot predict the second item of a pair from the
first; item-to-item and sequence models can. Orders buy whole pairs (through Oscar's order
creator, so lines and the order_placed signal are real).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from oscar.core.loading import get_model

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
N_PRODUCTS = 40


@dataclass
class TrainingShop:
    products: list[Any]
    users: list[Any]
    visitors: list[str]
    as_of: datetime = AS_OF

    def pair_of(self, product: Any) -> Any:
        i = self.products.index(product)
        return self.products[i ^ 1]


def build_shop(
    n_users: int = 24,
    n_visitors: int = 16,
    visits: int = 8,
    orders: int = 48,
    days: int = 60,
    seed: int = 0,
    end: datetime = AS_OF,
) -> TrainingShop:
    from oscar.test.factories import create_order, create_product

    Event = get_model("recommender", "Event")
    Basket = get_model("basket", "Basket")
    Order = get_model("order", "Order")
    rng = np.random.default_rng(seed)
    products = [
        create_product(title=f"Product {i:02d}", upc=f"P{i:02d}", price=Decimal("5.00") + i, num_in_stock=50)
        for i in range(N_PRODUCTS)
    ]
    User = get_user_model()
    users = [User.objects.create_user(f"shopper{i}", f"shopper{i}@example.com", "pw") for i in range(n_users)]
    visitors = [f"{i:032x}" for i in range(1, n_visitors + 1)]
    people: list[tuple[Any, str]] = [(u, "") for u in users] + [(None, v) for v in visitors]
    start = end - timedelta(days=days)
    events = []
    for n, (user, visitor) in enumerate(people):
        favourite = n % (N_PRODUCTS // 2)
        for _ in range(visits):
            pair = favourite if rng.random() < 0.7 else int(rng.integers(N_PRODUCTS // 2))
            when = start + timedelta(seconds=float(rng.uniform(0, days * 86400 - 3600)))
            for step, product in enumerate((products[2 * pair], products[2 * pair + 1])):
                events.append(
                    Event(
                        kind="view",
                        user=user,
                        visitor_id=visitor,
                        product=product,
                        created=when + timedelta(seconds=30 * step),
                    )
                )
    Event.objects.bulk_create(events)
    from oscar.apps.partner.strategy import Default

    for n in range(orders):
        user = users[n % len(users)]
        pair = (n % len(users)) % (N_PRODUCTS // 2)
        basket = Basket.objects.create(owner=user)
        basket.strategy = Default()
        basket.add_product(products[2 * pair])
        basket.add_product(products[2 * pair + 1])
        order = create_order(basket=basket, user=user)
        placed = start + timedelta(seconds=float(rng.uniform(0, days * 86400 - 3600)))
        Order.objects.filter(pk=order.pk).update(date_placed=placed)
    return TrainingShop(products, users, visitors, end)


def build_intent_shop(end: datetime = AS_OF, customers: int = 60) -> list[Any]:
    """A shop for purchase intent: ``customers`` customers over the fifty days before ``end``. Half the
    visits browse three to five products and leave; the others view a product, put it in the
    basket, maybe a second one, and order them."""
    from django.contrib.auth import get_user_model
    from oscar.apps.partner.strategy import Default
    from oscar.test.factories import create_order

    from tests.helpers import make_product

    Basket = get_model("basket", "Basket")
    Order = get_model("order", "Order")
    Event = get_model("recommender", "Event")
    rng = np.random.default_rng(0)
    products = [make_product(f"Gift {i}", price=f"{10 + i}.00") for i in range(12)]
    User = get_user_model()
    events, orders = [], []
    for n in range(customers):
        user = User.objects.create_user(f"intent{n}", f"intent{n}@example.com", "pw")
        when = end - timedelta(days=50) + timedelta(hours=float(rng.uniform(0, 48)))
        while when < end - timedelta(hours=2):
            picks = [products[int(i)] for i in rng.choice(12, size=5, replace=False)]
            if rng.random() < 0.5:
                for k in range(int(rng.integers(3, 6))):
                    events.append(Event(kind="view", user=user, product=picks[k], created=when))
                    when += timedelta(seconds=float(rng.uniform(40, 120)))
            else:
                bought = picks[: int(rng.integers(1, 3))]
                for product in bought:
                    events.append(Event(kind="view", user=user, product=product, created=when))
                    when += timedelta(seconds=float(rng.uniform(40, 120)))
                    events.append(Event(kind="basket", user=user, product=product, created=when))
                    when += timedelta(seconds=float(rng.uniform(40, 120)))
                orders.append((user, bought, when))
            when += timedelta(days=float(rng.uniform(1, 4)))
    Event.objects.bulk_create(events)
    for user, bought, when in orders:
        basket = Basket.objects.create(owner=user)
        basket.strategy = Default()
        for product in bought:
            basket.add_product(product)
        order = create_order(basket=basket, user=user)
        Order.objects.filter(pk=order.pk).update(date_placed=when)
    return products


#: the settings the shop is trained with in the tests: a light next-item model, a small holdout, a
#: small purchase-intent network trained for one epoch
LIGHT = {"NEXT_ITEM_MODEL": "hybrid", "MIN_HOLDOUT_CASES": 5, "INTENT_PARAMS": {"epochs": 1, "hidden_size": 8}}


def module_data(build: Callable[[str], Any], **overrides: Any) -> Any:
    """A module-scoped fixture giving ``(build(tmp), tmp)``: data built once (``tmp`` is a fresh
    folder, e.g. for MEDIA_ROOT) on the apps' documented defaults plus ``overrides``, committed for
    all tests of the module (each test still runs in its own rolled-back transaction), then
    flushed away. Tests that change files, need another database state or a transactional
    database belong in another module."""
    import pytest

    @pytest.fixture(scope="module")
    def fixture(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Any:
        from django.core.management import call_command
        from django.test import override_settings

        from recommender.services import versions

        tmp = str(tmp_path_factory.mktemp("module"))
        fast = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        settings = {"RECOMMENDER": {}, "SEGMENTATION": {}, "PASSWORD_HASHERS": fast, "MEDIA_ROOT": tmp, **overrides}
        with django_db_blocker.unblock(), override_settings(**settings):
            versions.forget_loaded()
            data = build(tmp)
        yield data, tmp
        versions.forget_loaded()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)

    return fixture


def module_shop(train: Callable[[TrainingShop], None]) -> Any:
    """:func:`module_data` for the training shop: built, trained by ``train`` (with the ``LIGHT``
    settings, model files under the module's folder) and shared by the module's tests."""

    def build(tmp: str) -> TrainingShop:
        shop = build_shop()
        train(shop)
        return shop

    return module_data(build, RECOMMENDER=LIGHT)


def shop_per_test() -> Any:
    """The function-scoped fixture over the module's ``trained_shop`` (a :func:`module_shop`): the
    shop, with MEDIA_ROOT on the module's model files and the ``LIGHT`` settings; what a test
    changes in the database is rolled back."""
    import pytest

    @pytest.fixture
    def fixture(trained_shop: Any, db: Any, settings: Any) -> Any:
        from recommender.services import versions

        shop, media = trained_shop
        settings.MEDIA_ROOT = media
        settings.RECOMMENDER = LIGHT
        versions.forget_loaded()
        yield shop
        versions.forget_loaded()

    return fixture


def live(kind: str) -> Any:
    """The live version of ``kind``, or None."""
    from recommender.abstract_models import VersionStatus

    return get_model("recommender", "ModelVersion").objects.filter(kind=kind, status=VersionStatus.LIVE).first()
