"""Sessions (compact item ids, 0 = unknown) and their side information as padded tensors,
grouped into batches of about the same number of prediction targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """Padded inputs of a batch of ``B`` sessions, ``T`` steps long.

    x: ``(B, T)`` compact item ids (0 = padding or unknown); lens: ``(B,)`` real lengths (at
    least 1); y: ``(B, T)`` next-item class (compact id - 1) after each position, -1 where there
    is none; ev: ``(B, T)`` event types + 1; tf: ``(B, T, 4)`` time features; seg: ``(B,)``
    segments + 1 (each ``None`` when the model does not use it).
    """

    x: torch.Tensor
    lens: torch.Tensor
    y: torch.Tensor
    ev: torch.Tensor | None
    tf: torch.Tensor | None
    seg: torch.Tensor | None


@dataclass
class Batcher:
    """Sessions in compact ids with their optional event types, time features and segments."""

    seqs: list[np.ndarray]
    events: list[np.ndarray] | None = None
    tfeats: list[np.ndarray] | None = None
    segs: np.ndarray | None = None

    def subset(self, idx: np.ndarray | slice) -> Batcher:
        """The sessions ``idx`` (indices or a slice), with their side information."""
        pick = (lambda xs: xs[idx]) if isinstance(idx, slice) else (lambda xs: [xs[i] for i in idx])
        return Batcher(
            pick(self.seqs),
            None if self.events is None else pick(self.events),
            None if self.tfeats is None else pick(self.tfeats),
            None if self.segs is None else self.segs[idx],
        )

    def make(self, idx: np.ndarray, drop_last: bool) -> Batch:
        """Padded inputs for sessions ``idx``; ``drop_last`` drops the final element (it is only a target)."""
        seqs = [self.seqs[i] for i in idx]
        cut = 1 if drop_last else 0
        lens = np.array([len(s) - cut for s in seqs], dtype=np.int64)
        t = max(int(lens.max()), 1)
        x = np.zeros((len(idx), t), dtype=np.int64)
        y = np.full((len(idx), t), -1, dtype=np.int64)
        ev = np.zeros((len(idx), t), dtype=np.int64) if self.events is not None else None
        tf = np.zeros((len(idx), t, 4), dtype=np.int64) if self.tfeats is not None else None
        for r, (i, s) in enumerate(zip(idx, seqs, strict=True)):
            n = lens[r]
            x[r, :n] = s[:n]
            if drop_last:
                y[r, :n] = s[1 : n + 1] - 1  # compact ids 1..V -> class 0..V-1; unknown (0) -> -1
            if ev is not None:
                ev[r, :n] = self.events[i][:n] + 1
            if tf is not None:
                tf[r, :n] = self.tfeats[i][:n]
        seg = torch.from_numpy(self.segs[idx]) if self.segs is not None else None
        to = torch.from_numpy
        return Batch(
            to(x),
            to(lens.clip(min=1)),
            to(y),
            None if ev is None else to(ev),
            None if tf is None else to(tf),
            seg,
        )


def token_batches(lengths: np.ndarray, tokens: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Group sessions of similar length so that each batch holds about ``tokens`` prediction targets."""
    tie = rng.random(len(lengths)) if rng is not None else np.arange(len(lengths))
    order = np.lexsort((tie, lengths))
    batches, start, acc = [], 0, 0
    for pos, i in enumerate(order):
        acc += max(int(lengths[i]) - 1, 1)
        if acc >= tokens:
            batches.append(order[start : pos + 1])
            start, acc = pos + 1, 0
    if start < len(order):
        batches.append(order[start:])
    if rng is not None:
        rng.shuffle(batches)
    return batches
