"""Small helpers shared by the non-neural models (sparse matrices, state checking)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.ml.base import ModelFileError


def require(tensors: dict[str, np.ndarray], name: str, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """``tensors[name]`` with the expected shape (``None`` = any length), else ModelFileError."""
    if name not in tensors:
        raise ModelFileError(f"missing tensor {name!r}")
    arr = tensors[name]
    if shape is not None and (
        arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape, strict=True))
    ):
        raise ModelFileError(f"tensor {name!r} has shape {arr.shape}, expected {shape}")
    return arr


def config_int(config: dict[str, Any], name: str) -> int:
    """A non-negative integer from a saved config, else ModelFileError."""
    val = config.get(name)
    if not isinstance(val, int) or isinstance(val, bool) or val < 0:
        raise ModelFileError(f"config field {name!r} is missing or invalid: {val!r}")
    return val


def csr_tensors(prefix: str, mat: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as three arrays for safetensors."""
    return {
        f"{prefix}_indptr": mat.indptr.astype(np.int64),
        f"{prefix}_indices": mat.indices.astype(np.int32),
        f"{prefix}_data": mat.data.astype(np.float32),
    }


def csr_from_tensors(tensors: dict[str, np.ndarray], prefix: str, shape: tuple[int, int]) -> sp.csr_matrix:
    """Inverse of :func:`csr_tensors`, validating the structure (ModelFileError if inconsistent)."""
    indptr = require(tensors, f"{prefix}_indptr", (shape[0] + 1,))
    indices = require(tensors, f"{prefix}_indices", (None,))
    data = require(tensors, f"{prefix}_data", (len(indices),))
    if indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
        raise ModelFileError(f"{prefix}: inconsistent sparse structure")
    if len(indices) and (indices.min() < 0 or indices.max() >= shape[1]):
        raise ModelFileError(f"{prefix}: column index out of range")
    return sp.csr_matrix((data.astype(np.float32), indices.astype(np.int32), indptr.astype(np.int64)), shape=shape)


def row_ranks(indptr: np.ndarray, order_within: np.ndarray) -> np.ndarray:
    """For entries of a CSR matrix reordered by ``order_within`` (row-major, rows kept contiguous),
    the 0-based position of each entry inside its row."""
    counts = np.diff(indptr)
    row_start = np.repeat(indptr[:-1], counts)
    return np.arange(len(order_within)) - row_start


def ranges(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ``arange(start, start + length)`` for every pair, and the offset inside each."""
    total = int(lengths.sum())
    group_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    offset = np.arange(total) - group_start
    return np.repeat(starts, lengths) + offset, offset


def csr_top_n(mat: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row (ties: smaller column first)."""
    mat = mat.tocsr()
    mat.sum_duplicates()
    if mat.nnz == 0 or np.diff(mat.indptr).max() <= n:
        return mat
    rows = np.repeat(np.arange(mat.shape[0]), np.diff(mat.indptr))
    order = np.lexsort((mat.indices, -mat.data, rows))
    keep = order[row_ranks(mat.indptr, order) < n]
    keep.sort()  # back to row-major, column-sorted order
    out = sp.csr_matrix(
        (mat.data[keep], mat.indices[keep], np.concatenate([[0], np.cumsum(np.minimum(np.diff(mat.indptr), n))])),
        shape=mat.shape,
    )
    return out


def sessions_matrix(sessions: Sequence[np.ndarray], n_items: int, binary: bool = True) -> sp.csr_matrix:
    """Sequence x item matrix; entries are 1 (``binary``) or occurrence counts."""
    lengths = np.fromiter((len(s) for s in sessions), dtype=np.int64, count=len(sessions))
    cols = np.concatenate(sessions) if len(sessions) else np.empty(0, dtype=np.int64)
    rows = np.repeat(np.arange(len(sessions)), lengths)
    mat = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(sessions), n_items))
    mat.sum_duplicates()
    if binary:
        mat.data[:] = 1.0
    return mat


def history_matrix(histories: Sequence[np.ndarray], n_items: int, weights: Sequence[np.ndarray]) -> sp.csr_matrix:
    """Batch x item matrix with ``weights[b][j]`` on item ``histories[b][j]``; an item repeated in a
    history keeps its largest weight (its most recent occurrence for recency weights)."""
    hist = [np.asarray(h, dtype=np.int64) for h in histories]
    lengths = np.fromiter((len(h) for h in hist), dtype=np.int64, count=len(hist))
    if lengths.sum() == 0:
        return sp.csr_matrix((len(hist), n_items), dtype=np.float32)
    cols = np.concatenate(hist)
    vals = np.concatenate([np.asarray(w, dtype=np.float32) for w in weights])
    rows = np.repeat(np.arange(len(hist)), lengths)
    ok = (cols >= 0) & (cols < n_items)
    rows, cols, vals = rows[ok], cols[ok], vals[ok]
    # max weight per (row, col)
    key = rows * n_items + cols
    order = np.lexsort((-vals, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    sel = order[first]  # in (row, col) order: the CSR arrays directly (a COO conversion costs more)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[sel], minlength=len(hist)))])
    return sp.csr_matrix((vals[sel], cols[sel], indptr), shape=(len(hist), n_items), dtype=np.float32)


def largest_weight_per_item(history: np.ndarray, weights: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """The known items of one history (``0 <= item < n_items``), each once and in increasing order,
    with its largest weight (for recency weights: its most recent occurrence), as
    :func:`history_matrix` keeps them for a batch."""
    known = (history >= 0) & (history < n_items)
    history, weights = history[known], weights[known]
    order = np.lexsort((-weights, history))
    first = np.ones(len(order), dtype=bool)
    first[1:] = history[order][1:] != history[order][:-1]
    keep = order[first]
    return history[keep], weights[keep]


def csr_rows_dense(mat: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray, n_cols: int) -> np.ndarray:
    """``sum_r weights[r] * mat[rows[r]]`` as a dense float32 vector, without building sparse
    matrices: the products and sums in the order ``weights @ mat[rows]`` makes them, for ``rows``
    in increasing order (what scoring one history needs; a sparse product costs more to set up)."""
    starts = mat.indptr[rows]
    lengths = mat.indptr[rows + 1] - starts
    flat, _ = ranges(starts, lengths)
    out = np.zeros(n_cols, dtype=np.float32)
    np.add.at(out, mat.indices[flat], np.repeat(weights.astype(np.float32), lengths) * mat.data[flat])
    return out
