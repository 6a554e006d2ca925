"""Training on shops of other shapes: empty, one order, a new shop, a quiet one or an imported
history, customers in segments; and what the behaviour export reads."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from recommender import exporters
from recommender.abstract_models import ModelKind, TrainingStatus, VersionStatus
from recommender.services import versions
from recommender.services.training import train_recommenders
from tests.training_shop import AS_OF, LIGHT, build_shop, live

ModelVersion = get_model("recommender", "ModelVersion")


@pytest.mark.django_db
def test_an_empty_shop_has_nothing_to_learn(model_storage):
    run = train_recommenders(AS_OF)
    assert run.status == TrainingStatus.NOTHING_TO_LEARN
    assert run.error.startswith("nothing to learn yet")
    assert not ModelVersion.objects.exists()


def _two_kinds_of_customer() -> tuple[list, list, list, list]:
    """Ten regulars (several recent orders each) who view only products 0-14, and ten one-off customers
    (one old order each) who view only products 15-29; every visit views five of the group's products,
    every third day over the 60 days before AS_OF, so each held-out day sees every product of the group.

    Returns (regulars, one_offs, products of the regulars, products of the one-offs)."""
    from django.contrib.auth import get_user_model
    from oscar.test.factories import create_product

    from segmentation.testing import make_order

    Event = get_model("recommender", "Event")
    products = [create_product(title=f"Item {i:02d}", upc=f"I{i:02d}", num_in_stock=50) for i in range(30)]
    User = get_user_model()
    regulars = [User.objects.create_user(f"regular{i}", f"regular{i}@example.com", "pw") for i in range(10)]
    one_offs = [User.objects.create_user(f"oneoff{i}", f"oneoff{i}@example.com", "pw") for i in range(10)]
    for i, user in enumerate(regulars):
        for n in range(3 + i):  # 3 to 12 orders: every regular has more orders than any one-off customer
            make_order(user=user, total=40 + n, placed=AS_OF - timedelta(days=2 + 5 * n))
    for user in one_offs:
        make_order(user=user, total=15, placed=AS_OF - timedelta(days=200))
    events = []
    for people, own in ((regulars, products[:15]), (one_offs, products[15:])):
        for p, user in enumerate(people):
            for visit in range(20):
                when = AS_OF - timedelta(days=1 + 3 * visit, hours=p)
                for step in range(5):
                    product = own[(5 * visit + step) % 15]
                    events.append(
                        Event(kind="view", user=user, product=product, created=when + timedelta(minutes=step))
                    )
    Event.objects.bulk_create(events)
    return regulars, one_offs, products[:15], products[15:]


@pytest.mark.django_db
def test_segment_trending_uses_the_current_segmentation_run(settings, model_storage):
    """Each segment views its own products: "trending in your segment" ranks the segment's 15 products
    first and hits every held-out view in its top 20, while overall popularity, whose top 20 cannot hold
    the 30 products viewed, misses some: the candidate beats popularity and goes live."""
    from segmentation.services import run_segmentation

    settings.RECOMMENDER = LIGHT
    settings.SEGMENTATION = {"SEGMENT_RULES": [{"name": "Regulars", "f": [3, 5]}, {"name": "One-offs", "f": [1, 2]}]}
    _regulars, _one_offs, theirs, others = _two_kinds_of_customer()
    segmentation = run_segmentation(AS_OF.date())
    assert segmentation.segment_counts == {"Regulars": 10, "One-offs": 10}

    run = train_recommenders(AS_OF, [ModelKind.TRENDING_SEGMENT])
    version = run.versions.get()
    assert version.model_name == "segment_pop"
    assert version.status == VersionStatus.LIVE, version.reason
    m = version.metrics
    assert m["candidate"]["hr@20"] == 1.0 and m["popularity"]["hr@20"] < 1.0
    assert version.reason.startswith("hr@20 1.0000 beats popularity")
    # the served model: a segment's own products come first, in either segment
    loaded = versions.load(version)
    assert loaded.meta["segments"] == ["One-offs", "Regulars"]
    ids = np.asarray(loaded.product_ids)
    for segment, own in ((1, theirs), (0, others)):
        scores = loaded.model.score_batch([np.empty(0, dtype=np.int64)], {"segments": np.array([segment])})[0]
        assert set(ids[np.argsort(-scores)[:15]]) == {p.pk for p in own}, segment


@pytest.mark.django_db
def test_export_reads_persons_parents_and_exclusions(db, settings):
    from oscar.test.factories import create_order, create_product

    Event = get_model("recommender", "Event")
    Product = get_model("catalogue", "Product")
    parent = create_product(title="Mug", structure="parent")
    child = create_product(title="Mug red", structure="child", parent=parent, price=5, num_in_stock=3)
    hidden = create_product(title="Postage", price=5, num_in_stock=3)
    Product.objects.filter(pk=hidden.pk).update(is_public=False)
    fee = create_product(title="Fee", price=5, num_in_stock=3, product_class="Service")
    settings.RECOMMENDER = {"EXCLUDED_PRODUCT_CLASSES": [fee.product_class.slug]}
    Event.objects.create(kind="view", visitor_id="a" * 32, product=child)
    Event.objects.create(kind="view", visitor_id="a" * 32, product=hidden)
    Event.objects.create(kind="basket", visitor_id="b" * 32, product=child)
    Event.objects.create(kind="search", visitor_id="b" * 32, query="mug")
    order = create_order(user=None, guest_email="Guest@Example.com")
    later = AS_OF + timedelta(days=400)
    log = exporters.export_behaviour(later)
    frame = log.frame
    assert set(frame["item"]) <= {parent.pk, *order.lines.values_list("product_id", flat=True)}
    views = frame[frame["event_type"] == 0]
    assert list(views["item"]) == [parent.pk]  # the child counts as its parent; hidden left out
    assert views["person"].iloc[0] != frame[frame["event_type"] == 1]["person"].iloc[0]  # two visitors
    assert log.counts["left_out_not_recommendable"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize("days_ago", [30, 730])
def test_a_quiet_shop_or_an_imported_history_trains_as_of_today(db, model_storage, settings, days_ago):
    """Nightly training runs without an as-of time: a shop closed for a month, or last year's orders
    imported, are judged on their own most recent days."""
    from django.utils import timezone

    settings.RECOMMENDER = LIGHT
    end = timezone.now() - timedelta(days=days_ago)
    build_shop(end=end)
    run = train_recommenders()
    assert run.status == TrainingStatus.SUCCEEDED, run.error
    for kind in (ModelKind.NEXT_ITEM, ModelKind.ALSO_VIEWED, ModelKind.ALSO_BOUGHT, ModelKind.TRENDING):
        assert run.counts["kinds"][kind]["status"] == VersionStatus.LIVE, (kind, run.counts["kinds"][kind])
    version = live(ModelKind.NEXT_ITEM)
    assert version.data_end <= end and version.holdout_start >= end - timedelta(days=15)


@pytest.mark.django_db
def test_a_shop_with_one_order_is_told_per_kind_that_there_is_not_enough_data(db, model_storage, settings):
    from oscar.apps.partner.strategy import Default
    from oscar.test.factories import create_order, create_product

    settings.RECOMMENDER = {**LIGHT, "MIN_HOLDOUT_CASES": 20}
    basket = get_model("basket", "Basket").objects.create()
    basket.strategy = Default()
    for n in range(2):
        basket.add_product(create_product(title=f"Mug {n}", price=5, num_in_stock=10))
    create_order(basket=basket, guest_email="guest@example.com")
    run = train_recommenders()
    assert run.status == TrainingStatus.SUCCEEDED, run.error
    outcomes = run.counts["kinds"]
    assert outcomes[ModelKind.ALSO_VIEWED] == {"status": "skipped", "reason": "no product views recorded yet"}
    for kind in (ModelKind.NEXT_ITEM, ModelKind.ALSO_BOUGHT, ModelKind.BOUGHT_TOGETHER, ModelKind.TRENDING):
        assert outcomes[kind]["status"] == "skipped" and outcomes[kind]["reason"].startswith("not enough data yet")
    assert not ModelVersion.objects.exists()
    out = StringIO()
    call_command("train_recommenders", "--no-progress", stdout=out)
    assert "next_item: not enough data yet: 1 held-out case in the 14 days to its last activity" in out.getvalue()


@pytest.mark.django_db
def test_a_new_shop_is_judged_on_a_share_of_its_history(db, model_storage, settings):
    """Five days of history, all inside the 14 held-out days: without a live version the most recent
    fifth is held out instead, and a model that beats popularity there goes live."""
    settings.RECOMMENDER = LIGHT
    build_shop(days=5, visits=12)
    run = train_recommenders(AS_OF, [ModelKind.ALSO_VIEWED])
    version = run.versions.get()
    assert version.status == VersionStatus.LIVE, version.reason
    assert "judged on the last 20% of its history" in version.metrics["holdout_note"]
    assert version.holdout_start > version.data_end - timedelta(days=5)
