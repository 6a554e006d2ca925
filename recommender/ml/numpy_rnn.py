"""Recurrent layers (GRU, LSTM) stepped in NumPy, for scoring one history per web request.

No torch here: serving reads the weights from a model's safetensors file and runs them with
NumPy, so a request never pays torch's per-operator dispatch (a step of a small GRU is a dozen
NumPy calls on 100-300 numbers, about 17-20 us, nearly all of it call overhead) and a web
process needs no torch at all. :mod:`recommender.ml.sequence.inference` (the next-item network)
and :mod:`recommender.ml.intent` (the purchase-intent network) build on it.

BLAS threads: OpenBLAS wakes its worker threads for a 100 x 300 GEMV, and on a loaded machine
the same forward pass took 2.6 ms instead of 0.9 ms with its default threads. The options,
per call: ``threadpoolctl.threadpool_limits(1)`` scans the loaded libraries every time (3.3 ms);
avoiding BLAS with ``np.einsum`` makes the GEMVs 2.5-3x slower (about +0.3 ms a history); a
``ThreadpoolController`` made once (again only after new imports) and limited around the call
costs about 20 us. The last is :func:`single_threaded_blas`: one thread only while a forward
pass runs, the process's setting restored afterwards (a Celery worker that also trains keeps its
threads).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

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


def f32(a: Any) -> np.ndarray:
    """A float32, C-contiguous NumPy copy of a tensor or array."""
    a = a.detach().cpu().numpy() if hasattr(a, "detach") else a
    return np.array(a, dtype=np.float32, order="C", copy=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in place (SciPy's ``expit``: one call, no overflow)."""
    return expit(x, out=x)


@dataclass(frozen=True)
class RecurrentLayer:
    """One GRU or LSTM layer of ``N`` networks of the same shape (stacked on a leading axis, so
    that copies of one network step through a history together, each NumPy call serving all
    of them): ``w_in`` ``(N, in, G*H)`` and ``w_hid`` ``(N, H, G*H)`` transposed, the input bias
    ``b_in`` ``(N, 1, G*H)`` holding every bias that can be added before the step loop, and for
    the GRU the hidden bias of the candidate gate ``b_hid_n`` ``(N, H)`` (inside the reset gate's
    product). LSTM gates are reordered to input, forget, output, cell: the three sigmoid gates
    first, so that one call (SciPy's ``expit``) computes them all."""

    cell: str
    w_in: np.ndarray
    w_hid: np.ndarray
    b_in: np.ndarray
    b_hid_n: np.ndarray | None

    @classmethod
    def from_torch(cls, rnns: Sequence[Any], layer: int) -> RecurrentLayer:
        """Layer ``layer`` of each of the ``nn.GRU`` / ``nn.LSTM`` ``rnns``."""
        cell = "gru" if type(rnns[0]).__name__ == "GRU" else "lstm"
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return cls.from_arrays(cell, [[getattr(rnn, f"{name}_l{layer}") for name in names] for rnn in rnns])

    @classmethod
    def from_arrays(cls, cell: str, weights: Sequence[Sequence[Any]]) -> RecurrentLayer:
        """One layer of ``cell`` ("gru" or "lstm") from each network's ``(weight_ih, weight_hh,
        bias_ih, bias_hh)`` in PyTorch's layout and gate order (GRU r, z, n; LSTM i, f, g, o)."""
        if cell not in ("gru", "lstm"):
            raise ValueError(f"unknown recurrent cell {cell!r}")
        parts = []
        for w_ih, w_hh, b_ih, b_hh in weights:
            w_ih, w_hh, b_ih, b_hh = f32(w_ih), f32(w_hh), f32(b_ih), f32(b_hh)
            h = w_hh.shape[1]
            if cell == "gru":
                b_in = b_ih.copy()
                b_in[: 2 * h] += b_hh[: 2 * h]  # r and z add both biases; n keeps b_hn inside r * (...)
                parts.append((w_ih.T, w_hh.T, b_in, b_hh[2 * h :]))
            else:
                order = np.r_[0 : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]  # i, f, g, o -> i, f, o, g
                parts.append((w_ih[order].T, w_hh[order].T, (b_ih + b_hh)[order], None))
        return cls(
            cell,
            stack([part[0] for part in parts]),
            stack([part[1] for part in parts]),
            stack([part[2] for part in parts])[:, None, :],
            None if cell == "lstm" else stack([part[3] for part in parts]),
        )

    def run(self, x: np.ndarray) -> np.ndarray:
        """Hidden states ``(N, T, H)`` over the inputs ``x`` ``(N, T, in)``, from a zero state."""
        gates_in = x @ self.w_in
        gates_in += self.b_in
        return self._gru(gates_in) if self.cell == "gru" else self._lstm(gates_in)

    def last_hidden(self, gates_in: np.ndarray) -> np.ndarray:
        """The hidden state ``(H,)`` of the first network after one sequence, from its projected
        inputs ``gates_in`` ``(T, G*H)`` (``x @ w_in[0] + b_in[0, 0]``, or a sum of rows of tables
        made that way): one visitor's score. The LSTM steps on one-dimensional arrays in buffers
        made once, so that a step is nine NumPy calls and no allocation (``np.dot`` dispatches a
        vector by a matrix faster than ``@``); the GRU goes through :meth:`_gru`."""
        h_size = self.w_hid.shape[1]
        if not len(gates_in):
            return np.zeros(h_size, dtype=np.float32)
        if self.cell != "lstm":
            return self._gru(np.ascontiguousarray(gates_in[None]))[0, -1]
        w_hid = self.w_hid[0]
        gates = np.empty(4 * h_size, dtype=np.float32)
        ifo, cell_gate = gates[: 3 * h_size], gates[3 * h_size :]
        i, f, o = gates[:h_size], gates[h_size : 2 * h_size], gates[2 * h_size : 3 * h_size]
        h = np.zeros(h_size, dtype=np.float32)
        c = np.zeros(h_size, dtype=np.float32)
        new = np.empty(h_size, dtype=np.float32)
        for step in gates_in:
            np.dot(h, w_hid, out=gates)
            gates += step
            expit(ifo, out=ifo)
            np.tanh(cell_gate, out=cell_gate)
            c *= f
            c += np.multiply(i, cell_gate, out=new)
            np.tanh(c, out=h)
            h *= o
        return h

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
            sigmoid(np.add(gi_rz[t], gh_rz, out=rz))
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
            ifo = expit(gates[:, : 3 * h_size], out=gates[:, : 3 * h_size])
            np.tanh(gates[:, 3 * h_size :], out=gates[:, 3 * h_size :])
            c *= ifo[:, h_size : 2 * h_size]
            c += ifo[:, :h_size] * gates[:, 3 * h_size :]
            h = np.multiply(np.tanh(c), ifo[:, 2 * h_size :], out=out[:, t])[:, None]
        return out


def stack(arrays: Sequence[Any]) -> np.ndarray:
    """Arrays or tensors of one shape as one float32, C-contiguous ``(N, ...)`` array."""
    return np.ascontiguousarray(np.stack([f32(a) for a in arrays]), dtype=np.float32)


def row_softmax(x: np.ndarray) -> np.ndarray:
    """Softmax of each row of ``x`` ``(N, K)``, in place."""
    x -= x.max(axis=1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=1, keepdims=True)
    return x
