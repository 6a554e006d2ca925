"""Session-based nearest-neighbour and rule models (Ludewig & Jannach, "Evaluation of
session-based recommendation algorithms", 2018).

* :class:`SequentialRulesRecommender` (SR): item -> later item rules within ``window``
  steps of a session, weighted ``1 / steps apart``; scored from the last item only.
* :class:`VSKNNRecommender` (V-SKNN): the current session is compared to past sessions
  that share an item with it (the ``sample_size`` most recent of them), each shared item
  weighted by its position in the current session (recent = heavier); the ``k`` most similar
  sessions vote for their items with their similarity.

Both are fully vectorised with scipy.sparse (no Python loop per test case).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from recommender.ml._utils import (
    config_int,
    csr_from_tensors,
    csr_tensors,
    csr_top_n,
    history_matrix,
    largest_weight_per_item,
    ranges,
    require,
    row_ranks,
)
from recommender.ml.base import ModelFileError, Recommender, register
from recommender.ml.data import SessionData


def transition_rules(sessions: Sequence[np.ndarray], n_items: int, window: int = 10) -> sp.csr_matrix:
    """Sparse ``(n_items, n_items)`` matrix: ``rules[a, b] += 1 / gap`` for ``b`` following ``a`` within ``window``."""
    seqs = [s for s in sessions if len(s) > 1]
    if not seqs:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    index = np.int32 if n_items <= np.iinfo(np.int32).max else np.int64
    items = np.concatenate(seqs).astype(index, copy=False)
    sid = np.repeat(np.arange(len(seqs), dtype=np.int32), [len(s) for s in seqs])
    # one gap at a time: its pair counts as a sparse matrix, added (times 1 / gap, in float64) to the
    # sum; memory stays about that of the result instead of every (row, col, value) triple of all gaps
    total = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    for gap in range(1, window + 1):
        same = sid[:-gap] == sid[gap:]
        if not same.any():
            break
        rows, cols = items[:-gap][same], items[gap:][same]
        counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_items, n_items))  # duplicates summed
        del rows, cols, same
        total = total + counts * (1.0 / gap)
        del counts
    m = total.astype(np.float32)
    m.sum_duplicates()
    return m


@register
class SequentialRulesRecommender(Recommender):
    """Weighted "B follows A" rules; ``score(j | history) = rules[history[-1], j]``.

    For every pair of positions ``i < j`` of a training session with ``j - i <= window``,
    ``rules[s[i], s[j]] += 1 / (j - i)``. ``max_rules`` keeps only the strongest rules per item.
    """

    name = "sr"

    def __init__(self, window: int = 10, max_rules: int | None = None) -> None:
        self.window = window
        self.max_rules = max_rules

    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        self.n_items_ = data.n_items
        rules = transition_rules(data.sessions, self.n_items_, self.window)
        self.rules_ = csr_top_n(rules, self.max_rules) if self.max_rules else rules
        return self

    def score_batch(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> np.ndarray:
        last = np.fromiter((int(h[-1]) if len(h) else -1 for h in histories), dtype=np.int64, count=len(histories))
        known = (last >= 0) & (last < self.n_items_)
        out = np.zeros((len(histories), self.n_items_), dtype=np.float32)
        # the rules of each last item (a history without a known last item scores 0)
        starts = self.rules_.indptr[last[known]]
        lengths = self.rules_.indptr[last[known] + 1] - starts
        flat, _ = ranges(starts, lengths)
        out[np.repeat(np.flatnonzero(known), lengths), self.rules_.indices[flat]] = self.rules_.data[flat]
        return out

    def similar_items(self, item: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Items most often following ``item``."""
        from recommender.ml.base import top_k

        scores = self.score_batch([np.asarray([item])])[0]
        scores[scores <= 0] = -np.inf
        return top_k(scores, k)

    def get_config(self) -> dict[str, Any]:
        return {"params": self.get_params(), "n_items": self.n_items_}

    def get_tensors(self) -> dict[str, np.ndarray]:
        return csr_tensors("rules", self.rules_)

    def set_state(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        self.n_items_ = config_int(config, "n_items")
        self.rules_ = csr_from_tensors(tensors, "rules", (self.n_items_, self.n_items_))


#: V-SKNN looks up history positions in a dense (histories x items) array up to this size
DENSE_LOOKUP_CELLS = 1 << 20
#: V-SKNN scores larger batches this many histories at a time: the candidate sessions of a history
#: (up to ``sample_size`` per history item) make its sparse intermediates large (about 400 MB for 1,024
#: histories of 50 items), and the rows are independent (the same scores, less memory)
SCORE_CHUNK = 256


def position_weights(length: int, weighting: str) -> tuple[np.ndarray, float]:
    """Weight of each position of the current session (oldest first), per V-SKNN, as whole-number
    numerators and their common denominator (so that a sum of weights is exact in any order).

    ``"div"``: ``p / L`` (p = 1-based position), ``"linear"``: ``max(0, 1 - 0.1 * (L - p))``,
    ``"same"``: 1 everywhere.
    """
    p = np.arange(1, length + 1, dtype=np.float64)
    if weighting == "div":
        numerators, denominator = p, float(max(length, 1))
    elif weighting == "linear":
        numerators, denominator = np.maximum(0.0, 10.0 - (length - p)), 10.0
    elif weighting == "same":
        numerators, denominator = np.ones(length), 1.0
    else:
        raise ValueError(f"unknown weighting {weighting!r}")
    return numerators.astype(np.float32), denominator


def step_weights(steps: np.ndarray, weighting_score: str) -> np.ndarray:
    """Neighbour weight by ``steps`` back (1 = last item) of the most recent current-session item
    it shares: ``"div"`` ``1 / steps``, ``"linear"`` ``max(0, 1 - 0.1 * (steps - 1))``, ``"same"`` 1."""
    steps = np.asarray(steps, dtype=np.float32)
    if weighting_score == "div":
        return 1.0 / np.maximum(steps, 1.0)
    if weighting_score == "linear":
        return np.maximum(0.0, 1.0 - 0.1 * (steps - 1.0)).astype(np.float32)
    if weighting_score == "same":
        return np.ones_like(steps)
    raise ValueError(f"unknown weighting_score {weighting_score!r}")


@register
class VSKNNRecommender(Recommender):
    """Vector multiplication session-based kNN (V-SKNN), vectorised.

    1. The current session's items get position weights (``weighting``: recent = heavier).
    2. Candidates: training sessions sharing an item with it, the ``sample_size`` most recent.
    3. Similarity = sum of the position weights of the shared items ("vec"), divided by
       ``sqrt(len(current) * len(neighbour))`` if ``normalize``; the ``k`` best are neighbours.
    4. Each neighbour votes for its items with ``similarity * step_weight``, where the step
       weight (``weighting_score``) decays with how far back in the current session the most
       recent shared item is, as in the reference implementation of V-SKNN.
    5. Optional extras: ``item_decay`` (steps) weighs a neighbour's items by
       ``exp(-distance / item_decay)`` from the shared item inside that neighbour (as in STAN),
       items *before* it additionally by ``before_weight`` (sessions are directed);
       ``idf`` multiplies votes by ``log(n_sessions / sessions_with_item)``.
    """

    name = "vsknn"

    def __init__(
        self,
        k: int = 100,
        sample_size: int = 1000,
        weighting: str = "div",
        weighting_score: str = "div",
        item_decay: float | None = None,
        before_weight: float = 1.0,
        normalize: bool = False,
        idf: bool = False,
    ) -> None:
        self.k = k
        self.sample_size = sample_size
        self.weighting = weighting
        self.weighting_score = weighting_score
        self.item_decay = item_decay
        self.before_weight = before_weight
        self.normalize = normalize
        self.idf = idf

    def _check_params(self) -> None:
        position_weights(1, self.weighting)
        step_weights(np.ones(1), self.weighting_score)
        if self.item_decay is not None and not self.item_decay > 0:
            raise ValueError("item_decay must be positive or None")

    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        self._check_params()
        self.n_items_ = data.n_items
        # most recent session first, so "smaller session index" means "more recent" everywhere below
        if data.timestamps is not None:
            last = np.asarray([t[-1] if len(t) else -np.inf for t in data.timestamps])
            order = np.argsort(-last, kind="stable")
        else:
            order = np.arange(len(data.sessions))[::-1]
        sessions = [data.sessions[i] for i in order if len(data.sessions[i])]
        lengths = np.fromiter((len(x) for x in sessions), dtype=np.int64, count=len(sessions))
        self.seq_ptr_ = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.seq_items_ = (np.concatenate(sessions) if sessions else np.empty(0)).astype(np.int32)
        self._prepare()
        return self

    def _prepare(self) -> None:
        n_sessions = len(self.seq_ptr_) - 1
        rows = np.repeat(np.arange(n_sessions), np.diff(self.seq_ptr_))
        x = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, self.seq_items_)), shape=(n_sessions, self.n_items_)
        )
        x.sum_duplicates()
        x.data[:] = 1.0
        self._sessions = x
        self._item_sessions = x.T.tocsr()  # inverted index: item -> sessions containing it
        self._item_sessions.sort_indices()
        # the same, each item keeping only its sample_size most recent sessions (smallest indices):
        # a candidate among the sample_size most recent is among the sample_size most recent of
        # every item of positive weight it shares with the history (all more recent sessions of
        # that item are candidates too), and items of weight 0 add nothing, so the sample and its
        # similarities are those of the whole index, at the cost of at most sample_size sessions
        # per history item
        head = self._item_sessions
        if head.nnz and np.diff(head.indptr).max() > self.sample_size:
            keep = row_ranks(head.indptr, np.arange(head.nnz)) < self.sample_size
            counts = np.minimum(np.diff(head.indptr), self.sample_size)
            head = sp.csr_matrix(
                (head.data[keep], head.indices[keep], np.concatenate([[0], np.cumsum(counts)])), shape=head.shape
            )
        self._recent_item_sessions = head
        self._session_len = np.diff(x.indptr).astype(np.float32)
        df = np.diff(self._item_sessions.indptr).astype(np.float64)
        idf = np.where(df > 0, np.log(max(n_sessions, 1) / np.maximum(df, 1)), 0.0)
        self._item_weight = idf.astype(np.float32) if self.idf else None

    def neighbours(self, histories: Sequence[np.ndarray]) -> sp.csr_matrix:
        """Batch x training-session matrix holding the similarity of the ``k`` nearest sessions."""
        weights = [position_weights(len(h), self.weighting) for h in histories]
        q = history_matrix(histories, self.n_items_, [numerators for numerators, _ in weights])
        sims = (q @ self._recent_item_sessions).tocsr()  # B x sessions, "vec" similarity (numerators)
        sims.sum_duplicates()
        sims.sort_indices()
        denominators = np.asarray([denominator for _, denominator in weights])
        sims.data = (sims.data / np.repeat(denominators, np.diff(sims.indptr))).astype(np.float32)
        # sample: the sample_size most recent candidate sessions = smallest session indices
        if sims.nnz and np.diff(sims.indptr).max() > self.sample_size:
            keep = row_ranks(sims.indptr, np.arange(sims.nnz)) < self.sample_size
            counts = np.minimum(np.diff(sims.indptr), self.sample_size)
            sims = sp.csr_matrix(
                (sims.data[keep], sims.indices[keep], np.concatenate([[0], np.cumsum(counts)])), shape=sims.shape
            )
        if self.normalize and sims.nnz:
            hist_len = np.asarray([max(len(np.unique(h)), 1) for h in histories], dtype=np.float32)
            rows = np.repeat(np.arange(sims.shape[0]), np.diff(sims.indptr))
            sims.data = sims.data / np.sqrt(hist_len[rows] * self._session_len[sims.indices])
        return csr_top_n(sims, self.k)

    def _neighbours_one(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What :meth:`neighbours` finds for a batch of one history, without sparse matrices (the
        sparse product, its index sorting and top-n cost about 1.3 ms per web request): the ``k``
        nearest sessions in increasing order and their similarities. The similarities are sums of
        whole numbers (position numerators), exact in any order, divided once: the same bits as
        the sparse product gives."""
        weights, denominator = position_weights(len(history), self.weighting)
        items, weights = largest_weight_per_item(history, weights, self.n_items_)
        positive = weights > 0  # items of weight 0 find no neighbour
        items, weights = items[positive], weights[positive]
        index = self._recent_item_sessions
        starts, ends = index.indptr[items], index.indptr[items + 1]
        lengths = ends - starts
        flat, _ = ranges(starts, lengths)
        sessions = index.indices[flat].astype(np.int64)
        rank = np.repeat(np.arange(len(items), dtype=np.int64), lengths)
        full = lengths >= self.sample_size
        if full.any():  # an item with sample_size sessions bounds the sample: the rest cannot enter it
            bound = index.indices[ends[full] - 1].min()
            within = sessions <= bound
            sessions, rank = sessions[within], rank[within]
        # session-major, items in increasing order inside a session: one sort of unique keys
        if len(sessions) == 0:
            return sessions, np.empty(0, dtype=np.float32)
        key = np.sort(sessions * len(items) + rank)
        sessions, votes = key // len(items), weights[key % len(items)]
        start = np.flatnonzero(np.concatenate([[True], sessions[1:] != sessions[:-1]]))
        if len(start) > self.sample_size:  # the sample_size most recent (smallest indices)
            votes = votes[: start[self.sample_size]]
            start = start[: self.sample_size]
        sims = (np.add.reduceat(votes.astype(np.float64), start) / denominator).astype(np.float32)
        sessions = sessions[start]
        if self.normalize and len(sessions):
            hist_len = np.float32(max(len(np.unique(history)), 1))
            sims = sims / np.sqrt(hist_len * self._session_len[sessions])
        if len(sessions) > self.k:  # the k largest; ties: the more recent session
            top = np.lexsort((sessions, -sims))[: self.k]
            top.sort()
            sessions, sims = sessions[top], sims[top]
        return sessions, sims.astype(np.float32, copy=False)

    def score_batch(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> np.ndarray:
        histories = [np.asarray(h, dtype=np.int64) for h in histories]
        n_b, n_items = len(histories), self.n_items_
        if n_b > SCORE_CHUNK:
            out = np.empty((n_b, n_items), dtype=np.float32)
            for a in range(0, n_b, SCORE_CHUNK):
                out[a : a + SCORE_CHUNK] = self.score_batch(histories[a : a + SCORE_CHUNK])
            return out
        if n_b == 1:  # serving: one history, without sparse matrices
            pair_s, pair_sim = self._neighbours_one(histories[0])
            pair_b = np.zeros(len(pair_s), dtype=np.int64)
        else:
            nb = self.neighbours(histories)
            pair_b = np.repeat(np.arange(n_b), np.diff(nb.indptr))
            pair_s, pair_sim = nb.indices.astype(np.int64), nb.data
        if len(pair_s) == 0:
            return np.zeros((n_b, n_items), dtype=np.float32)
        # every item occurrence of every neighbour session, in order
        lengths = self.seq_ptr_[pair_s + 1] - self.seq_ptr_[pair_s]
        flat, pos = ranges(self.seq_ptr_[pair_s], lengths)
        e_pair = np.repeat(np.arange(len(pair_s)), lengths)
        e_item = self.seq_items_[flat].astype(np.int64)
        e_b = pair_b[e_pair]
        # 1-based position of each item's latest occurrence in the current session (0 = absent)
        if n_b == 1:  # an item's largest position is its latest occurrence, as history_matrix keeps it
            known = np.flatnonzero((histories[0] >= 0) & (histories[0] < n_items))
            positions = np.zeros(n_items, dtype=np.float32)
            np.maximum.at(positions, histories[0][known], known + 1)
            e_qpos = positions[e_item]
        elif n_b * n_items <= DENSE_LOOKUP_CELLS:  # a few histories: look positions up directly
            hist_pos = history_matrix(histories, n_items, [np.arange(1, len(h) + 1) for h in histories])
            e_qpos = hist_pos.toarray()[e_b, e_item]
        else:
            hist_pos = history_matrix(histories, n_items, [np.arange(1, len(h) + 1) for h in histories]).tocoo()
            keys = hist_pos.row.astype(np.int64) * n_items + hist_pos.col
            order = np.argsort(keys)
            keys, kpos = keys[order], hist_pos.data[order]
            e_key = e_b * n_items + e_item
            at = np.searchsorted(keys, e_key).clip(0, len(keys) - 1)
            e_qpos = np.where(keys[at] == e_key, kpos[at], 0.0)
        # per neighbour: the most recent shared item (largest current-session position)
        group_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        best_q = np.maximum.reduceat(e_qpos, group_start)
        hist_len = np.fromiter((len(h) for h in histories), dtype=np.float64, count=n_b)
        steps = hist_len[pair_b] - best_q + 1.0
        pair_w = pair_sim * step_weights(steps, self.weighting_score)
        e_w = pair_w[e_pair].astype(np.float32)
        if self.item_decay is not None:
            # position in the neighbour of (the last occurrence of) that shared item
            is_match = e_qpos == best_q[e_pair]
            match_pos = np.maximum.reduceat(np.where(is_match, pos, -1), group_start)
            dist = pos - match_pos[e_pair]
            e_w = e_w * np.exp(-np.abs(dist) / self.item_decay).astype(np.float32)
            if self.before_weight != 1.0:
                e_w = np.where(dist < 0, e_w * np.float32(self.before_weight), e_w)
        # an item repeated inside one neighbour votes once, with its largest weight; the votes are
        # summed per (history, item) by bincount (a sparse matrix costs several times more to build)
        key = e_pair * n_items + e_item
        o = np.argsort(key)  # (any order inside a group: the maximum is the same)
        sorted_key = key[o]
        start = np.flatnonzero(np.concatenate([[True], sorted_key[1:] != sorted_key[:-1]]))
        vote = np.maximum.reduceat(e_w[o], start)
        first = o[start]
        cells = e_b[first] * n_items + e_item[first]
        scores = np.bincount(cells, weights=vote, minlength=n_b * n_items).reshape(n_b, n_items)
        scores = scores.astype(np.float32)
        if self._item_weight is not None:
            scores *= self._item_weight
        return scores

    def get_config(self) -> dict[str, Any]:
        return {
            "params": self.get_params(),
            "n_items": self.n_items_,
            "n_sessions": len(self.seq_ptr_) - 1,
        }

    def get_tensors(self) -> dict[str, np.ndarray]:
        # item_support pins n_items (the sequences alone cannot reveal a tampered n_items)
        support = np.diff(self._item_sessions.indptr).astype(np.int64)
        return {"seq_ptr": self.seq_ptr_, "seq_items": self.seq_items_, "item_support": support}

    def set_state(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        self.n_items_ = config_int(config, "n_items")
        n_sessions = config_int(config, "n_sessions")
        self.seq_ptr_ = require(tensors, "seq_ptr", (n_sessions + 1,)).astype(np.int64)
        self.seq_items_ = require(tensors, "seq_items", (None,)).astype(np.int32)
        support = require(tensors, "item_support", (self.n_items_,))
        if self.seq_ptr_[0] != 0 or self.seq_ptr_[-1] != len(self.seq_items_) or np.any(np.diff(self.seq_ptr_) < 1):
            raise ModelFileError("seq_ptr does not describe the stored sequences")
        if len(self.seq_items_) and (self.seq_items_.min() < 0 or self.seq_items_.max() >= self.n_items_):
            raise ModelFileError("item index out of range")
        try:
            self._check_params()
        except ValueError as exc:
            raise ModelFileError(str(exc)) from exc
        self._prepare()
        if not np.array_equal(support, np.diff(self._item_sessions.indptr)):
            raise ModelFileError("item_support does not match the stored sequences")
