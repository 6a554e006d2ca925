"""Item-to-item collaborative filtering ("customers who viewed this also viewed").

Similarity is the cosine between item columns of the binary sequence x item matrix
``X`` (two items are similar when they occur in the same sessions/customers)::

    sim(i, j) = |S_i ∩ S_j| / (sqrt(|S_i| * |S_j|) + shrink)

Only the ``neighbours`` most similar items of each item are kept (a sparse matrix).
A history is scored as the similarity-weighted sum over its items, the most recent item
weighing 1 and each step back ``recency_decay`` times less.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from recommender.ml._utils import (
    config_int,
    csr_from_tensors,
    csr_rows_dense,
    csr_tensors,
    csr_top_n,
    history_matrix,
    largest_weight_per_item,
    sessions_matrix,
)
from recommender.ml.base import Recommender, register, top_k
from recommender.ml.data import SessionData


def recency_weights(length: int, decay: float) -> np.ndarray:
    """Weights of a history's positions (oldest first): ``decay ** steps_back``; last item = 1."""
    return np.power(float(decay), np.arange(length - 1, -1, -1, dtype=np.float64)).astype(np.float32)


@register
class ItemKNNRecommender(Recommender):
    """Cosine item-item neighbourhood model over co-occurrence in sequences."""

    name = "itemknn"

    def __init__(self, neighbours: int = 100, shrink: float = 0.0, recency_decay: float = 0.5) -> None:
        self.neighbours = neighbours
        self.shrink = shrink
        self.recency_decay = recency_decay

    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        self.n_items_ = data.n_items
        x = sessions_matrix(data.sessions, data.n_items, binary=True)
        co = (x.T @ x).tocsr().astype(np.float32)  # item x item co-occurrence counts
        support = np.asarray(x.sum(axis=0)).ravel().astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
        norm = np.sqrt(support[rows] * support[co.indices]) + np.float32(self.shrink)
        co.data = (co.data / norm).astype(np.float32)
        self.similarity_ = csr_top_n(co, self.neighbours)
        return self

    def score_batch(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> np.ndarray:
        if len(histories) == 1:  # serving: the same sums without building sparse matrices
            return self._score_one(np.asarray(histories[0], dtype=np.int64))[None, :]
        weights = [recency_weights(len(h), self.recency_decay) for h in histories]
        h = history_matrix(histories, self.n_items_, weights)
        return (h @ self.similarity_).toarray().astype(np.float32, copy=False)

    def _score_one(self, history: np.ndarray) -> np.ndarray:
        weights = recency_weights(len(history), self.recency_decay)
        items, weights = largest_weight_per_item(history, weights, self.n_items_)
        return csr_rows_dense(self.similarity_, items, weights, self.n_items_)

    def similar_items(self, item: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items with the highest cosine similarity to ``item`` (never ``item`` itself)."""
        row = self.similarity_.getrow(int(item))
        scores = np.full(self.n_items_, -np.inf, dtype=np.float32)
        scores[row.indices] = row.data
        return top_k(scores, k)

    def get_config(self) -> dict[str, Any]:
        return {"params": self.get_params(), "n_items": self.n_items_}

    def get_tensors(self) -> dict[str, np.ndarray]:
        return csr_tensors("similarity", self.similarity_)

    def set_state(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        self.n_items_ = config_int(config, "n_items")
        self.similarity_ = csr_from_tensors(tensors, "similarity", (self.n_items_, self.n_items_))


__all__ = ["ItemKNNRecommender", "recency_weights"]
