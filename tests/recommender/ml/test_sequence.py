"""The recurrent next-item models (:mod:`recommender.ml.sequence`): tiny data, CPU, no database."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.ml.base import ModelFileError
from recommender.ml.data import SessionData
from recommender.ml.sequence import GRURecommender, LSTMRecommender, SequenceRecommender

TINY = dict(
    embedding_dim=16,
    hidden_size=16,
    epochs=15,
    batch_tokens=128,
    lr=0.03,
    dropout=0.0,
    readout_dropout=0.0,
    patience=100,
    validation_fraction=0.0,
    num_threads=1,
    scale=8.0,
)


def chains(n_sessions: int = 150, seed: int = 0) -> SessionData:
    """Sessions walking one of four chains 0->1->2->3, 4->5->6->7, ... from a random start."""
    rng = np.random.default_rng(seed)
    sessions = []
    for _ in range(n_sessions):
        c = int(rng.integers(4))
        start = int(rng.integers(3))
        length = int(rng.integers(2, 5 - start))
        sessions.append(np.arange(4 * c + start, 4 * c + start + length))
    return SessionData(sessions, n_items=20)


@pytest.fixture(scope="module")
def fitted() -> GRURecommender:
    return GRURecommender(seed=1, **TINY).fit(chains())


def test_learns_chains(fitted: GRURecommender) -> None:
    for a, b, c in [(0, 1, 2), (4, 5, 6), (9, 10, 11)]:
        assert fitted.recommend([a], k=1)[0][0] == b
        assert fitted.recommend([a, b], k=1)[0][0] == c
    scores = fitted.score_batch([np.array([0, 1]), np.array([12])])
    assert scores.shape == (2, 20) and scores.dtype == np.float32
    # items never seen in training (16..19) rank below every trained item
    assert scores[:, 16:].max() < scores[:, :16].min()


def test_lstm_and_attention_free_readout_learn() -> None:
    m = LSTMRecommender(seed=0, readout="last", **TINY).fit(chains())
    assert m.name == "lstm" and m.cell == "lstm"
    assert m.recommend([4, 5], k=1)[0][0] == 6


def test_deterministic_with_seed() -> None:
    data = chains(60)
    small = TINY | {"epochs": 3}
    a = GRURecommender(seed=3, **small).fit(data).score_batch([np.array([0, 1])])
    b = GRURecommender(seed=3, **small).fit(data).score_batch([np.array([0, 1])])
    c = GRURecommender(seed=4, **small).fit(data).score_batch([np.array([0, 1])])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unknown_and_empty_histories(fitted: GRURecommender) -> None:
    s = fitted.score_batch([np.array([], dtype=np.int64), np.array([18, 19]), np.array([0, 19, 1])])
    assert np.isfinite(s).all()
    # unknown items are ignored: [0, 19, 1] scores like [0, 1]
    np.testing.assert_allclose(s[2], fitted.score_batch([np.array([0, 1])])[0], rtol=1e-5, atol=1e-5)


def test_save_load_round_trip(tmp_path, fitted: GRURecommender) -> None:
    fitted.save(tmp_path / "m")
    loaded = GRURecommender.load(tmp_path / "m")
    hs = [np.array([0, 1]), np.array([5]), np.array([8, 9, 10])]
    np.testing.assert_array_equal(loaded.score_batch(hs), fitted.score_batch(hs))
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model"] == "gru"
    with pytest.raises(ModelFileError):
        LSTMRecommender.load(tmp_path / "m")


def test_corrupted_files_raise(tmp_path, fitted: GRURecommender) -> None:
    d = fitted.save(tmp_path / "m")
    raw = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError):
        GRURecommender.load(d)
    d2 = fitted.save(tmp_path / "m2")
    (d2 / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError):
        GRURecommender.load(d2)
    # tensors that do not fit the configuration
    d3 = fitted.save(tmp_path / "m3")
    cfg = json.loads((d3 / "config.json").read_text())
    cfg["net_params"]["hidden_size"] = 7
    (d3 / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError):
        GRURecommender.load(d3)


def test_optional_inputs_toggle(tmp_path) -> None:
    base = chains(80)
    rng = np.random.default_rng(0)
    ev = [rng.integers(0, 3, len(s)) for s in base.sessions]
    ts = [1_300_000_000 + np.cumsum(rng.integers(1, 5000, len(s))) for s in base.sessions]
    seg = rng.integers(0, 5, len(base.sessions))
    data = SessionData(base.sessions, base.n_items, event_types=ev, timestamps=ts, segments=seg)
    ctx = {"event_types": [np.array([0, 1])], "timestamps": [np.array([1_300_000_000, 1_300_000_100])], "segments": [2]}
    small = TINY | {"epochs": 2}
    for flags in [
        {},
        {"use_event_types": True},
        {"use_time": True},
        {"use_segments": True, "n_segments": 5},
        {"use_event_types": True, "use_time": True, "use_segments": True, "n_segments": 5},
    ]:
        m = GRURecommender(seed=0, **small, **flags).fit(data)
        s = m.score_batch([np.array([0, 1])], ctx)
        assert s.shape == (1, 20) and np.isfinite(s).all()
        assert m.score_batch([np.array([0, 1])]).shape == (1, 20)  # missing context is tolerated
        loaded = GRURecommender.load(m.save(tmp_path / f"m{len(flags)}{sorted(flags)}"))
        np.testing.assert_array_equal(loaded.score_batch([np.array([0, 1])], ctx), s)
    with pytest.raises(ValueError):
        GRURecommender(use_time=True, **small).fit(base)


def test_validation_early_stopping_and_search() -> None:
    data = chains(200)
    m = GRURecommender(
        seed=0,
        **(TINY | {"epochs": 4, "validation_fraction": 0.2}),
        search_space=[{"hidden_size": 8}, {"hidden_size": 16}],
        search_fraction=1.0,
    ).fit(data)
    assert m.chosen_params_["hidden_size"] in (8, 16) and m.chosen_params_["best_epoch"] == m.best_epoch_
    assert len(m.search_results_) == 2 and 1 <= m.best_epoch_ <= 4
    assert all("mrr" in row for row in m.history_)


def test_sampled_softmax_then_full_softmax() -> None:
    # 60 items so that 8 negatives make a sampled softmax (it is used when n_items > 4 * n_negatives)
    rng = np.random.default_rng(0)
    sessions = [np.arange(s, s + 3) % 60 for s in rng.integers(0, 60, 400)]
    data = SessionData(sessions, n_items=60)
    params = TINY | {"epochs": 8, "validation_fraction": 0.2, "n_negatives": 8, "final_full_epochs": 2}
    m = GRURecommender(seed=0, **params).fit(data)
    assert m.recommend([10, 11], k=1)[0][0] == 12
    assert 0 <= m.full_softmax_epochs_ <= 2
    assert any(row.get("full_softmax") for row in m.history_)


def test_bad_cell() -> None:
    with pytest.raises(ValueError):
        SequenceRecommender(cell="rnn")


def test_repeat_mechanism_learns_to_return_to_a_viewed_item() -> None:
    """Sessions ``[a, b, a]`` with random a != b: the next item is the one viewed two steps ago."""
    rng = np.random.default_rng(0)
    pairs = [rng.choice(30, 2, replace=False) for _ in range(300)]
    data = SessionData([np.array([a, b, a]) for a, b in pairs], n_items=30)
    model = GRURecommender(seed=0, repeat=True, **(TINY | {"epochs": 8})).fit(data)
    histories = [np.array([a, b]) for a, b in (rng.choice(30, 2, replace=False) for _ in range(50))]
    top = [model.recommend(h, k=1)[0][0] for h in histories]
    assert np.mean([t == h[0] for t, h in zip(top, histories, strict=True)]) >= 0.95
    # a proper distribution over the catalogue: the repeat share plus the softmax share sum to one
    np.testing.assert_allclose(model.score_batch(histories[:3]).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("readout", ["attention", "last"])
def test_last_prefix_shortcut_matches_the_general_path(readout: str) -> None:
    import torch

    from recommender.ml.sequence import next_item_probs

    m = GRURecommender(seed=0, readout=readout, **(TINY | {"epochs": 2})).fit(chains(80))
    x = torch.tensor([[1, 2, 3, 0], [5, 6, 7, 8], [9, 0, 0, 0]])
    lens = torch.tensor([3, 4, 1])
    with torch.inference_mode():
        items = m._net.item_matrix()
        everywhere, _ = next_item_probs(m._net, items, x, lens)
        last, _ = next_item_probs(m._net, items, x, lens, last_only=True)
    rows = torch.cumsum(lens, 0) - 1  # the last real prefix of each row among the selected positions
    torch.testing.assert_close(last, everywhere[rows], rtol=1e-5, atol=1e-6)


def test_training_continues_on_the_validation_split(tmp_path) -> None:
    """The most recent sessions (the carved validation split) bring a new chain 16 -> 17 -> 18:
    early stopping measures without it, then one pass over the split teaches it."""
    recent = [np.array([16, 17, 18]) if i % 2 else s for i, s in enumerate(chains(40, seed=1).sessions)]
    data = SessionData(chains(150).sessions + recent, n_items=20)
    params = TINY | {"epochs": 6, "validation_fraction": 40 / 190, "batch_tokens": 16}
    kept_out = GRURecommender(seed=0, refit=False, **params).fit(data)
    learnt = GRURecommender(seed=0, **params).fit(data)
    assert kept_out.refit_targets_ == 0 and learnt.refit_targets_ == sum(len(s) - 1 for s in recent)
    # the same early stopping (new items are left out of its rankings)
    assert [r | {"seconds": 0} for r in learnt.history_] == [r | {"seconds": 0} for r in kept_out.history_]
    before, after = kept_out.score_batch([np.array([16, 17])])[0], learnt.score_batch([np.array([16, 17])])[0]
    assert before[18] < 0.05 and after.argmax() == 18 and after[18] > 0.25
    # items never learnt (random embeddings) are not recommended unless viewed, also after a save / load
    assert kept_out.score_batch([np.array([4])])[0, 16:19].max() == 0 and learnt.untrained_ is None
    assert kept_out.score_batch([np.array([4, 16])])[0, 16] > 0  # returning to one stays possible
    loaded = GRURecommender.load(kept_out.save(tmp_path / "kept_out"))
    np.testing.assert_array_equal(loaded.untrained_, kept_out.untrained_)
    assert learnt.recommend([5], k=1)[0][0] == 6  # the old chains are still known
    # the same step by hand: a caller that chose something on the split first, then continues
    by_hand = GRURecommender(seed=0, refit=False, **params)
    by_hand.fit(SessionData(data.sessions[:150], 20), SessionData(data.sessions[150:], 20))
    by_hand.continue_training(SessionData(data.sessions[150:], 20))
    assert by_hand.recommend([16, 17], k=1)[0][0] == 18 and by_hand.refit_targets_ == learnt.refit_targets_
