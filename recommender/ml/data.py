"""Sequence data as the models see it: integer item indices, oldest first."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

#: the models' event type codes (``recommender.queries.EVENT_TYPES`` maps captured event kinds to them)
EVENT_VIEW, EVENT_BASKET, EVENT_PURCHASE = 0, 1, 2
EVENT_TYPE_NAMES = ("view", "basket", "purchase")


@dataclass
class SessionData:
    """A list of sequences over ``n_items`` items, with optional aligned side information.

    ``sessions[i]`` is an int64 array of item indices. ``event_types[i]`` and
    ``timestamps[i]`` (unix seconds) align with it element by element;
    ``segments[i]`` is one int per sequence (e.g. the customer's RFM segment).
    """

    sessions: list[np.ndarray]
    n_items: int
    event_types: list[np.ndarray] | None = None
    timestamps: list[np.ndarray] | None = None
    segments: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sessions = [np.asarray(s, dtype=np.int64) for s in self.sessions]
        for name in ("event_types", "timestamps"):
            side = getattr(self, name)
            if side is not None and [len(a) for a in side] != [len(s) for s in self.sessions]:
                raise ValueError(f"{name} must align with sessions element by element")
        if self.segments is not None and len(self.segments) != len(self.sessions):
            raise ValueError("segments must have one value per session")
        if self.sessions and self.n_items <= max((int(s.max()) for s in self.sessions if len(s)), default=-1):
            raise ValueError("an item index is >= n_items")

    def __len__(self) -> int:
        return len(self.sessions)

    @property
    def n_events(self) -> int:
        return int(sum(len(s) for s in self.sessions))


def item_counts(data: SessionData) -> np.ndarray:
    """Number of events of each item in ``data`` (float64, length ``n_items``)."""
    if not data.sessions:
        return np.zeros(data.n_items)
    return np.bincount(np.concatenate(data.sessions), minlength=data.n_items).astype(np.float64)


class ItemIndex:
    """Bidirectional map between external item ids (product ids) and 0-based indices."""

    def __init__(self, ids: Iterable[Hashable] = ()) -> None:
        self.ids: list[Hashable] = []
        self._index: dict[Hashable, int] = {}
        for i in ids:
            self.add(i)

    def add(self, item_id: Hashable) -> int:
        idx = self._index.get(item_id)
        if idx is None:
            idx = self._index[item_id] = len(self.ids)
            self.ids.append(item_id)
        return idx

    def index(self, item_id: Hashable) -> int | None:
        return self._index.get(item_id)

    def encode(self, ids: Sequence[Hashable], add: bool = False) -> np.ndarray:
        """Indices of ``ids``; unknown ids are added (``add=True``) or dropped."""
        if add:
            return np.fromiter((self.add(i) for i in ids), dtype=np.int64)
        return np.fromiter((j for j in (self._index.get(i) for i in ids) if j is not None), dtype=np.int64)

    def decode(self, indices: Iterable[int]) -> list[Hashable]:
        return [self.ids[int(i)] for i in indices]

    def __len__(self) -> int:
        return len(self.ids)
