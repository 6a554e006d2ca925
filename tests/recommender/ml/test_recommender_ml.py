"""Non-neural recommenders, datasets, evaluation and the model contract (no database, fast).

The contract test runs over every registered model, including the recurrent ones of
``recommender.ml.sequence`` when that module is importable.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recommender.ml
from recommender.ml.base import CONFIG_FILE, TENSORS_FILE, ModelFileError, top_k
from recommender.ml.data import EVENT_PURCHASE, SessionData
from recommender.ml.datasets import (
    expand_cases,
    load_diginetica,
    load_online_retail,
    load_srgnn_folder,
    load_taobao,
    load_yoochoose_clicks,
    sessions_from_events,
    time_split,
    validation_split,
)
from recommender.ml.evaluation import (
    MISS_RANK,
    accuracy,
    coverage_at_k,
    evaluate_next_item,
    macro_f1,
    majority_baseline,
    metrics_from_ranks,
    target_ranks,
)
from recommender.ml.itemknn import ItemKNNRecommender
from recommender.ml.popularity import PopularityRecommender, SegmentPopularityRecommender, TrendingRecommender
from recommender.ml.registry import available_models, get_model_class, load_model
from recommender.ml.rules import SequentialRulesRecommender, VSKNNRecommender
from recommender.ml.tuning import grid_search
from tests.conftest import REPO, shared_data_path

#: small, fast settings for the contract test (filtered to what each constructor accepts)
FAST_PARAMS = {
    "embedding_dim": 8,
    "hidden_size": 8,
    "epochs": 2,
    "batch_tokens": 64,
    "validation_fraction": 0.0,
    "num_threads": 1,
    "seed": 0,
    "k": 5,
    "sample_size": 20,
    "neighbours": 5,
}


def chain_data(n_repeats: int = 20, seed: int = 0) -> SessionData:
    """Items 0..8 in three chains 0->1->2, 3->4->5, 6->7->8, plus a little noise; with side info."""
    rng = np.random.default_rng(seed)
    sessions, types, times, segs = [], [], [], []
    t = 1_600_000_000.0
    for r in range(n_repeats):
        for c in range(3):
            s = [3 * c, 3 * c + 1, 3 * c + 2]
            if r % 5 == 0:
                s.append(int(rng.integers(0, 9)))
            sessions.append(np.asarray(s))
            types.append(np.asarray([0] * (len(s) - 1) + [2]))
            times.append(t + np.arange(len(s)) * 60.0)
            segs.append(c % 2)
            t += 3600.0
    return SessionData(sessions, 10, event_types=types, timestamps=times, segments=np.asarray(segs))


def make_model(name: str):
    cls = get_model_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in FAST_PARAMS.items() if k in accepted})


ALL_MODELS = available_models()


@pytest.fixture(scope="module")
def data() -> SessionData:
    return chain_data()


HISTORIES = [np.asarray([0, 1]), np.asarray([3]), np.asarray([], dtype=np.int64), np.asarray([6, 7, 6, 7])]
CONTEXT = {"segments": np.asarray([0, 1, 5, 0])}


@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_contract(name: str, data: SessionData, tmp_path: Path) -> None:
    model = make_model(name)
    assert model.fit(data) is model
    scores = model.score_batch(HISTORIES, CONTEXT)
    assert scores.shape == (len(HISTORIES), data.n_items)
    assert scores.dtype == np.float32
    assert not np.isnan(scores).any()

    idx, vals = model.recommend([0, 1], k=3, exclude=[2])
    assert len(idx) <= 3 and len(idx) == len(vals)
    assert 2 not in idx.tolist()
    assert np.all(np.diff(vals) <= 0)

    # save / load round trip, through the class and through the registry
    model.save(tmp_path / "m")
    for loaded in (type(model).load(tmp_path / "m"), load_model(tmp_path / "m")):
        assert type(loaded) is type(model)
        np.testing.assert_array_equal(loaded.score_batch(HISTORIES, CONTEXT), scores)

    # deterministic
    again = make_model(name).fit(data)
    np.testing.assert_array_equal(again.score_batch(HISTORIES, CONTEXT), scores)

    # damage: truncated / corrupted tensors, tampered config
    blob = (tmp_path / "m" / TENSORS_FILE).read_bytes()
    cfg = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    damaged = tmp_path / "damaged"
    damaged.mkdir()

    def load_with(tensor_bytes: bytes, config: dict) -> None:
        (damaged / TENSORS_FILE).write_bytes(tensor_bytes)
        (damaged / CONFIG_FILE).write_text(json.dumps(config))
        with pytest.raises(ModelFileError):
            load_model(damaged)
        with pytest.raises(ModelFileError):
            type(model).load(damaged)

    load_with(blob[: len(blob) // 2], cfg)
    load_with(b"\x00" * 16 + blob[16:], cfg)
    load_with(blob, {**cfg, "format_version": 99})
    load_with(blob, {**cfg, "model": "no-such-model"})
    load_with(blob, {**cfg, "params": {**cfg.get("params", {}), "no_such_param": 1}})
    if "n_items" in cfg:
        load_with(blob, {**cfg, "n_items": cfg["n_items"] + 7})
    (damaged / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelFileError):
        load_model(damaged)


def test_sequential_rules_learn_chains(data: SessionData) -> None:
    model = SequentialRulesRecommender().fit(data)
    for history, expected in (([0, 1], 2), ([3, 4], 5), ([6], 7), ([0, 3, 4], 5), ([2, 3], 4)):
        assert model.recommend(history, k=1)[0].tolist() == [expected], history


@pytest.mark.parametrize(
    "model", [VSKNNRecommender(k=10, sample_size=50), ItemKNNRecommender(neighbours=5)], ids=lambda m: m.name
)
def test_neighbourhood_models_complete_chains(model, data: SessionData) -> None:
    """Order-agnostic co-occurrence: the missing chain member wins once the history is excluded."""
    model.fit(data)
    for history, expected in (([0, 1], [2]), ([3, 5], [4]), ([6], [7, 8]), ([0, 1, 3, 4], [5])):
        idx, _ = model.recommend(history, k=len(expected), exclude=history)
        assert sorted(idx.tolist()) == expected, (model.name, history)


@pytest.mark.parametrize("weighting", ["div", "linear"])
def test_vsknn_recent_index_finds_the_same_neighbours(weighting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scoring looks only at each item's ``sample_size`` most recent sessions; the neighbours and
    scores are those of the whole inverted index (also with ``linear`` weights, where the oldest
    items of a long history weigh 0), and the dense position lookup of small batches gives what
    the sorted one of large batches gives."""
    rng = np.random.default_rng(0)
    data = SessionData([rng.integers(0, 30, rng.integers(1, 8)) for _ in range(400)], 30)
    model = VSKNNRecommender(k=10, sample_size=15, weighting=weighting, item_decay=2.0).fit(data)
    assert np.diff(model._recent_item_sessions.indptr).max() == 15 < np.diff(model._item_sessions.indptr).max()
    histories = [rng.integers(0, 30, n) for n in (1, 3, 12, 25)] + [np.asarray([], dtype=np.int64)]
    fast = model.score_batch(histories)
    model._recent_item_sessions = model._item_sessions
    np.testing.assert_array_equal(fast, model.score_batch(histories))
    monkeypatch.setattr("recommender.ml.rules.DENSE_LOOKUP_CELLS", 0)
    np.testing.assert_array_equal(fast, model.score_batch(histories))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(1, 15),
    sample_size=st.integers(1, 30),
    options=st.sampled_from(
        [
            {},
            {"normalize": True},
            {"weighting": "linear", "item_decay": 2.0},
            {"idf": True, "weighting_score": "linear"},
            {"weighting": "same"},
        ]
    ),
)
def test_vsknn_scores_one_history_as_in_a_batch(seed: int, k: int, sample_size: int, options: dict) -> None:
    """One history (a web request) is scored without sparse matrices: bit for bit what the batch
    path gives it, with unknown items, repeats, empty histories and tied neighbours."""
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(3, 40))
    sessions = [rng.integers(0, n_items, rng.integers(1, 9)) for _ in range(int(rng.integers(5, 300)))]
    model = VSKNNRecommender(k=k, sample_size=sample_size, **options).fit(SessionData(sessions, n_items))
    histories = [rng.integers(-2, n_items + 2, rng.integers(0, 25)) for _ in range(5)]
    batch = model.score_batch([*histories, np.asarray([0])])
    for i, history in enumerate(histories):
        np.testing.assert_array_equal(model.score_batch([history])[0], batch[i])


def test_itemknn_similar_items(data: SessionData) -> None:
    model = ItemKNNRecommender().fit(data)
    idx, _ = model.similar_items(4, k=2)
    assert set(idx.tolist()) == {3, 5}
    assert 4 not in model.similar_items(4, k=9)[0].tolist()
    # one history is scored without sparse matrices: the same scores as in a batch
    rng = np.random.default_rng(0)
    histories = [rng.integers(-1, 11, n) for n in (0, 1, 2, 5, 9, 30)]
    batch = model.score_batch(histories)
    np.testing.assert_array_equal(np.vstack([model.score_batch([h]) for h in histories]), batch)


def test_sequential_rules_weights() -> None:
    model = SequentialRulesRecommender(window=2).fit(SessionData([np.asarray([0, 1, 2, 3])], 4))
    np.testing.assert_allclose(model.score_batch([np.asarray([0])])[0], [0, 1, 0.5, 0])  # 3 is 3 steps away
    np.testing.assert_allclose(model.score_batch([np.asarray([3, 1])])[0], [0, 0, 1, 0.5])  # last item only
    assert not model.score_batch([np.asarray([], dtype=np.int64), np.asarray([1, 7])]).any()  # none, unknown


def test_popularity_models(data: SessionData) -> None:
    pop = PopularityRecommender().fit(data)
    counts = np.bincount(np.concatenate(data.sessions), minlength=data.n_items)
    np.testing.assert_array_equal(pop.score_batch([np.asarray([0])])[0], counts)
    # trending: with a tiny half-life only the newest events count
    data2 = SessionData([np.asarray([0, 0, 0]), np.asarray([1])], 2, timestamps=[np.zeros(3), np.full(1, 86400.0 * 30)])
    trend = TrendingRecommender(half_life_days=1.0).fit(data2)
    assert trend.recommend([], k=1)[0].tolist() == [1]
    assert PopularityRecommender().fit(data2).recommend([], k=1)[0].tolist() == [0]
    # segments: segment 0 buys item 0, segment 1 item 1; unknown segment -> global
    data3 = SessionData([np.asarray([0, 0]), np.asarray([1]), np.asarray([1])], 2, segments=np.asarray([0, 1, 1]))
    seg = SegmentPopularityRecommender(shrinkage=0.1).fit(data3)
    scores = seg.score_batch([np.asarray([])] * 3, {"segments": np.asarray([0, 1, 9])})
    assert scores.argmax(axis=1).tolist() == [0, 1, 0]
    np.testing.assert_allclose(scores[2], [0.5, 0.5])
    np.testing.assert_allclose(seg.score_batch([np.asarray([])])[0], [0.5, 0.5])


# -- evaluation -----------------------------------------------------------------------------


def test_target_ranks_conservative_ties() -> None:
    scores = np.asarray(
        [
            [0.9, 0.5, 0.5, 0.1],  # target 1 ties with item 2 -> rank 3
            [0.9, 0.5, 0.5, 0.1],  # target 0 -> rank 1
            [1.0, 1.0, 1.0, 1.0],  # all equal -> last
            [0.3, -np.inf, 0.2, 0.1],  # -inf target -> miss
            [0.3, 0.2, 0.2, 0.1],  # unknown label -> miss
        ],
        dtype=np.float32,
    )
    ranks = target_ranks(scores, np.asarray([1, 0, 2, 1, -1]))
    assert ranks.tolist() == [3, 1, 4, MISS_RANK, MISS_RANK]


def test_metrics_hand_computed() -> None:
    m = metrics_from_ranks(np.asarray([1, 2, 4, 25]), ks=(3, 20))
    assert m["hr@3"] == pytest.approx(2 / 4)
    assert m["mrr@3"] == pytest.approx((1 + 1 / 2) / 4)
    assert m["hr@20"] == pytest.approx(3 / 4)
    assert m["mrr@20"] == pytest.approx((1 + 1 / 2 + 1 / 4) / 4)
    assert m["ndcg@20"] == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(5)) / 4)


def test_evaluate_next_item_end_to_end(data: SessionData) -> None:
    model = SequentialRulesRecommender().fit(data)
    cases = expand_cases(SessionData([np.asarray([0, 1, 2]), np.asarray([3, 9])], 10), n_known=9)
    assert [p.tolist() for p in cases.prefixes] == [[0], [0, 1], [3]]
    assert cases.labels.tolist() == [1, 2, -1]  # 9 is unknown to the model: a miss, still counted
    res = evaluate_next_item(model, cases, ks=(1, 20), batch_size=2, item_counts=np.arange(10))
    assert res["n_cases"] == 3 and res["unknown_labels"] == 1
    assert res["hr@1"] == pytest.approx(2 / 3)
    assert 0 < res["coverage@20"] <= 1
    assert 0 <= res["pop_percentile@20"] <= 1
    assert coverage_at_k(np.asarray([[0, 1], [1, -1]]), 4) == 0.5


def test_classification_helpers() -> None:
    y_true = np.asarray([0, 0, 1, 2])
    y_pred = np.asarray([0, 1, 1, 1])
    assert accuracy(y_true, y_pred) == 0.5
    # F1: class0 2/3, class1 2*1/(2+2+0)=0.5, class2 0
    assert macro_f1(y_true, y_pred) == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    base = majority_baseline(np.asarray([2, 2, 1]), y_true, labels=[0, 1, 2])
    assert base["majority_class"] == 2
    assert base["accuracy"] == 0.25
    assert base["macro_f1"] == pytest.approx((0 + 0 + 2 / 5) / 3)


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(st.integers(-3, 3), min_size=1, max_size=30),
    k=st.integers(1, 40),
    data=st.data(),
)
def test_property_ranks_agree_with_top_k(scores: list[int], k: int, data) -> None:
    arr = np.asarray(scores, dtype=np.float32)
    target = data.draw(st.integers(0, len(arr) - 1))
    rank = int(target_ranks(arr[None, :], np.asarray([target]))[0])
    assert 1 <= rank <= len(arr)
    assert rank == 1 + (arr > arr[target]).sum() + (arr == arr[target]).sum() - 1
    idx, vals = top_k(arr, k)
    assert len(idx) == min(k, len(arr))
    assert np.all(np.diff(vals) <= 0)
    # a conservative hit@k implies the target really is in any top-k list
    if rank <= k:
        assert target in idx.tolist()
    m = metrics_from_ranks(np.asarray([rank]), ks=(k,))
    assert 0 <= m[f"mrr@{k}"] <= m[f"ndcg@{k}"] <= m[f"hr@{k}"] <= 1


# -- datasets ---------------------------------------------------------------------------------


def test_sessions_from_events_and_time_split() -> None:
    df = pd.DataFrame(
        {
            "key": ["a", "a", "b", "b", "c", "c", "c"],
            "item": ["x", "y", "y", "x", "x", "z", "new"],
            "timestamp": [10, 5, 20, 21, 100, 101, 102],
            "event_type": [0, 1, 0, 2, 0, 0, 2],
        }
    )
    data, index = sessions_from_events(df, event_type="event_type")
    assert [index.decode(s) for s in data.sessions] == [["y", "x"], ["y", "x"], ["x", "z", "new"]]
    assert data.event_types[0].tolist() == [1, 0]
    split = time_split(df, cutoff=50, key="key", item="item", timestamp="timestamp")
    assert len(split.train) == 2 and split.train.n_items == 2
    cases = split.test_cases()
    assert cases.labels.tolist() == [-1, -1]  # z and new never occur in train
    # event mode: customer c's history before the cutoff is context, later events are targets
    split2 = time_split(df, cutoff=102, mode="event")
    assert split2.test_start.tolist() == [2]
    assert [p.tolist() for p in split2.test_cases().prefixes] == [split2.item_index.encode(["x", "z"]).tolist()]


@pytest.mark.parametrize("mode", ["session", "event"])
def test_an_empty_held_out_window_gives_no_cases_not_an_error(mode: str) -> None:
    """A cutoff after every row (a shop quiet since): the test side is empty, with the same side
    information as a non-empty one."""
    df = pd.DataFrame(
        {"key": ["a", "a", "b"], "item": ["x", "y", "x"], "timestamp": [1, 2, 3], "event_type": [0, 1, 0]}
    )
    split = time_split(df, cutoff=10, mode=mode, event_type="event_type")
    assert len(split.train) == 2 and len(split.test) == 0
    assert split.test.timestamps == [] and split.test.event_types == []
    cases = split.test_cases(max_prefix=5)
    assert len(cases) == 0 and cases.context == {"event_types": [], "timestamps": []}


def test_validation_split_takes_most_recent() -> None:
    data = chain_data()
    tr, va = validation_split(data, 0.2)
    assert len(tr) + len(va) == len(data) and tr.n_items == va.n_items == data.n_items
    assert max(t[-1] for t in tr.timestamps) <= min(t[-1] for t in va.timestamps)


def test_grid_search_prefers_better_setting(data: SessionData) -> None:
    tr, va = validation_split(data, 0.2)
    res = grid_search(ItemKNNRecommender, [{"neighbours": 1}, {"neighbours": 5}], tr, expand_cases(va))
    assert res.best_params == {"neighbours": 5} and len(res.trials) == 2


@pytest.mark.data
def test_load_srgnn_folder_counts() -> None:
    ds = load_srgnn_folder(shared_data_path("retailrocket"))
    assert len(ds.train) == ds.stats["raw_train_sessions"]
    assert ds.train.n_events == ds.stats["train_clicks"]
    assert len(ds.test) == ds.stats["test_examples"]


@pytest.mark.data
@pytest.mark.parametrize(
    ("loader", "folder", "has_types"),
    [
        (load_yoochoose_clicks, "yoochoose-clicks-100k", False),
        (load_diginetica, "diginetica-raw-sample", False),
        (load_taobao, "taobao-sample", True),
        pytest.param(load_online_retail, "online-retail", True, marks=pytest.mark.slow),
    ],
    ids=lambda v: getattr(v, "__name__", None) or str(v),
)
def test_raw_event_loaders(loader, folder: str, has_types: bool) -> None:
    split = loader(shared_data_path(folder))
    assert len(split.train) > 0 and len(split.test) > 0
    assert (split.train.event_types is not None) == has_types
    # time-based: nothing in train happens after the cutoff
    assert max(t[-1] for t in split.train.timestamps) < split.cutoff + 1e-6
    for t in split.train.timestamps:
        assert np.all(np.diff(t) >= 0)
    cases = split.test_cases()
    assert len(cases) > 0
    assert all(len(p) == 0 or p.max() < split.train.n_items for p in cases.prefixes)
    assert ((cases.labels == -1) | (cases.labels < split.train.n_items)).all()
    if loader is load_online_retail:
        assert all(np.all(e == EVENT_PURCHASE) for e in split.train.event_types)


# -- no Django in recommender.ml ------------------------------------------------------------------


def test_ml_packages_never_import_django() -> None:
    """Every module of ``recommender.ml`` (subpackages too) and ``segmentation.ml`` imports without Django."""
    import segmentation.ml

    modules = sorted(
        m.name
        for package in (recommender.ml, segmentation.ml)
        for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    )
    assert {"recommender.ml.rules", "recommender.ml.sequence.model", "segmentation.ml.rfm"} <= set(modules)
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "from recommender.ml.registry import available_models; available_models()\n"
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_sequence_model_registered_when_present() -> None:
    if importlib.util.find_spec("recommender.ml.sequence") is None:
        pytest.skip("recommender.ml.sequence not written yet")
    assert {"gru", "lstm"} <= set(ALL_MODELS)


def test_next_item_benchmark_runs_on_a_tiny_folder(tmp_path: Path) -> None:
    import gzip

    from benchmarks.next_item import main

    rng = np.random.default_rng(0)
    lines = [" ".join(str(10 + 3 * c + j) for j in range(3)) for c in rng.integers(0, 10, 300)]  # 30 items
    with gzip.open(tmp_path / "all_train_seq.txt.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    with gzip.open(tmp_path / "test.tsv.gz", "wt") as fh:
        fh.write("prefix\tlabel\n10 11\t12\n13\t14\n99\t13\n13\t99\n")
    out = main([str(tmp_path), "--models", "pop,sr,vsknn,hybrid", "--json", str(tmp_path / "r.json")])
    assert out["dataset"]["unknown_labels"] == 1 and out["dataset"]["empty_prefixes"] == 1
    sr = out["runs"]["sr"][0]["metrics"]
    assert sr["n_cases"] == 4 and sr["hr@20"] == pytest.approx(2 / 4)  # unknown label and empty prefix miss
    assert json.loads((tmp_path / "r.json").read_text())["table"].startswith("| model |")


def test_blend_components_choose_on_one_half_and_score_on_the_other() -> None:
    from benchmarks.blend_components import cross_halves

    # candidate 0 hits the even cases, candidate 1 the odd ones: each half picks the candidate
    # that is right on it, which is then wrong on the other half
    hit = np.array([[1, 0, 1, 0], [0, 1, 0, 1]], dtype=bool)
    rr = hit / 2.0
    hr, mrr, used = cross_halves(hit, rr)
    assert (hr, mrr) == (0.0, 0.0) and used.tolist() == [1, 0, 1, 0]
    # with a group per case pair the same thing happens inside each group
    both = np.array([[1, 1, 1, 0], [0, 0, 1, 1]], dtype=bool)
    hr, mrr, used = cross_halves(both, both / 1.0, np.array([0, 0, 1, 1]))
    assert used.tolist() == [0, 0, 1, 0] and hr == pytest.approx(100 * 3 / 4) and mrr == pytest.approx(100 * 3 / 4)


def test_blend_chooses_weights_on_validation(tmp_path: Path) -> None:
    from recommender.ml.hybrid import BlendRecommender, normalise_scores

    data = chain_data(n_repeats=40)
    gru = {"embedding_dim": 8, "hidden_size": 8, "epochs": 2, "batch_tokens": 64, "num_threads": 1}
    model = BlendRecommender(
        components=[["gru", gru], ["sr", {}], ["vsknn", {"k": 5, "sample_size": 20}]],
        weight_grid=[[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        seed=0,
    ).fit(data)
    # every candidate was scored on the validation split, and the best one kept
    assert [r["weights"] for r in model.weight_validation_] == model.weight_grid
    best = max(model.weight_validation_, key=lambda r: r["hr@20"] + r["mrr@20"])
    assert model.weights_ == best["weights"]
    # the mixture is the weighted sum of the components' distributions
    hs = [np.asarray([0, 1]), np.asarray([3])]
    expected = sum(
        np.float32(w) * normalise_scores(m.score_batch(hs), "sum")
        for w, m in zip(model.weights_, model.models_, strict=True)
        if w
    )
    np.testing.assert_allclose(model.score_batch(hs), expected, rtol=1e-6)
    assert model.recommend([3, 4], k=1)[0].tolist() == [5]
    loaded = load_model(model.save(tmp_path / "blend"))
    assert loaded.weights_ == model.weights_
    np.testing.assert_array_equal(loaded.score_batch(hs), model.score_batch(hs))


def test_normalise_scores() -> None:
    from recommender.ml.hybrid import normalise_scores

    s = np.asarray([[2.0, 1.0, -1e9, 1.0], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(normalise_scores(s, "sum"), [[0.5, 0.25, 0.0, 0.25], [0, 0, 0, 0]])
    np.testing.assert_allclose(normalise_scores(s, "max")[0], [1.0, 0.5, -5e8, 0.5])


def test_blend_networks_share_a_weight_and_differ_in_seed() -> None:
    from recommender.ml.hybrid import BlendRecommender, weight_grid_for

    assert weight_grid_for(["gru", "gru", "sr", "vsknn"], values=(0.0, 1.0)) == [
        [1.0, 1.0, 0.0, 0.0],
        [1.0, 1.0, 0.0, 1.0],
        [1.0, 1.0, 1.0, 0.0],
        [1.0, 1.0, 1.0, 1.0],
    ]
    blend = BlendRecommender(seed=5, time_budget=60.0, component_params={"vsknn": {"k": 7}, "gru": {"epochs": 1}})
    assert [c[0] for c in blend.components] == ["gru", "gru", "sr", "vsknn", "itemknn"]
    nets = blend._build()[:2]
    assert [n.seed for n in nets] == [5, 6] and [n.time_budget for n in nets] == [30.0, 30.0]
    assert all(n.epochs == 1 for n in nets)
    assert blend.components[3][1] == {"item_decay": 2.0, "k": 7}
    with pytest.raises(ValueError):
        BlendRecommender(networks=0)
