"""The next-action model (:mod:`recommender.ml.nextaction`): tiny data, CPU, no database."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.ml.intent import IntentScorer
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
