"""The network's forward pass in NumPy, for scoring a few whole histories (serving).

Why it exists: a web request scores one history (1-50 events) over the catalogue. In PyTorch
that is a few dozen tiny operators (embedding and hidden size 100), each paying the framework's
per-operator dispatch. Measured on the shop's 2-core machine with its blend's network (attention
readout, repeat mechanism, time features, 3,926 items; thread CPU time, p50 of single histories of
1-50 events): about 2.9 ms per ``score_batch`` in torch, 1.0-1.4 ms with this module. A step of
the GRU is a dozen NumPy calls on 100-300 numbers (about 17-20 us, nearly all of it call overhead),
so the blend's copies of one network (same configuration, different seeds) are stacked on a
leading axis and step through the history together: for a 50-event history, two GRUs cost about
1.5 ms stacked instead of 1.9 ms one after the other (torch's own GRU: 0.77 ms each).

The recurrent layers and the single-threaded BLAS around a forward pass are
:mod:`recommender.ml.numpy_rnn`'s.

:class:`NumpySequenceNet` copies the weights out of a fitted, eval-mode
:class:`~recommender.ml.sequence.network.SequenceNet` once (float32, contiguous, transposed for
``x @ W``) and computes what ``next_item_probs(..., last_only=True)`` computes for one history:
the embedding sums, the GRU / LSTM layers, the "attention" or "last" readout, the projection and
query, the softmax over the active items and the repeat mechanism. Torch is needed only to build
it; scoring does not touch torch. Larger batches (evaluation, validation) stay with torch, which
shares its per-operator cost across the batch (it is faster from about 6-8 histories).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recommender.ml.numpy_rnn import RecurrentLayer, row_softmax, sigmoid, single_threaded_blas, stack

__all__ = ["NumpySequenceNet", "same_architecture", "single_threaded_blas"]


class NumpySequenceNet:
    """Fitted :class:`~recommender.ml.sequence.network.SequenceNet` s in eval mode, as NumPy arrays.

    ``items`` is each network's ``(V, d)`` output item matrix (``net.item_matrix()``: the tied or
    separate output embeddings, normalised when the scores are scaled cosines). Several networks
    of one configuration (the blend's copies, trained with different seeds) are stacked: one
    forward pass scores a history with all of them for little more than the cost of one, since
    the per-call overhead of the small NumPy operations, not the arithmetic, is most of the time.
    """

    def __init__(self, nets: Any | Sequence[Any], items: np.ndarray | Sequence[np.ndarray]) -> None:
        nets, items = (list(nets), list(items)) if isinstance(nets, list | tuple) else ([nets], [items])
        first = nets[0]
        if any(not same_architecture(first, net) for net in nets[1:]):
            raise ValueError("only networks of one configuration can be stacked")
        self.readout: str = first.readout
        self.scale: float | None = first.scale
        self.repeat: bool = bool(first.repeat)
        self.items = stack(items)
        self.item_emb = stack([net.item_emb.weight for net in nets])
        self.event_emb = None if first.event_emb is None else stack([net.event_emb.weight for net in nets])
        self.time_embs = None
        if first.time_embs is not None:
            self.time_embs = [stack([net.time_embs[k].weight for net in nets]) for k in range(len(first.time_embs))]
        self.segment_emb = None if first.segment_emb is None else stack([net.segment_emb.weight for net in nets])
        self.layers = [RecurrentLayer.from_torch([net.rnn for net in nets], k) for k in range(first.rnn.num_layers)]
        if self.readout == "attention":
            self.att_q = stack([net.att_q.weight.T for net in nets])
            self.att_k = stack([net.att_k.weight.T for net in nets])
            self.att_v = stack([net.att_v.weight[0] for net in nets])[:, :, None]
        self.proj = stack([net.proj.weight.T for net in nets])
        if self.repeat:
            self.rep_q = stack([net.rep_q.weight.T for net in nets])
            self.rep_k = stack([net.rep_k.weight.T for net in nets])
            self.rep_v = stack([net.rep_v.weight[0] for net in nets])[:, :, None]
            self.rep_gate_w = stack([net.rep_gate.weight[0] for net in nets])
            self.rep_gate_b = stack([net.rep_gate.bias for net in nets])[:, 0]

    def encode(self, x: np.ndarray, ev: np.ndarray | None, tf: np.ndarray | None, seg: int) -> np.ndarray:
        """Hidden states ``(N, T, H)`` of each network's last layer over one history of compact ids
        ``x`` ``(T,)`` (0 = unknown), with event types + 1 ``(T,)``, time features ``(T, 4)`` and
        segment + 1 (each 0 / ``None`` when absent)."""
        e = self.item_emb[:, x]
        if self.event_emb is not None and ev is not None:
            e += self.event_emb[:, ev]
        if self.time_embs is not None and tf is not None:
            for k, emb in enumerate(self.time_embs):
                e += emb[:, tf[:, k]]
        if self.segment_emb is not None and seg:
            e += self.segment_emb[:, seg][:, None, :]
        for layer in self.layers:
            e = layer.run(e)
        return e

    def probs(
        self, x: np.ndarray, ev: np.ndarray | None = None, tf: np.ndarray | None = None, seg: int = 0
    ) -> np.ndarray:
        """Each network's next-item probabilities ``(N, V)`` after the whole history ``x`` (at least
        one event; see :meth:`encode` for the inputs)."""
        with single_threaded_blas():
            return self._probs(x, ev, tf, seg)

    def batch_probs(
        self, x: np.ndarray, lens: np.ndarray, ev: np.ndarray | None, tf: np.ndarray | None, seg: np.ndarray | None
    ) -> np.ndarray:
        """Each network's probabilities ``(N, B, V)`` for a padded batch of ``B`` histories (the
        arrays of :class:`~recommender.ml.sequence.inputs.EncodedHistories`), one history at a
        time through :meth:`probs`; rows of empty histories stay 0."""
        p = np.zeros((len(self.item_emb), len(x), self.items.shape[1]), dtype=np.float32)
        for r, n in enumerate(lens):
            if n:
                p[:, r] = self.probs(
                    x[r, :n],
                    None if ev is None else ev[r, :n],
                    None if tf is None else tf[r, :n],
                    0 if seg is None else int(seg[r]),
                )
        return p

    def _probs(self, x: np.ndarray, ev: np.ndarray | None, tf: np.ndarray | None, seg: int) -> np.ndarray:
        hs = self.encode(x, ev, tf, seg)  # (N, T, H)
        last = hs[:, -1:]  # (N, 1, H)
        if self.readout == "last":
            feats = last
        else:  # NARM: attention of the last state over all states
            alpha = sigmoid(hs @ self.att_k + last @ self.att_q) @ self.att_v  # (N, T, 1)
            feats = np.concatenate([last, alpha.transpose(0, 2, 1) @ hs], axis=2)
        r = feats @ self.proj  # (N, 1, D)
        if self.scale:  # F.normalize(r) * scale
            r *= self.scale / np.maximum(np.sqrt((r * r).sum(axis=2, keepdims=True)), 1e-12)
        p = row_softmax((r @ self.items.transpose(0, 2, 1))[:, 0])  # (N, V)
        if self.repeat:  # (1 - g) * softmax + g * attention over the history's own known items
            g = sigmoid((feats[:, 0] * self.rep_gate_w).sum(axis=1) + self.rep_gate_b)[:, None]  # (N, 1)
            p *= 1.0 - g
            known = x > 0
            if known.any():
                e = (np.tanh(hs[:, known] @ self.rep_k + last @ self.rep_q) @ self.rep_v)[:, :, 0]  # (N, K)
                w = row_softmax(e) * g
                n_nets, n_vocab = p.shape
                cells = (np.arange(n_nets)[:, None] * n_vocab + (x[known] - 1)[None, :]).ravel()
                np.add.at(p.reshape(-1), cells, w.ravel())
        return p


def same_architecture(a: Any, b: Any) -> bool:
    """True when two :class:`~recommender.ml.sequence.network.SequenceNet` s have the same
    configuration and parameter shapes (so that they can be stacked)."""
    if (a.readout, a.scale, bool(a.repeat), type(a.rnn), a.rnn.num_layers) != (
        b.readout,
        b.scale,
        bool(b.repeat),
        type(b.rnn),
        b.rnn.num_layers,
    ):
        return False
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)
