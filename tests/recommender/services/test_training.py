"""The shop learns: orders + events -> training run -> gated, versioned, verified model files."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from oscar.core.loading import get_model

from recommender import artifacts, exporters
from recommender.abstract_models import ModelKind, TrainingStatus, VersionStatus
from recommender.ml.itemknn import ItemKNNRecommender
from recommender.ml.popularity import PopularityRecommender, TrendingRecommender
from recommender.ml.registry import _MODELS
from recommender.services import preview, versions
from recommender.services.gate import Evaluation, PromotionGate
from recommender.services.training import train_recommenders
from tests.training_shop import AS_OF, build_shop

ModelVersion = get_model("recommender", "ModelVersion")
TrainingRun = get_model("recommender", "TrainingRun")

LIGHT = {"NEXT_ITEM_MODEL": "hybrid", "MIN_HOLDOUT_CASES": 5, "HOLDOUT_DAYS": 14, "INTENT_PARAMS": {"epochs": 2}}


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
    # the held-out days end at the last recorded activity before the as-of time
    Event = get_model("recommender", "Event")
    last_view = Event.objects.filter(created__lt=AS_OF).latest("created").created
    assert version.data_end == last_view and version.holdout_start == last_view - timedelta(days=14)
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
    similar = preview.for_product("also_viewed", first)
    assert similar.products[0] == shop.pair_of(first) and similar.items[0].rung == "also_viewed"
    # "for you" over a new customer's own history: after viewing P06 comes P07
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("newcomer", "newcomer@example.com", "pw")
    Event = get_model("recommender", "Event")
    Event.objects.create(kind="view", user=user, product=first, created=AS_OF + timedelta(hours=1))
    for_you = preview.for_customer(user, k=3)
    assert shop.pair_of(first) in for_you.products and for_you.history == [first]


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


def _evaluation(n=100, cand_hits=30, pop_hits=10, live_hits=None, both=None, metric="hr@20"):
    """An evaluation over ``n`` cases: ranks 1 for a hit, MISS for a miss; the candidate hits the first
    ``cand_hits`` cases, the live configuration ``live_hits`` of them starting at case ``both``."""
    miss = np.iinfo(np.int32).max

    def ranks(first, count):
        r = np.full(n, miss, dtype=np.int64)
        r[first : first + count] = 1
        return r

    out = {"candidate": ranks(0, cand_hits), "popularity": ranks(0, pop_hits)}
    metrics = {"n_cases": n, "candidate": {metric: cand_hits / n}, "popularity": {metric: pop_hits / n}}
    if live_hits is not None:
        out["live"] = ranks(both if both is not None else 0, live_hits)
        metrics["live"] = {metric: live_hits / n}
    return Evaluation(metrics, out, live_version=7 if live_hits is not None else None)


def test_the_gate_needs_cases_and_a_win_over_popularity(settings):
    settings.RECOMMENDER = {"MIN_HOLDOUT_CASES": 10}
    gate = PromotionGate()
    assert gate.decide(_evaluation()).promote
    assert not gate.decide(_evaluation(n=9, cand_hits=5, pop_hits=1)).promote
    tie = gate.decide(_evaluation(pop_hits=30))
    assert not tie.promote and "does not beat popularity" in tie.reason


def test_the_gate_rejects_only_a_significantly_worse_candidate(settings):
    settings.RECOMMENDER = {"MIN_HOLDOUT_CASES": 10}
    gate = PromotionGate()
    # the same configuration: its refit to this cutoff is the candidate itself
    same = gate.decide(_evaluation(live_hits=30))
    assert same.promote and same.figures["p_value"] == 1.0 and same.figures["live_version"] == 7
    # 54 cases, 50 vs 51 hits (0.926 vs 0.944): noise, not evidence
    noise = gate.decide(_evaluation(n=54, cand_hits=50, pop_hits=20, live_hits=51, both=3))
    assert noise.promote and noise.figures["p_value"] > 0.05 and noise.figures["test"] == "exact McNemar"
    worse = gate.decide(_evaluation(n=200, cand_hits=40, pop_hits=10, live_hits=70))
    assert not worse.promote and "significantly worse than the live version 7" in worse.reason
    assert worse.figures["p_value"] < 0.001 and worse.figures["reference_better"] == 30
    strict = PromotionGate(alpha=1e-12).decide(_evaluation(n=200, cand_hits=40, pop_hits=10, live_hits=70))
    assert strict.promote  # the level is the gate's own setting


def test_the_gate_tests_ranking_metrics_with_wilcoxon(settings):
    settings.RECOMMENDER = {"MIN_HOLDOUT_CASES": 10, "GATE_METRIC": "mrr@20"}
    decision = PromotionGate().decide(_evaluation(n=200, cand_hits=40, pop_hits=10, live_hits=90, metric="mrr@20"))
    assert not decision.promote and decision.figures["test"] == "Wilcoxon signed-rank"


def test_a_shop_replaces_the_gate_with_an_app_of_its_own(settings):
    from recommender.services.training import promotion_gate

    assert type(promotion_gate()) is PromotionGate
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.fork_project.yourshop_training.apps.TrainingConfig"]
    gate = promotion_gate()
    assert type(gate).__module__ == "tests.fork_project.yourshop_training.gate"
    decision = gate.decide(Evaluation({"n_cases": 500, "candidate": {}, "popularity": {}}, {}))
    assert not decision.promote and "the shop's own gate" in decision.reason


@pytest.mark.django_db
def test_rollback_restores_the_previous_versions_recommendations(shop, settings):
    settings.RECOMMENDER = LIGHT
    train_recommenders(AS_OF - timedelta(days=20), [ModelKind.ALSO_VIEWED])
    first = live(ModelKind.ALSO_VIEWED)
    product = shop.products[10]
    before = preview.for_product("also_viewed", product).products
    # new behaviour: product 10 is now viewed with product 30
    Event = get_model("recommender", "Event")
    for n in range(60):
        when = AS_OF - timedelta(days=15) + timedelta(hours=n * 5)
        for step, p in enumerate((shop.products[10], shop.products[30])):
            Event.objects.create(
                kind="view", visitor_id=f"{1000 + n:032x}", product=p, created=when + timedelta(seconds=step)
            )
    train_recommenders(AS_OF, [ModelKind.ALSO_VIEWED])
    second = live(ModelKind.ALSO_VIEWED)
    assert second != first
    after = preview.for_product("also_viewed", product).products
    assert after != before and after[0] == shop.products[30]
    first.refresh_from_db()
    assert first.status == VersionStatus.RETIRED
    versions.promote(first)
    assert live(ModelKind.ALSO_VIEWED) == first
    assert preview.for_product("also_viewed", product).products == before


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
    settings.RECOMMENDER = {**LIGHT, "KEEP_VERSIONS": 2}
    for days in (30, 20, 10, 0):
        train_recommenders(AS_OF - timedelta(days=days), [ModelKind.ALSO_VIEWED])
    rows = list(ModelVersion.objects.filter(kind=ModelKind.ALSO_VIEWED).order_by("created", "pk"))
    assert [bool(v.artifact_path) for v in rows] == [False, False, True, True]
    assert rows[-1].status == VersionStatus.LIVE
    files = [p for p in (model_storage / "recommender/models/also_viewed").rglob("*") if p.is_file()]
    assert sorted({p.parent.name for p in files}) == sorted(v.artifact_path.rsplit("/", 1)[1] for v in rows[2:])
    assert len(files) == 6


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
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_recurrent_blend_trains_with_either_cell(shop, settings, cell):
    pytest.importorskip("torch")
    small = {"epochs": 2, "embedding_dim": 16, "hidden_size": 16, "num_threads": 1, "n_negatives": 0}
    settings.RECOMMENDER = {
        **LIGHT,
        "NEXT_ITEM_MODEL": "blend",
        "RNN_CELL": cell,
        "NEXT_ITEM_PARAMS": {"networks": 1, "component_params": {cell: small}},
    }
    reports = []
    run = train_recommenders(AS_OF, [ModelKind.NEXT_ITEM], progress=lambda step, info: reports.append(info))
    version = run.versions.get()
    assert run.status == TrainingStatus.SUCCEEDED, run.error
    assert version.model_name == "blend" and version.parameters["network"] == cell
    # the progress bar hears of every epoch, with the cell and the seconds left of the budget
    epochs = [r for r in reports if "epoch" in r]
    assert {"epoch": "1/2", "cell": cell} in [{k: r[k] for k in ("epoch", "cell")} for r in epochs]
    assert all(r["left"].endswith("s") for r in epochs)
    assert version.parameters["component_params"][cell]["use_time"] is True
    assert version.status == VersionStatus.LIVE, version.reason
    model = versions.load(version).model
    assert model.models_[0].cell == cell


@pytest.mark.django_db
def test_command_prints_a_table(shop, settings):
    settings.RECOMMENDER = LIGHT
    out = StringIO()
    call_command(
        "train_recommenders",
        "--as-of",
        AS_OF.date().isoformat(),
        "--models",
        "trending",
        "also_bought",
        "--no-progress",
        stdout=out,
    )
    text = out.getvalue()
    run = TrainingRun.objects.get()
    assert text.startswith(f"Training run {run.pk}: Succeeded (data before 2026-06-01 00:00,")
    assert re.search(r"^\| kind +\| model +\| status +\| cases +\| hr@20 +\| pop hr@20 ", text, re.M)
    for kind, model in (("trending", "trending"), ("also_bought", "itemknn")):
        version = run.versions.get(kind=kind)
        cases = f"{version.metrics['n_cases']:,}"
        hr = f"{100 * version.metrics['candidate']['hr@20']:.2f}"
        assert re.search(rf"^\| {kind} +\| {model} +\| live +\| {cases} +\| {hr} +\|", text, re.M), text
        assert f"{kind}: hr@20 " in text and "beats popularity" in text


@pytest.mark.django_db
def test_command_fails_loudly_when_a_kind_fails(shop, settings, monkeypatch):
    """A kind whose training breaks: the table still shows every kind, then the command exits with an
    error naming the run, the kind and the exception (a cron job or CI sees a non-zero exit)."""
    settings.RECOMMENDER = LIGHT

    def broken_fit(self, data, validation=None):
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(ItemKNNRecommender, "fit", broken_fit)
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(
            "train_recommenders",
            "--as-of",
            AS_OF.date().isoformat(),
            "--models",
            "trending",
            "also_bought",
            "--no-progress",
            stdout=out,
        )
    run = TrainingRun.objects.get()
    assert str(failure.value) == f"training run {run.pk} failed:\nalso_bought: RuntimeError: killed mid-way"
    text = out.getvalue()
    assert text.startswith(f"Training run {run.pk}: Failed")
    assert re.search(r"^\| trending +\| trending +\| live +\|", text, re.M), text
    assert re.search(r"^\| also_bought +\| itemknn +\| failed +\| - +\|", text, re.M), text
    assert "also_bought: RuntimeError: killed mid-way" in text
    assert live(ModelKind.TRENDING) is not None and live(ModelKind.ALSO_BOUGHT) is None


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
def test_the_same_configuration_retrained_on_newer_data_replaces_the_live_version(shop, settings):
    """Retrains 1, 3 and 10 days apart on a growing history: each goes live, judged by the paired test
    against the live configuration on the same cases (no tolerance to raise)."""
    settings.RECOMMENDER = LIGHT
    kinds = [ModelKind.NEXT_ITEM, ModelKind.ALSO_VIEWED, ModelKind.ALSO_BOUGHT]
    first = train_recommenders(AS_OF - timedelta(days=14), kinds)
    assert all(first.counts["kinds"][k]["status"] == VersionStatus.LIVE for k in kinds), first.counts["kinds"]
    for days in (13, 10, 0):
        run = train_recommenders(AS_OF - timedelta(days=days), kinds)
        for kind in kinds:
            version = run.versions.get(kind=kind)
            assert version.status == VersionStatus.LIVE, (days, kind, version.reason)
            gate = version.metrics["gate"]
            assert gate["p_value"] == 1.0 and gate["live_version"] is not None
            assert "not significantly worse than the live version" in version.reason


@pytest.mark.django_db
def test_another_configuration_is_compared_with_the_live_one_trained_on_the_same_data(shop, settings):
    settings.RECOMMENDER = LIGHT
    train_recommenders(AS_OF - timedelta(days=3), [ModelKind.NEXT_ITEM])
    before = live(ModelKind.NEXT_ITEM)
    settings.RECOMMENDER = {**LIGHT, "NEXT_ITEM_PARAMS": {"weights": [1.0, 0.5, 1.0]}}
    run = train_recommenders(AS_OF, [ModelKind.NEXT_ITEM])
    version = run.versions.get()
    assert version.parameters["weights"] == [1.0, 0.5, 1.0] != before.parameters["weights"]
    assert "fit_live_configuration" in version.timings
    gate = version.metrics["gate"]
    assert gate["live_version"] == before.pk and gate["test"] == "exact McNemar" and 0 <= gate["p_value"] <= 1
    assert gate["n_cases"] == version.metrics["n_cases"]
    assert version.metrics["live"]["n_cases"] == version.metrics["candidate"]["n_cases"]
    assert (version.status == VersionStatus.LIVE) == (gate["p_value"] >= 0.05)


@pytest.mark.django_db
def test_too_few_held_out_cases_keep_the_live_version(shop, settings):
    settings.RECOMMENDER = LIGHT
    train_recommenders(AS_OF, [ModelKind.ALSO_BOUGHT])
    kept = live(ModelKind.ALSO_BOUGHT)
    settings.RECOMMENDER = {**LIGHT, "MIN_HOLDOUT_CASES": 10_000}
    run = train_recommenders(AS_OF, [ModelKind.ALSO_BOUGHT])
    outcome = run.counts["kinds"][ModelKind.ALSO_BOUGHT]
    assert run.status == TrainingStatus.SUCCEEDED and outcome["status"] == "skipped"
    assert outcome["reason"].endswith("the live version stays") and live(ModelKind.ALSO_BOUGHT) == kept


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
