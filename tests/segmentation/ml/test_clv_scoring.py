"""Scoring one more customer against a run, and why a score column is empty (no database)."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.ml.rfm import empty_score_reasons, quintile_scores, score_against


@pytest.mark.parametrize("seed", range(5))
def test_score_against_equals_scoring_the_population_with_the_newcomer(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pop = rng.integers(1, 8, size=int(rng.integers(1, 60))).astype(float)
    for x in (0.0, 1.0, 3.0, 7.0, 9.0):
        want = quintile_scores(np.append(pop, x))[-1]
        assert score_against(int((pop < x).sum()), int((pop == x).sum()), len(pop)) == want
        # lower is better (recency): "worse" counts the larger values
        want_r = quintile_scores(np.append(pop, x), higher_is_better=False)[-1]
        assert score_against(int((pop > x).sum()), int((pop == x).sum()), len(pop)) == want_r


def test_score_against_by_hand() -> None:
    # 9 customers, 4 worse, none equal: rank 5 of 10, 1 + floor(5 * 4.5 / 10) = 3
    assert score_against(4, 0, 9) == 3
    assert score_against(0, 0, 0) == 3  # alone: the middle score
    with pytest.raises(ValueError):
        score_against(5, 5, 9)


def test_empty_score_reasons_names_the_tie() -> None:
    # 38 of 100 customers have one order: the tie group averages to score 1 and F = 2 stays empty
    freq = np.array([1] * 38 + [2] * 15 + [3] * 12 + list(range(4, 39)), dtype=float)
    scores = quintile_scores(freq)
    assert 2 not in set(scores.tolist())
    reasons = empty_score_reasons(freq, scores, letter="F", unit="number of orders")
    assert reasons == [
        "No customer has F = 2: 38 of 100 customers (38 %) have the same number of orders (1), "
        "and tied customers share one score (F = 1)."
    ]
    assert empty_score_reasons(np.arange(10.0), quintile_scores(np.arange(10.0)), letter="F", unit="orders") == []
