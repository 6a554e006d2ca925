"""The shop learns: orders + events -> training run -> gated, versioned, verified model files.

The tests here share one training shop, built once for the module; shops of other shapes (empty,
one order, quiet, new, segmented) are in ``test_training_shops``."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from oscar.core.loading import get_model

from recommender import artifacts
from recommender.abstract_models import ModelKind, TrainingStatus, VersionStatus
from recommender.ml.itemknn import ItemKNNRecommender
from recommender.ml.popularity import PopularityRecommender, TrendingRecommender
from recommender.ml.registry import _MODELS
from recommender.services import preview, versions
from recommender.services.gate import Evaluation, PromotionGate
from recommender.services.training import train_recommenders
from tests.training_shop import AS_OF, LIGHT, build_shop, live, module_data

ModelVersion = get_model("recommender", "ModelVersion")
TrainingRun = get_model("recommender", "TrainingRun")


shop_data = module_data(lambda tmp: build_shop())


@pytest.fixture
def shop(shop_data, db, model_storage):
    """The training shop, built once for the module; what a test changes is rolled back."""
    return shop_data[0]


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
