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

BLAS threads: OpenBLAS wakes its worker threads for a 100 x 300 GEMV, and on a loaded machine
the same forward pass took 2.6 ms instead of 0.9 ms with its default threads. The options,
per call: ``threadpoolctl.threadpool_limits(1)`` scans the loaded libraries every time (3.3 ms);
avoiding BLAS with ``np.einsum`` makes the GEMVs 2.5-3x slower (about +0.3 ms a history); a
``ThreadpoolController`` made once (again only after new imports) and limited around the call
costs about 20 us. The last is
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

import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

_blas_lock = threading.Lock()
_blas_users = 0
_blas_controller: Any = None  # threadpoolctl.ThreadpoolController, made on first use
_blas_saved: Any = None  # the limiter that restores the process's BLAS threads
_blas_modules = 0  # len(sys.modules) when the controller was made


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with BLAS on one thread, restoring the previous setting when the last of the
    concurrent callers leaves (a counter under a lock, so that overlapping calls on several threads
    cannot restore each other's "1" and leave the process single-threaded)."""
    global _blas_users, _blas_controller, _blas_saved, _blas_modules
    with _blas_lock:
        if _blas_users == 0:
            # scanning the loaded libraries is the slow part: again only after new imports (an
            # extension module imported since may have brought a BLAS of its own, e.g. SciPy's)
            if _blas_controller is None or _blas_modules != len(sys.modules):
                from threadpoolctl import ThreadpoolController

                _blas_controller = ThreadpoolController().select(user_api="blas")
                _blas_modules = len(sys.modules)
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


@dataclass(frozen=True)
class RecurrentLayer:
    """One GRU or LSTM layer of ``N`` networks of the same shape (stacked on a leading axis, so
    that copies of one network step through a history together, each NumPy call serving all
    of them): ``w_in`` ``(N, in, G*H)`` and ``w_hid`` ``(N, H, G*H)`` transposed, the input bias
    ``b_in`` ``(N, 1, G*H)`` holding every bias that can be added before the step loop, and for
    the GRU the hidden bias of the candidate gate ``b_hid_n`` ``(N, H)`` (inside the reset gate's
    product). LSTM gates are reordered to input, forget, output, cell (the three sigmoid gates first)."""

    cell: str
    w_in: np.ndarray
    w_hid: np.ndarray
    b_in: np.ndarray
    b_hid_n: np.ndarray | None

    @classmethod
    def from_torch(cls, rnns: Sequence[Any], layer: int) -> RecurrentLayer:
        """Layer ``layer`` of each of the ``nn.GRU`` / ``nn.LSTM`` ``rnns`` (PyTorch gate order:
        GRU r, z, n; LSTM i, f, g, o)."""
        parts = []
        for rnn in rnns:
            w_ih, w_hh = _f32(getattr(rnn, f"weight_ih_l{layer}")), _f32(getattr(rnn, f"weight_hh_l{layer}"))
            b_ih, b_hh = _f32(getattr(rnn, f"bias_ih_l{layer}")), _f32(getattr(rnn, f"bias_hh_l{layer}"))
            h = w_hh.shape[1]
            if type(rnn).__name__ == "GRU":
                b_in = b_ih.copy()
                b_in[: 2 * h] += b_hh[: 2 * h]  # r and z add both biases; n keeps b_hn inside r * (...)
                parts.append(("gru", w_ih.T, w_hh.T, b_in, b_hh[2 * h :]))
            else:
                order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]  # i, f, g, o -> i, f, o, g
                parts.append(("lstm", w_ih[order].T, w_hh[order].T, (b_ih + b_hh)[order], None))
        cell = parts[0][0]
        b_hid_n = None if cell == "lstm" else _stack([part[4] for part in parts])
        return cls(
            cell,
            *(_stack([part[k] for part in parts]) for k in (1, 2)),
            _stack([part[3] for part in parts])[:, None, :],
            b_hid_n,
        )

    def run(self, x: np.ndarray) -> np.ndarray:
        """Hidden states ``(N, T, H)`` over the inputs ``x`` ``(N, T, in)``, from a zero state."""
        gates_in = x @ self.w_in
        gates_in += self.b_in
        return self._gru(gates_in) if self.cell == "gru" else self._lstm(gates_in)

    def _gru(self, gates_in: np.ndarray) -> np.ndarray:
        # every step writes into buffers made once (views of them included): a step is a dozen
        # NumPy calls on 100-300 numbers, so the calls and allocations are the cost, not the sums
        n_nets, steps, _ = gates_in.shape
        h_size = self.w_hid.shape[1]
        gi_rz = np.ascontiguousarray(gates_in[:, :, : 2 * h_size].transpose(1, 0, 2))  # (T, N, 2H)
        gi_n = np.ascontiguousarray(gates_in[:, :, 2 * h_size :].transpose(1, 0, 2))  # (T, N, H)
        out = np.empty((steps, n_nets, h_size), dtype=np.float32)
        gh = np.empty((n_nets, 1, 3 * h_size), dtype=np.float32)
        gh_rz, gh_n = gh[:, 0, : 2 * h_size], gh[:, 0, 2 * h_size :]
        rz = np.empty((n_nets, 2 * h_size), dtype=np.float32)
        r, z = rz[:, :h_size], rz[:, h_size:]
        diff = np.empty((n_nets, h_size), dtype=np.float32)
        h = np.zeros((n_nets, h_size), dtype=np.float32)
        for t in range(steps):
            np.matmul(h[:, None], self.w_hid, out=gh)
            _sigmoid(np.add(gi_rz[t], gh_rz, out=rz))
            gh_n += self.b_hid_n
            gh_n *= r
            gh_n += gi_n[t]
            n = np.tanh(gh_n, out=gh_n)
            np.subtract(h, n, out=diff)
            diff *= z
            h = np.add(n, diff, out=out[t])  # (1 - z) * n + z * h
        return out.transpose(1, 0, 2)

    def _lstm(self, gates_in: np.ndarray) -> np.ndarray:
        n_nets, steps, _ = gates_in.shape
        h_size = self.w_hid.shape[1]
        out = np.empty((n_nets, steps, h_size), dtype=np.float32)
        h = np.zeros((n_nets, 1, h_size), dtype=np.float32)
        c = np.zeros((n_nets, h_size), dtype=np.float32)
        for t in range(steps):
            gates = (h @ self.w_hid)[:, 0]
            gates += gates_in[:, t]
            ifo = _sigmoid(gates[:, : 3 * h_size])
            g = np.tanh(gates[:, 3 * h_size :])
            c *= ifo[:, h_size : 2 * h_size]
            c += ifo[:, :h_size] * g
            h = np.multiply(np.tanh(c), ifo[:, 2 * h_size :], out=out[:, t])[:, None]
        return out


def _stack(arrays: Sequence[Any]) -> np.ndarray:
    """Arrays or tensors of one shape as one float32, C-contiguous ``(N, ...)`` array."""
    return np.ascontiguousarray(np.stack([_f32(a) for a in arrays]), dtype=np.float32)


def _row_softmax(x: np.ndarray) -> np.ndarray:
    """Softmax of each row of ``x`` ``(N, K)``, in place."""
    x -= x.max(axis=1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=1, keepdims=True)
    return x


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
        self.items = _stack(items)
        self.item_emb = _stack([net.item_emb.weight for net in nets])
        self.event_emb = None if first.event_emb is None else _stack([net.event_emb.weight for net in nets])
        self.time_embs = None
        if first.time_embs is not None:
            self.time_embs = [_stack([net.time_embs[k].weight for net in nets]) for k in range(len(first.time_embs))]
        self.segment_emb = None if first.segment_emb is None else _stack([net.segment_emb.weight for net in nets])
        self.layers = [RecurrentLayer.from_torch([net.rnn for net in nets], k) for k in range(first.rnn.num_layers)]
        if self.readout == "attention":
            self.att_q = _stack([net.att_q.weight.T for net in nets])
            self.att_k = _stack([net.att_k.weight.T for net in nets])
            self.att_v = _stack([net.att_v.weight[0] for net in nets])[:, :, None]
        self.proj = _stack([net.proj.weight.T for net in nets])
        if self.repeat:
            self.rep_q = _stack([net.rep_q.weight.T for net in nets])
            self.rep_k = _stack([net.rep_k.weight.T for net in nets])
            self.rep_v = _stack([net.rep_v.weight[0] for net in nets])[:, :, None]
            self.rep_gate_w = _stack([net.rep_gate.weight[0] for net in nets])
            self.rep_gate_b = _stack([net.rep_gate.bias for net in nets])[:, 0]

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
            alpha = _sigmoid(hs @ self.att_k + last @ self.att_q) @ self.att_v  # (N, T, 1)
            feats = np.concatenate([last, alpha.transpose(0, 2, 1) @ hs], axis=2)
        r = feats @ self.proj  # (N, 1, D)
        if self.scale:  # F.normalize(r) * scale
            r *= self.scale / np.maximum(np.sqrt((r * r).sum(axis=2, keepdims=True)), 1e-12)
        p = _row_softmax((r @ self.items.transpose(0, 2, 1))[:, 0])  # (N, V)
        if self.repeat:  # (1 - g) * softmax + g * attention over the history's own known items
            g = _sigmoid((feats[:, 0] * self.rep_gate_w).sum(axis=1) + self.rep_gate_b)[:, None]  # (N, 1)
            p *= 1.0 - g
            known = x > 0
            if known.any():
                e = (np.tanh(hs[:, known] @ self.rep_k + last @ self.rep_q) @ self.rep_v)[:, :, 0]  # (N, K)
                w = _row_softmax(e) * g
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
