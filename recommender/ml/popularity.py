"""Popularity baselines: global, recency-decayed ("trending") and per customer segment.

They ignore the history's items; they are the floor every other model must beat and
the fallback for cold visitors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from recommender.ml._utils import config_int, require
from recommender.ml.base import ModelFileError, Recommender, register
from recommender.ml.data import SessionData, item_counts


class _StaticScores(Recommender):
    """A model whose scores do not depend on the history: one stored vector."""

    scores_: np.ndarray

    def score_batch(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(histories), self.n_items_)).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return {"params": self.get_params(), "n_items": self.n_items_}

    def get_tensors(self) -> dict[str, np.ndarray]:
        return {"scores": self.scores_.astype(np.float32)}

    def set_state(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        self.n_items_ = config_int(config, "n_items")
        self.scores_ = require(tensors, "scores", (self.n_items_,)).astype(np.float32)


@register
class PopularityRecommender(_StaticScores):
    """Most frequent items in training, the same list for everybody."""

    name = "pop"

    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        self.n_items_ = data.n_items
        self.scores_ = item_counts(data).astype(np.float32)
        return self


@register
class TrendingRecommender(_StaticScores):
    """Popularity with exponential time decay: an event ``age`` old weighs ``0.5 ** (age / half_life)``.

    Ages are measured from the newest training event, in days (``half_life_days``) when the
    data has timestamps, else in events of the (time-ordered) data with
    ``half_life_events`` (default: a tenth of all events).
    """

    name = "trending"

    def __init__(self, half_life_days: float = 7.0, half_life_events: int | None = None) -> None:
        self.half_life_days = half_life_days
        self.half_life_events = half_life_events

    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        self.n_items_ = data.n_items
        items = np.concatenate(data.sessions) if data.sessions else np.empty(0, dtype=np.int64)
        if data.timestamps is not None:
            ts = np.concatenate(data.timestamps) if data.timestamps else np.empty(0)
            age = (ts.max() - ts) / 86400.0 if len(ts) else ts
            half_life = float(self.half_life_days)
        else:
            age = (len(items) - 1 - np.arange(len(items))).astype(np.float64)
            half_life = float(self.half_life_events or max(1, len(items) // 10))
        weights = np.exp2(-age / half_life)
        self.scores_ = np.bincount(items, weights=weights, minlength=self.n_items_).astype(np.float32)
        return self


@register
class SegmentPopularityRecommender(Recommender):
    """Popularity inside the customer's segment (``SessionData.segments`` / ``context["segments"]``),
    shrunk towards global popularity: ``(seg_count + shrinkage * global_share) / (seg_total + shrinkage)``.

    ``half_life_days``: count an event ``age`` days older than the newest one as
    ``0.5 ** (age / half_life_days)`` (trending within the segment; needs timestamps); None
    counts every event once. Histories without a segment, or with a segment unseen in
    training, get global popularity.
    """

    name = "segment_pop"

    def __init__(self, shrinkage: float = 10.0, half_life_days: float | None = None) -> None:
        self.shrinkage = shrinkage
        self.half_life_days = half_life_days

    def _weights(self, data: SessionData) -> list[np.ndarray] | None:
        if self.half_life_days is None or data.timestamps is None or not data.sessions:
            return None
        newest = max((float(t.max()) for t in data.timestamps if len(t)), default=0.0)
        return [np.exp2(-(newest - t) / 86400.0 / float(self.half_life_days)) for t in data.timestamps]

    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        self.n_items_ = data.n_items
        weights = self._weights(data)
        if weights is None:
            counts = item_counts(data)
        else:
            counts = np.bincount(np.concatenate(data.sessions), np.concatenate(weights), minlength=data.n_items)
        self.global_ = (counts / max(counts.sum(), 1e-12)).astype(np.float32)
        if data.segments is None:
            self.segment_ids_ = np.empty(0, dtype=np.int64)
            self.segment_scores_ = np.empty((0, self.n_items_), dtype=np.float32)
            return self
        self.segment_ids_ = np.unique(data.segments).astype(np.int64)
        rows = []
        for seg in self.segment_ids_:
            members = [i for i, g in enumerate(data.segments) if g == seg and len(data.sessions[i])]
            if not members:
                c = np.zeros(self.n_items_)
            else:
                items = np.concatenate([data.sessions[i] for i in members])
                w = np.concatenate([weights[i] for i in members]) if weights is not None else None
                c = np.bincount(items, w, minlength=self.n_items_)
            rows.append((c + self.shrinkage * self.global_) / (c.sum() + self.shrinkage))
        self.segment_scores_ = np.asarray(rows, dtype=np.float32).reshape(len(self.segment_ids_), self.n_items_)
        return self

    def score_batch(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> np.ndarray:
        out = np.broadcast_to(self.global_, (len(histories), self.n_items_)).astype(np.float32)
        segs = (context or {}).get("segments")
        if segs is None or len(self.segment_ids_) == 0:
            return out
        segs = np.asarray(segs, dtype=np.int64)
        pos = np.searchsorted(self.segment_ids_, segs).clip(0, len(self.segment_ids_) - 1)
        known = self.segment_ids_[pos] == segs
        out[known] = self.segment_scores_[pos[known]]
        return out

    def get_config(self) -> dict[str, Any]:
        return {
            "params": self.get_params(),
            "n_items": self.n_items_,
        }

    def get_tensors(self) -> dict[str, np.ndarray]:
        return {"global": self.global_, "segment_ids": self.segment_ids_, "segment_scores": self.segment_scores_}

    def set_state(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        self.n_items_ = config_int(config, "n_items")
        self.global_ = require(tensors, "global", (self.n_items_,)).astype(np.float32)
        self.segment_ids_ = require(tensors, "segment_ids", (None,)).astype(np.int64)
        self.segment_scores_ = require(tensors, "segment_scores", (len(self.segment_ids_), self.n_items_))
        if np.any(np.diff(self.segment_ids_) <= 0):
            raise ModelFileError("segment ids must be sorted and unique")
