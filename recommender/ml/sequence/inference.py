"""The network's forward pass in NumPy, for scoring a few whole histories (serving).

Why it exists: a web request scores one history (1-50 events) over the catalogue. In PyTorch
that is a few dozen tiny operators (embedding and hidden size 100), each paying the framework's
per-operator dispatch. Measured on the shop's 2-core machine with its blend's network (attention
readout, repeat mechanism, time features, 3,926 items; thread CPU time, p50 of single histories of
1-50 events): about 2.9 ms per ``score_batch`` in torch, 1.0-1.4 ms with this module, of which
the GRU over 25 steps is about 0.35 ms (14 us a step: one GEMV and a dozen small ufuncs).

BLAS threads: OpenBLAS wakes its worker threads for a 100 x 300 GEMV, and on a loaded machine
the same forward pass took 2.6 ms instead of 0.9 ms with its default threads. The options,
per call: ``threadpoolctl.threadpool_limits(1)`` scans the loaded libraries every time (3.3 ms);
avoiding BLAS with ``np.einsum`` makes the GEMVs 2.5-3x slower (about +0.3 ms a history); a
``ThreadpoolController`` made once and limited around the call costs about 20 us. The last is
:func:`single_threaded_blas`: one thread only while a forward pass runs, the process's setting
restored afterwards (a Celery worker that also trains keeps its threads).

:class:`NumpySequenceNet` copies the weights out of a fitted, eval-mode
:class:`~recommender.ml.sequence.network.SequenceNet` once (float32, contiguous, transposed for
``x @ W``) and computes what ``next_item_probs(..., last_only=True)`` computes for one history:
the embedding sums, the GRU / LSTM layers, the "attention" or "last" readout, the projection and
query, the softmax over the active items and the repeat mechanism. Torch is needed only to build
it; scoring does not touch torch. Larger batches (evaluation, validation) stay with torch, which
shares its per-operator cost across the batch (it is faster from about 6-8 histories).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

_blas_lock = threading.Lock()
_blas_users = 0
_blas_controller: Any = None  # threadpoolctl.ThreadpoolController, made on first use
_blas_saved: Any = None  # the limiter that restores the process's BLAS threads


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with BLAS on one thread, restoring the previous setting when the last of the
    concurrent callers leaves (a counter under a lock, so that overlapping calls on several threads
    cannot restore each other's "1" and leave the process single-threaded)."""
    global _blas_users, _blas_controller, _blas_saved
    with _blas_lock:
        if _blas_users == 0:
            if _blas_controller is None:  # scanning the loaded libraries is the slow part: once
                from threadpoolctl import ThreadpoolController

                _blas_controller = ThreadpoolController().select(user_api="blas")
            _blas_saved = _blas_controller.limit(limits=1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_saved.restore_original_limits()
                _blas_saved = None


def _f32(a: Any) -> np.ndarray:
    """A float32, C-contiguous NumPy copy of a tensor or array."""
    a = a.detach().cpu().numpy() if hasattr(a, "detach") else a
    return np.array(a, dtype=np.float32, order="C", copy=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in place, as ``0.5 * tanh(x / 2) + 0.5`` (no overflow in ``exp``)."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def _softmax(x: np.ndarray) -> np.ndarray:
    """Softmax of a vector, in place."""
    x -= x.max()
    np.exp(x, out=x)
    x /= x.sum()
    return x


@dataclass(frozen=True)
class RecurrentLayer:
    """One GRU or LSTM layer: ``w_in`` ``(in, G*H)`` and ``w_hid`` ``(H, G*H)`` transposed, the input
    bias ``b_in`` holding every bias that can be added before the step loop, and for the GRU the
    hidden bias of the candidate gate ``b_hid_n`` (inside the reset gate's product). LSTM gates are
    reordered to input, forget, output, cell (the three sigmoid gates first)."""

    cell: str
    w_in: np.ndarray
    w_hid: np.ndarray
    b_in: np.ndarray
    b_hid_n: np.ndarray | None

    @classmethod
    def from_torch(cls, rnn: Any, layer: int) -> RecurrentLayer:
        """Layer ``layer`` of an ``nn.GRU`` / ``nn.LSTM`` (PyTorch gate order: GRU r, z, n; LSTM i, f, g, o)."""
        w_ih, w_hh = _f32(getattr(rnn, f"weight_ih_l{layer}")), _f32(getattr(rnn, f"weight_hh_l{layer}"))
        b_ih, b_hh = _f32(getattr(rnn, f"bias_ih_l{layer}")), _f32(getattr(rnn, f"bias_hh_l{layer}"))
        h = w_hh.shape[1]
        if type(rnn).__name__ == "GRU":
            b_in = b_ih.copy()
            b_in[: 2 * h] += b_hh[: 2 * h]  # r and z add both biases; n keeps b_hn inside r * (...)
            return cls("gru", _f32(w_ih.T), _f32(w_hh.T), b_in, b_hh[2 * h :].copy())
        order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]  # i, f, g, o -> i, f, o, g
        return cls("lstm", _f32(w_ih[order].T), _f32(w_hh[order].T), (b_ih + b_hh)[order], None)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Hidden states ``(T, H)`` over the inputs ``x`` ``(T, in)``, from a zero state."""
        gates_in = x @ self.w_in
        gates_in += self.b_in
        return self._gru(gates_in) if self.cell == "gru" else self._lstm(gates_in)

    def _gru(self, gates_in: np.ndarray) -> np.ndarray:
        h_size = self.w_hid.shape[0]
        out = np.empty((len(gates_in), h_size), dtype=np.float32)
        h = np.zeros(h_size, dtype=np.float32)
        for t, gi in enumerate(gates_in):
            gh = h @ self.w_hid
            rz = _sigmoid(gi[: 2 * h_size] + gh[: 2 * h_size])
            gh_n = gh[2 * h_size :]
            gh_n += self.b_hid_n
            gh_n *= rz[:h_size]
            gh_n += gi[2 * h_size :]
            n = np.tanh(gh_n, out=gh_n)
            h = np.add(n, rz[h_size:] * (h - n), out=out[t])  # (1 - z) * n + z * h
        return out

    def _lstm(self, gates_in: np.ndarray) -> np.ndarray:
        h_size = self.w_hid.shape[0]
        out = np.empty((len(gates_in), h_size), dtype=np.float32)
        h = np.zeros(h_size, dtype=np.float32)
        c = np.zeros(h_size, dtype=np.float32)
        for t, gi in enumerate(gates_in):
            gates = h @ self.w_hid
            gates += gi
            ifo = _sigmoid(gates[: 3 * h_size])
            g = np.tanh(gates[3 * h_size :])
            c *= ifo[h_size : 2 * h_size]
            c += ifo[:h_size] * g
            h = np.multiply(np.tanh(c), ifo[2 * h_size :], out=out[t])
        return out


class NumpySequenceNet:
    """A fitted :class:`~recommender.ml.sequence.network.SequenceNet` in eval mode, as NumPy arrays.

    ``items`` is the ``(V, d)`` output item matrix (``net.item_matrix()``: the tied or separate
    output embeddings, normalised when the scores are scaled cosines).
    """

    def __init__(self, net: Any, items: np.ndarray) -> None:
        self.readout: str = net.readout
        self.scale: float | None = net.scale
        self.repeat: bool = bool(net.repeat)
        self.items = np.ascontiguousarray(items, dtype=np.float32)  # shared with the caller, not copied
        self.item_emb = _f32(net.item_emb.weight)
        self.event_emb = None if net.event_emb is None else _f32(net.event_emb.weight)
        self.time_embs = None if net.time_embs is None else [_f32(e.weight) for e in net.time_embs]
        self.segment_emb = None if net.segment_emb is None else _f32(net.segment_emb.weight)
        self.layers = [RecurrentLayer.from_torch(net.rnn, k) for k in range(net.rnn.num_layers)]
        if self.readout == "attention":
            self.att_q, self.att_k = _f32(net.att_q.weight.T), _f32(net.att_k.weight.T)
            self.att_v = _f32(net.att_v.weight[0])
        self.proj = _f32(net.proj.weight.T)
        if self.repeat:
            self.rep_q, self.rep_k = _f32(net.rep_q.weight.T), _f32(net.rep_k.weight.T)
            self.rep_v = _f32(net.rep_v.weight[0])
            self.rep_gate_w, self.rep_gate_b = _f32(net.rep_gate.weight[0]), float(_f32(net.rep_gate.bias)[0])

    def encode(self, x: np.ndarray, ev: np.ndarray | None, tf: np.ndarray | None, seg: int) -> np.ndarray:
        """Hidden states ``(T, H)`` of the last layer over one history of compact ids ``x`` ``(T,)``
        (0 = unknown), with event types + 1 ``(T,)``, time features ``(T, 4)`` and segment + 1
        (each 0 / ``None`` when absent)."""
        e = self.item_emb[x]
        if self.event_emb is not None and ev is not None:
            e += self.event_emb[ev]
        if self.time_embs is not None and tf is not None:
            for k, emb in enumerate(self.time_embs):
                e += emb[tf[:, k]]
        if self.segment_emb is not None and seg:
            e += self.segment_emb[seg]
        for layer in self.layers:
            e = layer.run(e)
        return e

    def probs(
        self, x: np.ndarray, ev: np.ndarray | None = None, tf: np.ndarray | None = None, seg: int = 0
    ) -> np.ndarray:
        """Next-item probabilities ``(V,)`` after the whole history ``x`` (at least one event; see
        :meth:`encode` for the inputs)."""
        with single_threaded_blas():
            return self._probs(x, ev, tf, seg)

    def _probs(self, x: np.ndarray, ev: np.ndarray | None, tf: np.ndarray | None, seg: int) -> np.ndarray:
        hs = self.encode(x, ev, tf, seg)
        last = hs[-1]
        if self.readout == "last":
            feats = last
        else:  # NARM: attention of the last state over all states
            alpha = _sigmoid(hs @ self.att_k + last @ self.att_q) @ self.att_v
            feats = np.concatenate([last, alpha @ hs])
        r = feats @ self.proj
        if self.scale:  # F.normalize(r) * scale
            r *= self.scale / max(float(np.sqrt(r @ r)), 1e-12)
        p = _softmax(self.items @ r)
        if self.repeat:  # (1 - g) * softmax + g * attention over the history's own known items
            g = 0.5 * math.tanh(0.5 * (float(feats @ self.rep_gate_w) + self.rep_gate_b)) + 0.5
            p *= np.float32(1.0 - g)
            known = x > 0
            if known.any():
                e = np.tanh(hs[known] @ self.rep_k + last @ self.rep_q) @ self.rep_v
                np.add.at(p, x[known] - 1, _softmax(e) * np.float32(g))
        return p
