"""What the network reads: sessions and histories as compact item ids with their side information.

Compact ids number the model's vocabulary from 1 (0 = padding or an unknown item); the model
keeps the map from item index to compact id. :class:`InputSpec` says which optional inputs the
network was built with (event types, time features, customer segments) and how many of a
history's last events it sees; it turns training sessions into a :class:`~.batching.Batcher`
(:meth:`InputSpec.sessions`) and the histories of a scoring call into padded arrays
(:meth:`InputSpec.histories`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from recommender.ml.data import SessionData
from recommender.ml.sequence.batching import Batcher
from recommender.ml.sequence.network import time_features


class EncodedHistories(NamedTuple):
    """Histories of one scoring call as padded arrays, ``B`` histories of up to ``T`` events.

    x: ``(B, T)`` compact ids (unknown items dropped, the last ``max_len`` kept); lens: ``(B,)``
    lengths (0 for a history with no known item); ev: ``(B, T)`` event types + 1; tf:
    ``(B, T, 4)`` time features; seg: ``(B,)`` segments + 1 (each ``None`` when the model does
    not use it).
    """

    x: np.ndarray
    lens: np.ndarray
    ev: np.ndarray | None
    tf: np.ndarray | None
    seg: np.ndarray | None


@dataclass(frozen=True)
class InputSpec:
    """The inputs a network reads: history length and which side information it embeds."""

    max_len: int
    use_event_types: bool
    n_event_types: int
    use_time: bool
    use_segments: bool
    n_segments: int

    def sessions(self, data: SessionData, compact: np.ndarray, train: bool) -> Batcher:
        """``data``'s sessions in compact ids (``compact[item]``) with their side information.

        For training (``train``) a session of length ``L`` yields ``L - 1`` targets and long
        sessions are cut into chunks of ``max_len + 1`` events (pieces of fewer than 2 are
        dropped); otherwise each session keeps its last ``max_len + 1`` events. Raises
        ``ValueError`` when the spec uses side information ``data`` does not carry.
        """
        use_ev = self.use_event_types and data.event_types is not None
        use_tf = self.use_time and data.timestamps is not None
        use_sg = self.use_segments and data.segments is not None
        if self.use_event_types and data.event_types is None:
            raise ValueError("use_event_types=True but the data has no event_types")
        if self.use_time and data.timestamps is None:
            raise ValueError("use_time=True but the data has no timestamps")
        if self.use_segments and data.segments is None:
            raise ValueError("use_segments=True but the data has no segments")
        seqs, events, tfeats, segs = [], [], [], []
        chunk = self.max_len + 1
        for i, s in enumerate(data.sessions):
            c = compact[s] if len(s) else s
            ev = np.clip(data.event_types[i], 0, self.n_event_types - 1) if use_ev else None
            tf = time_features(data.timestamps[i]) if use_tf else None
            sg = int(np.clip(data.segments[i], 0, self.n_segments - 1)) + 1 if use_sg else 0
            starts = range(0, max(len(c) - 1, 1), self.max_len) if train else [max(len(c) - chunk, 0)]
            for a in starts:
                piece = c[a : a + chunk]
                if train and len(piece) < 2:
                    continue
                seqs.append(piece)
                events.append(ev[a : a + chunk] if ev is not None else None)
                tfeats.append(tf[a : a + chunk] if tf is not None else None)
                segs.append(sg)
        return Batcher(
            seqs,
            events if use_ev else None,
            tfeats if use_tf else None,
            np.asarray(segs, dtype=np.int64) if use_sg else None,
        )

    def histories(
        self, histories: Sequence[np.ndarray], context: dict[str, Any] | None, compact: np.ndarray, n_items: int
    ) -> EncodedHistories:
        """The histories (item indices below ``n_items``; others are unknown) as padded arrays.

        ``context`` may carry ``event_types`` and ``timestamps`` (one array per history,
        aligned with it) and ``segments`` (one per history); what is missing counts as 0.
        """
        context = context or {}
        seqs, events, tfeats = self._known_items(histories, context, compact, n_items)
        b = len(histories)
        lens = np.array([len(s) for s in seqs], dtype=np.int64)
        t = max(int(lens.max()) if b else 1, 1)
        x = np.zeros((b, t), dtype=np.int64)
        ev = np.zeros((b, t), dtype=np.int64) if self.use_event_types else None
        tf = np.zeros((b, t, 4), dtype=np.int64) if self.use_time else None
        for r, s in enumerate(seqs):
            x[r, : len(s)] = s
            if ev is not None:
                ev[r, : len(s)] = events[r]
            if tf is not None:
                tf[r, : len(s)] = tfeats[r]
        seg = None
        if self.use_segments:
            sg = context.get("segments")
            sg = np.zeros(b, dtype=np.int64) if sg is None else np.asarray(sg, dtype=np.int64).reshape(b)
            seg = np.clip(sg, 0, self.n_segments - 1) + 1
        return EncodedHistories(x, lens, ev, tf, seg)

    def _known_items(
        self, histories: Sequence[np.ndarray], context: dict[str, Any], compact: np.ndarray, n_items: int
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Per history: the compact ids of its known items (last ``max_len``), and the event types
        + 1 and time features of those items (empty lists when the spec does not use them)."""
        seqs, events, tfeats = [], [], []
        for i, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64)
            ok = (h >= 0) & (h < n_items)
            c = np.zeros(len(h), dtype=np.int64)
            c[ok] = compact[h[ok]]
            keep = c > 0
            seqs.append(c[keep][-self.max_len :])
            if self.use_event_types:
                evs = context.get("event_types")
                ev = np.zeros(len(h), dtype=np.int64) if evs is None else np.asarray(evs[i], dtype=np.int64)
                events.append(np.clip(ev[keep], 0, self.n_event_types - 1)[-self.max_len :] + 1)
            if self.use_time:
                tss = context.get("timestamps")
                if tss is None:
                    tfeats.append(np.zeros((int(keep.sum()), 4), dtype=np.int64)[-self.max_len :])
                else:
                    tfeats.append(time_features(np.asarray(tss[i], dtype=np.int64))[keep][-self.max_len :])
        return seqs, events, tfeats
