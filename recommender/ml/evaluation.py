"""Full-ranking evaluation of next-item models, and next-action classification metrics.

Every test case ranks the target against *all* items (no sampled negatives). Ties are
counted against the target (conservative)::

    rank = 1 + #{items scoring strictly higher} + #{other items scoring exactly the same}

so a model that gives every item the same score ranks every target last. A target
unknown to training (label ``-1``), or whose score is not finite, is a miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recommender.ml.base import Recommender
from recommender.ml.datasets import NextItemCases, expand_cases

__all__ = [
    "MISS_RANK",
    "accuracy",
    "coverage_at_k",
    "evaluate_next_item",
    "expand_cases",
    "macro_f1",
    "majority_baseline",
    "metrics_from_ranks",
    "paired_worse_test",
    "per_case",
    "per_class_f1",
    "popularity_percentiles",
    "rank_cases",
    "summarise_ranks",
    "target_ranks",
]


#: rank given to a target that cannot be ranked (unknown to training, non-finite score):
#: beyond every cut-off, even for catalogues smaller than K
MISS_RANK = np.iinfo(np.int32).max


def target_ranks(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Conservative 1-based rank of ``labels[b]`` in ``scores[b]``; misses get :data:`MISS_RANK`.

    ``scores`` is ``(B, n_items)``; a label ``< 0`` or ``>= n_items`` or a non-finite
    target score is a miss.
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels, dtype=np.int64)
    n = scores.shape[1]
    ranks = np.full(len(labels), MISS_RANK, dtype=np.int64)
    ok = (labels >= 0) & (labels < n)
    if not ok.any():
        return ranks
    rows = np.flatnonzero(ok)
    target = scores[rows, labels[rows]]
    finite = np.isfinite(target)
    rows, target = rows[finite], target[finite]
    # items >= target (the target itself included) = 1 + higher + other ties
    ranks[rows] = (scores[rows] >= target[:, None]).sum(axis=1)
    return ranks


def per_case(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Each case's share of ``metric`` (``hr@K``, ``mrr@K`` or ``ndcg@K``): their mean is the metric.

    ``hr@K`` gives 1.0 for a hit in the top K, else 0.0; ``mrr@K`` 1/rank for a hit; ``ndcg@K``
    1/log2(rank + 1) for a hit."""
    name, _, k = metric.partition("@")
    if name not in ("hr", "mrr", "ndcg") or not k.isdigit():
        raise ValueError(f"unknown metric {metric!r}: use hr@K, mrr@K or ndcg@K")
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks <= int(k)
    if name == "hr":
        return hit.astype(np.float64)
    gain = 1.0 / ranks if name == "mrr" else 1.0 / np.log2(ranks + 1.0)
    return np.where(hit, gain, 0.0)


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (10, 20)) -> dict[str, float]:
    """HR@K (= P@K / Recall@K of SR-GNN tables), MRR@K and NDCG@K as fractions in [0, 1]."""
    out: dict[str, float] = {"n_cases": float(len(ranks))}
    if len(ranks) == 0:
        return out
    for k in ks:
        for name in ("hr", "mrr", "ndcg"):
            out[f"{name}@{k}"] = float(per_case(ranks, f"{name}@{k}").mean())
    return out


def paired_worse_test(candidate: np.ndarray, reference: np.ndarray, metric: str) -> dict[str, Any]:
    """One-sided paired test of "the candidate is worse than the reference" on the same cases.

    ``candidate`` and ``reference`` are :func:`per_case` values of ``metric`` on identical cases.
    Hit rates are 0/1 per case: the exact McNemar test (a binomial test on the cases where exactly
    one of the two hits). MRR and NDCG: the Wilcoxon signed-rank test. Cases where both score the
    same carry no evidence either way; with none left the p-value is 1.
    """
    from scipy import stats

    candidate, reference = np.asarray(candidate, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if candidate.shape != reference.shape:
        raise ValueError("the candidate and the reference must be scored on the same cases")
    diff = candidate - reference
    better, worse = int((diff > 0).sum()), int((diff < 0).sum())
    binary = metric.startswith("hr@")
    test = "exact McNemar" if binary else "Wilcoxon signed-rank"
    if better + worse == 0:
        p_value = 1.0
    elif binary:
        p_value = stats.binomtest(better, better + worse, 0.5, alternative="less").pvalue
    else:
        p_value = stats.wilcoxon(candidate, reference, zero_method="wilcox", alternative="less").pvalue
    return {
        "test": test,
        "metric": metric,
        "p_value": float(p_value),
        "n_cases": len(diff),
        "candidate": float(candidate.mean()) if len(diff) else float("nan"),
        "reference": float(reference.mean()) if len(diff) else float("nan"),
        "candidate_better": better,
        "reference_better": worse,
    }


def popularity_percentiles(item_counts: np.ndarray) -> np.ndarray:
    """Per item, the share of items with a strictly lower training count (0 = rarest, ~1 = top)."""
    counts = np.asarray(item_counts)
    sorted_counts = np.sort(counts)
    return (np.searchsorted(sorted_counts, counts, side="left") / max(len(counts), 1)).astype(np.float64)


def _top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores of each row (unordered; non-finite scores never chosen
    because they are replaced by a -1 marker)."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    finite = np.isfinite(np.take_along_axis(scores, top, axis=1))
    return np.where(finite, top, -1)


def coverage_at_k(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalogue appearing in at least one recommendation list (``-1`` = empty slot)."""
    seen = np.unique(recommended[recommended >= 0])
    return float(len(seen) / max(n_items, 1))


def evaluate_next_item(
    model: Recommender,
    cases: NextItemCases,
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
    item_counts: np.ndarray | None = None,
    coverage_k: int = 20,
) -> dict[str, Any]:
    """Score every case with ``model.score_batch`` in chunks and return the metrics.

    Returns fractions: ``hr@K``, ``mrr@K``, ``ndcg@K`` for each K, ``coverage@{coverage_k}``,
    and ``pop_percentile@{coverage_k}`` (mean training-popularity percentile of recommended
    items; needs ``item_counts``), plus ``n_cases`` and ``unknown_labels``.
    """
    ranks, rec = rank_cases(model, cases, batch_size, coverage_k)
    return summarise_ranks(ranks, rec, cases.labels, model.n_items_, ks, item_counts, coverage_k)


def summarise_ranks(
    ranks: np.ndarray,
    recommended: np.ndarray,
    labels: np.ndarray,
    n_items: int,
    ks: Sequence[int] = (10, 20),
    item_counts: np.ndarray | None = None,
    coverage_k: int = 20,
) -> dict[str, Any]:
    """The metrics of :func:`evaluate_next_item` from :func:`rank_cases` output (any subset of rows;
    ``recommended`` holds each case's top ``coverage_k``, fewer columns for a smaller catalogue)."""
    out: dict[str, Any] = metrics_from_ranks(ranks, ks)
    out["n_cases"] = len(ranks)
    out["unknown_labels"] = int((np.asarray(labels) < 0).sum())
    out[f"coverage@{coverage_k}"] = coverage_at_k(recommended, n_items)
    if item_counts is not None and recommended.size:
        pct = popularity_percentiles(item_counts)
        valid = recommended[recommended >= 0]
        out[f"pop_percentile@{coverage_k}"] = float(pct[valid].mean()) if valid.size else float("nan")
    return out


def rank_cases(
    model: Recommender,
    cases: NextItemCases,
    batch_size: int = 1024,
    top_k: int = 20,
    exclude: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each case's conservative target rank (:func:`target_ranks`) and its ``top_k`` items
    (``(n, top_k)``, unordered, ``-1`` for empty slots), scoring ``batch_size`` cases at a time.
    ``exclude[i]``: item indices case ``i`` may not recommend (as ``Recommender.recommend``'s
    ``exclude``): they score ``-inf``, so an excluded target is a miss."""
    n = len(cases)
    ranks = np.empty(n, dtype=np.int64)
    recommended: list[np.ndarray] = []
    n_items = model.n_items_
    for a in range(0, n, batch_size):
        b = min(a + batch_size, n)
        ctx = _slice_context(cases.context, a, b)
        scores = model.score_batch(cases.prefixes[a:b], ctx or None)
        if scores.shape != (b - a, n_items):
            raise ValueError(f"score_batch returned {scores.shape}, expected {(b - a, n_items)}")
        if exclude is not None:
            scores = _excluded(scores, exclude[a:b])
        ranks[a:b] = target_ranks(scores, cases.labels[a:b])
        recommended.append(_top_k_rows(scores, top_k))
    rec = np.concatenate(recommended) if recommended else np.empty((0, top_k), dtype=np.int64)
    return ranks, rec


def _excluded(scores: np.ndarray, exclude: Sequence[np.ndarray]) -> np.ndarray:
    """``scores`` with ``exclude[r]`` set to ``-inf`` in row ``r`` (indices outside the catalogue ignored)."""
    lengths = [len(e) for e in exclude]
    if not sum(lengths):
        return scores
    scores = scores.copy()  # a model's own array is never written to
    rows = np.repeat(np.arange(len(exclude)), lengths)
    cols = np.concatenate([np.asarray(e, dtype=np.int64) for e in exclude])
    ok = (cols >= 0) & (cols < scores.shape[1])
    scores[rows[ok], cols[ok]] = -np.inf
    return scores


def _slice_context(context: dict, a: int, b: int) -> dict:
    return {key: val[a:b] for key, val in context.items()}


# -- next-action classification ---------------------------------------------------------------


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of exact matches."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int] | None = None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: classes in ``y_true`` or ``y_pred``).

    A class with no true and no predicted member scores F1 = 0 only if it is listed in ``labels``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    if len(classes) == 0:
        return float("nan")
    return float(np.mean(per_class_f1(y_true, y_pred, classes)))


def per_class_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int]) -> list[float]:
    """F1 of each class in ``labels`` (0 for a class with no true and no predicted member)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    f1s = []
    for c in labels:
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        denom = 2 * tp + fp + fn
        f1s.append(float(2 * tp / denom) if denom else 0.0)
    return f1s


def majority_baseline(y_train: np.ndarray, y_test: np.ndarray, labels: Sequence[int] | None = None) -> dict[str, float]:
    """Accuracy and macro-F1 of always predicting the most frequent training class (ties: smallest)."""
    values, counts = np.unique(np.asarray(y_train), return_counts=True)
    majority = values[np.argmax(counts)]
    pred = np.full(len(y_test), majority)
    return {
        "majority_class": majority.item(),
        "accuracy": accuracy(y_test, pred),
        "macro_f1": macro_f1(y_test, pred, labels),
    }
