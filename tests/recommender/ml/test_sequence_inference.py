"""The NumPy forward pass (:mod:`recommender.ml.sequence.inference`) against torch: the same
next-item probabilities for every network variant, and BLAS threads restored after each call."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from recommender.ml.data import SessionData
from recommender.ml.sequence import GRURecommender, LSTMRecommender, model, next_item_probs
from recommender.ml.sequence.inference import NumpySequenceNet, single_threaded_blas
from recommender.ml.sequence.network import SequenceNet
from tests.recommender.ml.test_sequence import TINY, chains

V = 30
INPUTS = {
    "tied, scaled": dict(tied=True, scale=8.0, n_event_types=0, use_time=False, n_segments=0),
    "separate output, dot product": dict(tied=False, scale=None, n_event_types=0, use_time=False, n_segments=0),
    "events, time, segments": dict(tied=True, scale=8.0, n_event_types=3, use_time=True, n_segments=4),
}


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def random_batch(rng: np.random.Generator, n: int, with_unknown: bool):
    """``n`` padded histories of compact ids (0 = unknown, when ``with_unknown``), 1-12 long."""
    lens = rng.integers(1, 13, n)
    x = np.zeros((n, lens.max()), dtype=np.int64)
    for r, length in enumerate(lens):
        x[r, :length] = rng.integers(0 if with_unknown else 1, V + 1, length)
    ev = rng.integers(1, 4, x.shape) * (x > 0)
    tf = np.stack([rng.integers(1, m + 1, x.shape) for m in (24, 7, 12, 20)], -1)
    seg = rng.integers(1, 5, n)
    return x, lens, ev, tf, seg


@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize(
    ("cell", "num_layers", "readout", "repeat"),
    list(itertools.product(["gru", "lstm"], [1, 2], ["attention", "last"], [True, False])),
)
def test_numpy_net_matches_torch(cell: str, num_layers: int, readout: str, repeat: bool, inputs: str) -> None:
    """Randomly initialised networks of every variant; histories of several lengths with unknown items."""
    torch.manual_seed(num_layers)
    net = SequenceNet(V, cell, 8, 6, num_layers, 0.0, 0.0, readout, repeat=repeat, **INPUTS[inputs]).eval()
    with torch.no_grad():  # biases away from PyTorch's symmetric init, so that the gate order matters
        for name, param in net.named_parameters():
            if "bias" in name:
                param.add_(torch.randn_like(param))
    with torch.inference_mode():
        items = net.item_matrix().detach()
    fast = NumpySequenceNet(net, items.numpy())
    x, lens, ev, tf, seg = random_batch(np.random.default_rng(num_layers), 6, with_unknown=True)
    to = torch.from_numpy
    with torch.inference_mode():
        want, _ = next_item_probs(net, items, to(x), to(lens), to(ev), to(tf), to(seg), last_only=True)
    for r, n in enumerate(lens):
        assert_close(fast.probs(x[r, :n], ev[r, :n], tf[r, :n], int(seg[r]))[0], want[r].numpy())


def histories(rng: np.random.Generator) -> list[np.ndarray]:
    """Histories of the 20-item catalogue with items unknown to the model (negative, >= 20)."""
    out = [np.array([0, 1]), np.array([], dtype=np.int64), np.array([-3, 25]), np.array([4, 21, 5, 6])]
    return out + [rng.integers(-2, 23, n) for n in rng.integers(1, 15, 8)]


def context(hs: list[np.ndarray], rng: np.random.Generator) -> dict:
    return {
        "event_types": [rng.integers(0, 3, len(h)) for h in hs],
        "timestamps": [1_300_000_000 + np.cumsum(rng.integers(1, 5000, len(h))) for h in hs],
        "segments": rng.integers(0, 5, len(hs)),
    }


@pytest.mark.parametrize(
    ("cls", "flags"),
    [
        (GRURecommender, {}),
        (GRURecommender, {"repeat": False, "readout": "last", "tied": False}),
        (GRURecommender, {"use_time": True, "use_event_types": True, "use_segments": True, "n_segments": 5}),
        (LSTMRecommender, {"num_layers": 2, "use_time": True}),
        (LSTMRecommender, {"repeat": False, "scale": None, "use_event_types": True}),
    ],
)
def test_serving_path_matches_the_torch_path(monkeypatch, tmp_path, cls, flags: dict) -> None:
    """``score_batch`` of a few histories (NumPy) gives what torch gives for the same batch,
    with unknown items and empty histories, and after a save / load."""
    base = chains(80)
    rng = np.random.default_rng(0)
    data = SessionData(base.sessions, base.n_items, **context(base.sessions, rng))
    fitted = cls(seed=0, **(TINY | {"epochs": 2} | flags)).fit(data)
    hs = histories(rng)
    ctx = context(hs, rng)
    step = model.NUMPY_MAX_BATCH
    chunks = [(hs[a : a + step], {key: v[a : a + step] for key, v in ctx.items()}) for a in range(0, len(hs), step)]
    fast = np.concatenate([fitted.score_batch(*chunk) for chunk in chunks])
    np.testing.assert_array_equal(cls.load(fitted.save(tmp_path / "m")).score_batch(*chunks[0]), fast[:step])
    monkeypatch.setattr(model, "NUMPY_MAX_BATCH", 0)
    assert_close(fast, fitted.score_batch(hs, ctx))
    np.testing.assert_allclose(np.where(fast > model.UNSEEN_SCORE, fast, 0).sum(axis=1), 1.0, rtol=1e-5)


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_blas_is_single_threaded_only_during_the_call() -> None:
    """Overlapping callers: the first to leave does not restore while another is inside, and the
    last restores the process's setting (a worker that also trains keeps its threads)."""
    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        first, second = single_threaded_blas(), single_threaded_blas()
        first.__enter__()
        second.__enter__()
        assert set(blas_threads()) <= {1}
        first.__exit__(None, None, None)
        assert set(blas_threads()) <= {1}
        second.__exit__(None, None, None)
        assert blas_threads() == before


def test_concurrent_scoring_restores_blas_threads() -> None:
    fitted = GRURecommender(seed=0, **(TINY | {"epochs": 1})).fit(chains(40))
    want = fitted.score_batch([np.array([0, 1, 2])])
    errors: list[BaseException] = []

    def score() -> None:
        try:
            for _ in range(50):
                assert_close(fitted.score_batch([np.array([0, 1, 2])]), want)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        threads = [threading.Thread(target=score) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and blas_threads() == before


@pytest.mark.parametrize(
    ("cell", "readout", "repeat", "inputs"),
    [
        ("gru", "attention", True, "events, time, segments"),
        ("gru", "last", False, "tied, scaled"),
        ("lstm", "attention", True, "separate output, dot product"),
    ],
)
def test_stacked_networks_score_as_each_alone(cell: str, readout: str, repeat: bool, inputs: str) -> None:
    """Three networks of one configuration stacked: each row is what that network alone gives."""
    nets, items = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        net = SequenceNet(V, cell, 8, 6, 1, 0.0, 0.0, readout, repeat=repeat, **INPUTS[inputs]).eval()
        with torch.inference_mode():
            items.append(net.item_matrix().detach().numpy())
        nets.append(net)
    stacked = NumpySequenceNet(nets, items)
    x, lens, ev, tf, seg = random_batch(np.random.default_rng(7), 5, with_unknown=True)
    for r, n in enumerate(lens):
        args = (x[r, :n], ev[r, :n], tf[r, :n], int(seg[r]))
        together = stacked.probs(*args)
        for k, net in enumerate(nets):
            assert_close(together[k], NumpySequenceNet(net, items[k]).probs(*args)[0])
    other = SequenceNet(V, cell, 8, 7, 1, 0.0, 0.0, readout, repeat=repeat, **INPUTS[inputs]).eval()
    with pytest.raises(ValueError, match="one configuration"):
        NumpySequenceNet([nets[0], other], [items[0], other.item_matrix().detach().numpy()])


def test_blend_scores_its_network_copies_together(monkeypatch) -> None:
    """A blend's two GRUs (same configuration, different seeds) share one stacked forward pass for a
    web request, with the scores each gives alone; a network of another size is scored alone."""
    from recommender.ml.hybrid import BlendRecommender, normalise_scores

    data = chains(60)
    gru = TINY | {"epochs": 1}
    blend = BlendRecommender(
        components=[["gru", gru], ["gru", gru], ["gru", gru | {"hidden_size": 8}], ["sr", {}]],
        weights=[1.0, 0.5, 0.25, 0.25],
        weight_grid=None,
        seed=0,
    ).fit(data)
    assert [idx for idx, _ in blend._scorers()] == [[0, 1], [2], [3]]
    calls = []
    monkeypatch.setattr(
        NumpySequenceNet,
        "probs",
        lambda self, *a: calls.append(len(self.item_emb)) or NumpySequenceNet._probs(self, *a),
    )
    rng = np.random.default_rng(3)
    for h in histories(rng):
        got = blend.score_batch([h])
        want = sum(
            np.float32(w) * normalise_scores(m.score_batch([h]), "sum")
            for w, m in zip(blend.weights_, blend.models_, strict=True)
        )
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert 2 in calls  # the copies went through one stacked pass
