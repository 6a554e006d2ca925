"""The shop learns: orders + events -> training run -> gated, versioned, verified model files."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from recommender import artifacts, exporters
from recommender.abstract_models import ModelKind, TrainingStatus, VersionStatus
from recommender.ml.itemknn import ItemKNNRecommender
from recommender.ml.popularity import PopularityRecommender, TrendingRecommender
from recommender.ml.registry import _MODELS
from recommender.services import preview, versions
from recommender.services.training import gate, train_recommenders
from tests.training_shop import AS_OF, build_shop

ModelVersion = get_model("recommender", "ModelVersion")
TrainingRun = get_model("recommender", "TrainingRun")

LIGHT = {"NEXT_ITEM_MODEL": "hybrid", "MIN_HOLDOUT_CASES": 5, "HOLDOUT_DAYS": 14}


@pytest.fixture
def model_storage(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    versions.forget_loaded()
    yield tmp_path / "media"
    versions.forget_loaded()


@pytest.fixture
def shop(db, model_storage):
    return build_shop()


def live(kind: str):
    return ModelVersion.objects.filter(kind=kind, status=VersionStatus.LIVE).first()


@pytest.mark.django_db
def test_a_run_trains_every_kind_and_makes_verified_versions_live(shop, settings, model_storage):
    settings.RECOMMENDER = LIGHT
    run = train_recommenders(AS_OF)
    assert run.status == TrainingStatus.SUCCEEDED, run.error
    kinds = run.counts["kinds"]
    for kind in (ModelKind.NEXT_ITEM, ModelKind.ALSO_VIEWED, ModelKind.ALSO_BOUGHT, ModelKind.TRENDING):
        assert kinds[kind]["status"] == VersionStatus.LIVE, (kind, kinds[kind])
    # no segmentation run yet: skipped with a reason, not an error
    assert kinds[ModelKind.TRENDING_SEGMENT] == {"status": "skipped", "reason": "no current segmentation run"}
    assert run.counts["log"]["views"] == 40 * 8 * 2 and run.counts["log"]["purchases"] == 96
    assert set(run.timings) >= {"export", "total", str(ModelKind.NEXT_ITEM)} and run.peak_rss_mb > 0

    version = live(ModelKind.NEXT_ITEM)
    m = version.metrics
    assert m["candidate"]["hr@20"] > m["popularity"]["hr@20"]
    assert {"hr@10", "mrr@20", "ndcg@20", "coverage@20"} <= set(m["candidate"])
    assert version.data_end == AS_OF and version.holdout_start == AS_OF - timedelta(days=14)
    assert version.model_name == "hybrid" and version.counts["held_out_cases"] >= 5

    # the files: safetensors + JSON, no pickle; their item ids are the shop's products
    folder = model_storage / version.artifact_path
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "items.json", "model.safetensors"]
    for path in folder.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"
    product_ids = json.loads((folder / "items.json").read_text())["product_ids"]
    assert set(product_ids) <= {p.pk for p in shop.products} and len(product_ids) == 40
    loaded = artifacts.load(version.artifact_path, version.files)
    assert loaded.product_ids == product_ids


@pytest.mark.django_db
def test_the_live_models_answer_with_the_learnt_pairs(shop, settings):
    settings.RECOMMENDER = LIGHT
    train_recommenders(AS_OF)
    first = shop.products[6]
    similar = preview.similar(ModelKind.ALSO_VIEWED, first, k=5)
    assert similar.products[0] == shop.pair_of(first)
    # "for you" over a customer's own history: after viewing P06 comes P07
    user = shop.users[3]  # favourite pair 3 = (P06, P07)
    Event = get_model("recommender", "Event")
    Event.objects.create(kind="view", user=user, product=first, created=AS_OF + timedelta(hours=1))
    assert shop.pair_of(first) in preview.for_customer(user, k=3).products


@pytest.mark.django_db
def test_a_model_no_better_than_popularity_is_not_promoted(shop, settings):
    settings.RECOMMENDER = {**LIGHT, "NEXT_ITEM_MODEL": "pop"}
    run = train_recommenders(AS_OF, [ModelKind.NEXT_ITEM])
    version = run.versions.get()
    assert version.status == VersionStatus.REJECTED and not version.has_files
    assert "does not beat popularity" in version.reason
    assert live(ModelKind.NEXT_ITEM) is None


class RandomScores(PopularityRecommender):
    """A deliberately useless model: random scores."""

    name = "test_random"

    def fit(self, data, validation=None):
        super().fit(data)
        self.scores_ = np.random.default_rng(0).random(self.n_items_).astype(np.float32)
        return self


@pytest.mark.django_db
def test_a_worse_candidate_never_replaces_the_live_version(shop, settings, monkeypatch):
    settings.RECOMMENDER = LIGHT
    train_recommenders(AS_OF - timedelta(days=10), [ModelKind.NEXT_ITEM])
    good = live(ModelKind.NEXT_ITEM)
    assert good is not None
    monkeypatch.setitem(_MODELS, "test_random", RandomScores)
    settings.RECOMMENDER = {**LIGHT, "NEXT_ITEM_MODEL": "test_random"}
    run = train_recommenders(AS_OF, [ModelKind.NEXT_ITEM])
    rejected = run.versions.get()
    assert rejected.status == VersionStatus.REJECTED
    assert live(ModelKind.NEXT_ITEM) == good


def test_gate_compares_with_popularity_and_the_live_version(settings):
    settings.RECOMMENDER = {"PROMOTION_TOLERANCE": 0.05, "MIN_HOLDOUT_CASES": 10}
    base = {"n_cases": 100, "candidate": {"hr@20": 0.30}, "popularity": {"hr@20": 0.10}}
    assert gate(base)[0]
    assert not gate({**base, "n_cases": 9})[0]
    assert not gate({**base, "popularity": {"hr@20": 0.30}})[0]  # a tie is not better
    with_live = {**base, "live_version": 7, "live_n_cases": 50, "candidate_on_live_cases": {"hr@20": 0.30}}
    assert gate({**with_live, "live": {"hr@20": 0.315}})[0]  # within the 5 % tolerance
    ok, reason = gate({**with_live, "live": {"hr@20": 0.40}})
    assert not ok and "worse than the live version 7" in reason


@pytest.mark.django_db
def test_rollback_restores_the_previous_versions_recommendations(shop, settings):
    settings.RECOMMENDER = LIGHT
    train_recommenders(AS_OF - timedelta(days=20), [ModelKind.ALSO_VIEWED])
    first = live(ModelKind.ALSO_VIEWED)
    product = shop.products[10]
    before = preview.similar(ModelKind.ALSO_VIEWED, product, k=5).products
    # new behaviour: product 10 is now viewed with product 30
    Event = get_model("recommender", "Event")
    for n in range(60):
        when = AS_OF - timedelta(days=15) + timedelta(hours=n * 5)
        for step, p in enumerate((shop.products[10], shop.products[30])):
            Event.objects.create(kind="view", visitor_id=f"{1000 + n:032x}", product=p,
                                 created=when + timedelta(seconds=step))  # fmt: skip
    train_recommenders(AS_OF, [ModelKind.ALSO_VIEWED])
    second = live(ModelKind.ALSO_VIEWED)
    assert second != first
    after = preview.similar(ModelKind.ALSO_VIEWED, product, k=5).products
    assert after != before and after[0] == shop.products[30]
    first.refresh_from_db()
    assert first.status == VersionStatus.RETIRED
    versions.promote(first)
    assert live(ModelKind.ALSO_VIEWED) == first
    assert preview.similar(ModelKind.ALSO_VIEWED, product, k=5).products == before


@pytest.mark.django_db
def test_an_exception_in_fit_fails_the_run_and_keeps_the_live_version(shop, settings, monkeypatch):
    settings.RECOMMENDER = LIGHT
    train_recommenders(AS_OF - timedelta(days=10), [ModelKind.ALSO_BOUGHT])
    previous = live(ModelKind.ALSO_BOUGHT)

    def broken_fit(self, data, validation=None):
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(ItemKNNRecommender, "fit", broken_fit)
    run = train_recommenders(AS_OF, [ModelKind.ALSO_BOUGHT])
    assert run.status == TrainingStatus.FAILED and "killed mid-way" in run.error
    failed = run.versions.get()
    assert failed.status == VersionStatus.FAILED and "RuntimeError: killed mid-way" in failed.reason
    assert live(ModelKind.ALSO_BOUGHT) == previous


@pytest.mark.django_db
def test_nan_weights_are_caught_before_serving(shop, settings, monkeypatch):
    settings.RECOMMENDER = LIGHT
    real_fit = TrendingRecommender.fit
    calls = []

    def nan_fit(self, data, validation=None):
        real_fit(self, data, validation)
        calls.append(1)
        if len(calls) == 2:  # the refit on all data breaks (the evaluated candidate was fine)
            self.scores_ = np.full_like(self.scores_, np.nan)
        return self

    monkeypatch.setattr(TrendingRecommender, "fit", nan_fit)
    run = train_recommenders(AS_OF, [ModelKind.TRENDING])
    version = run.versions.get()
    assert run.status == TrainingStatus.FAILED
    assert version.status == VersionStatus.FAILED and "NaN" in version.reason
    assert live(ModelKind.TRENDING) is None and not version.artifact_path


@pytest.mark.django_db
def test_a_damaged_file_is_never_loaded_nor_promoted(shop, settings, model_storage):
    settings.RECOMMENDER = LIGHT
    train_recommenders(AS_OF - timedelta(days=10), [ModelKind.ALSO_VIEWED])
    old = live(ModelKind.ALSO_VIEWED)
    train_recommenders(AS_OF, [ModelKind.ALSO_VIEWED])
    tensors = model_storage / old.artifact_path / "model.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-8])
    versions.forget_loaded()
    with pytest.raises(artifacts.ArtifactError, match="checksum"):
        versions.load(old)
    with pytest.raises(versions.PromotionError):
        versions.promote(old)
    assert live(ModelKind.ALSO_VIEWED) != old


@pytest.mark.django_db
def test_an_empty_shop_has_nothing_to_learn(model_storage):
    run = train_recommenders(AS_OF)
    assert run.status == TrainingStatus.NOTHING_TO_LEARN
    assert run.error.startswith("nothing to learn yet")
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_old_versions_lose_their_files(shop, settings, model_storage):
    settings.RECOMMENDER = {**LIGHT, "KEEP_VERSIONS": 2, "PROMOTION_TOLERANCE": 0.5}
    for days in (30, 20, 10, 0):
        train_recommenders(AS_OF - timedelta(days=days), [ModelKind.ALSO_VIEWED])
    rows = list(ModelVersion.objects.filter(kind=ModelKind.ALSO_VIEWED).order_by("created", "pk"))
    assert [bool(v.artifact_path) for v in rows] == [False, False, True, True]
    assert rows[-1].status == VersionStatus.LIVE
    files = [p for p in (model_storage / "recommender/models/also_viewed").rglob("*") if p.is_file()]
    assert sorted({p.parent.name for p in files}) == sorted(v.artifact_path.rsplit("/", 1)[1] for v in rows[2:])
    assert len(files) == 6


@pytest.mark.django_db
def test_segment_trending_uses_the_current_segmentation_run(shop, settings):
    from segmentation.services import run_segmentation

    settings.RECOMMENDER = LIGHT
    run_segmentation(AS_OF.date())
    run = train_recommenders(AS_OF, [ModelKind.TRENDING_SEGMENT])
    version = run.versions.get()
    assert version.model_name == "segment_pop"
    assert version.status in (VersionStatus.LIVE, VersionStatus.REJECTED), version.reason
    if version.status == VersionStatus.LIVE:
        assert versions.load(version).meta["segments"]


@pytest.mark.django_db
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_recurrent_blend_trains_with_either_cell(shop, settings, cell):
    pytest.importorskip("torch")
    small = {"epochs": 2, "embedding_dim": 16, "hidden_size": 16, "num_threads": 1, "n_negatives": 0}
    settings.RECOMMENDER = {
        **LIGHT, "NEXT_ITEM_MODEL": "blend", "RNN_CELL": cell,
        "NEXT_ITEM_PARAMS": {"networks": 1, "component_params": {cell: small}},
    }  # fmt: skip
    run = train_recommenders(AS_OF, [ModelKind.NEXT_ITEM])
    version = run.versions.get()
    assert run.status == TrainingStatus.SUCCEEDED, run.error
    assert version.model_name == "blend" and version.parameters["network"] == cell
    assert version.parameters["component_params"][cell]["use_time"] is True
    assert version.status == VersionStatus.LIVE, version.reason
    model = versions.load(version).model
    assert model.models_[0].cell == cell


@pytest.mark.django_db
def test_command_prints_a_table_and_fails_loudly(shop, settings):
    settings.RECOMMENDER = LIGHT
    out = StringIO()
    call_command("train_recommenders", "--as-of", AS_OF.date().isoformat(), "--models", "trending", "also_bought",
                 "--no-progress", stdout=out)  # fmt: skip
    text = out.getvalue()
    assert "| kind " in text and "| trending " in text and "| also_bought " in text
    assert "beats popularity" in text


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
