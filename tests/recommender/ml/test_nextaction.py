"""The next-action model (:mod:`recommender.ml.nextaction`): tiny data, CPU, no database."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.ml.base import ModelFileError, read_model_files, write_model_files
from recommender.ml.intent import N_GAP, PURCHASE, IntentScorer, actions_of, features
from recommender.ml.nextaction import NextActionModel


def test_next_action_beats_majority(tmp_path) -> None:
    # views mostly; a basket addition is always followed by a purchase, and every
    # third view of a user is followed by a basket addition
    rng = np.random.default_rng(0)
    seqs, times = [], []
    for _ in range(120):
        s, t = [], []
        now = 1_500_000_000
        for _ in range(int(rng.integers(8, 20))):
            if s and s[-1] == 1:
                s.append(2)
            elif len(s) >= 2 and s[-1] == 0 and s[-2] == 0 and rng.random() < 0.7:
                s.append(1)
            else:
                s.append(0)
            now += int(rng.integers(10, 600))
            t.append(now)
        seqs.append(np.array(s))
        times.append(np.array(t))
    train, test = (seqs[:90], times[:90]), (seqs[90:], times[90:])
    m = NextActionModel(hidden_size=16, epochs=30, lr=0.02, seed=0, num_threads=1).fit(*train)
    res = m.evaluate(*test)
    assert res["accuracy"] > res["majority_accuracy"] + 0.05
    assert res["macro_f1"] > res["majority_macro_f1"] + 0.3
    loaded = NextActionModel.load(m.save(tmp_path / "na"))
    np.testing.assert_array_equal(
        loaded.predict_proba(test[0][:3], test[1][:3]), m.predict_proba(test[0][:3], test[1][:3])
    )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_numpy_scorer_gives_the_networks_probabilities(tmp_path, cell) -> None:
    """What the shop serves (NumPy, no torch) is what was trained: the same probabilities after
    streams of any length, longer ones cut to the network's window."""
    rng = np.random.default_rng(1)
    types = [rng.integers(0, 3, size=int(n)) for n in rng.integers(1, 40, size=30)]
    times = [np.cumsum(rng.integers(5, 5000, size=len(t))) + 1_600_000_000 for t in types]
    items = [rng.integers(0, 6, size=len(t)) for t in types]
    m = NextActionModel(hidden_size=12, epochs=2, cell=cell, max_len=15, seed=0, num_threads=1)
    m.fit(types, times, items)
    scorer = IntentScorer.load(m.save(tmp_path / cell))
    expected = m.predict_proba(types, times, items)
    got = np.stack([scorer.proba(t, s, i) for t, s, i in zip(types, times, items, strict=True)])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert scorer.intent(types[0], times[0], items[0]) == pytest.approx(float(expected[0, 1:3].sum()), abs=1e-5)


def test_a_model_file_with_embedding_tables_of_other_sizes_is_refused(tmp_path) -> None:
    m = NextActionModel(hidden_size=4, epochs=1, cell="lstm", max_len=5, seed=0, num_threads=1)
    m.fit([np.array([0, 1, 2, 0])] * 4, [np.arange(4) * 60 + 1_600_000_000] * 4)
    config, tensors = read_model_files(m.save(tmp_path / "ok"), "next_action")
    tensors["net.embs.1.weight"] = tensors["net.embs.1.weight"][:-1]  # one hour too few
    write_model_files(tmp_path / "broken", "next_action", config, tensors)
    with pytest.raises(ModelFileError, match="embedding tables"):
        IntentScorer.load(tmp_path / "broken")
    scorer = IntentScorer.load(tmp_path / "ok")
    for bad in (3, -1):  # an event type the network has no embedding for is refused, not read elsewhere
        with pytest.raises(ValueError, match="event types"):
            scorer.proba(np.array([0, bad]), np.array([0.0, 60.0]), np.array([1, 2]))


# (product, time, event type) rows, oldest first; equal times make one order's lines
row = st.tuples(st.integers(1, 6), st.integers(0, 5).map(float), st.sampled_from([0, 1, 2]))
rows_strategy = st.lists(row, max_size=40).map(lambda rows: sorted(rows, key=lambda r: r[1]))


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy, limit=st.integers(1, 25))
def test_a_limited_action_stream_is_the_end_of_the_whole_one(rows, limit) -> None:
    whole = actions_of(rows)
    one_order = [i and r[2] == rows[i - 1][2] == PURCHASE and r[1] == rows[i - 1][1] for i, r in enumerate(rows)]
    assert len(whole[0]) == len(rows) - sum(map(bool, one_order))
    for full, tail in zip(whole, actions_of(rows, limit), strict=True):
        np.testing.assert_array_equal(tail, full[-limit:])


@settings(max_examples=300, deadline=None)
@given(times=st.lists(st.integers(0, 2**40), min_size=1, max_size=30))
def test_each_gap_falls_in_its_power_of_two_bucket(times) -> None:
    """Bucket k + 1 holds the gaps of 2**k - 1 to 2**(k + 1) - 2 seconds (the last bucket all longer
    ones; a clock going back counts as no gap), and the first event has a bucket of its own."""
    f = features(np.zeros(len(times), dtype=np.int64), np.array(times), None, None)
    expected = [N_GAP] + [min((max(b - a, 0) + 1).bit_length(), N_GAP - 1) for a, b in itertools.pairwise(times)]
    assert f[:, 2].tolist() == expected
    assert f[:, 1].tolist() == [t % 86400 // 3600 + 1 for t in times]
