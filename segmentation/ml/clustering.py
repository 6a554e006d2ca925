"""K-means clusters of customers on scaled R, F, M, with k chosen by silhouette.

Features (one row per customer)::

    log1p(recency_days), log1p(frequency), sign(m) * log1p(|m|)

each standardised to mean 0, standard deviation 1 (a constant feature stays 0).
The log tames the long tails of frequency and spend; the sign-safe log keeps
refunded (negative) customers on the scale.

For speed on large shops, k-means is fitted on a deterministic random sample
(``fit_sample_size``, default 20,000 customers) and every customer is then
assigned to the nearest centre; the silhouette that picks k is computed on a
smaller sample (``silhouette_sample_size``, default 4,000) because it costs
O(n^2). Both samples are drawn with ``random_state``, so the same input gives
the same clusters.

Degenerate input (fewer than 3 customers, or fewer than 2 distinct points)
gives a single cluster and ``degenerate_reason_`` says why.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

__all__ = ["RFMClusterer", "rfm_features", "silhouette_scores"]

_FEATURES = ("recency", "frequency", "monetary")


def rfm_features(recency_days: ArrayLike, frequency: ArrayLike, monetary: ArrayLike) -> np.ndarray:
    """The unscaled ``(n, 3)`` feature matrix: log1p(R), log1p(F), sign-safe log of M."""
    rec = np.asarray(recency_days, dtype=float)
    freq = np.asarray(frequency, dtype=float)
    mon = np.asarray(monetary, dtype=float)
    if not (rec.shape == freq.shape == mon.shape) or rec.ndim != 1:
        raise ValueError("recency_days, frequency and monetary must be 1-D arrays of the same length")
    for name, a in (("recency_days", rec), ("frequency", freq), ("monetary", mon)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or inf")
    return np.column_stack(
        [np.log1p(np.clip(rec, 0, None)), np.log1p(np.clip(freq, 0, None)), np.sign(mon) * np.log1p(np.abs(mon))]
    )


def silhouette_scores(X: np.ndarray, labelings: dict[int, np.ndarray], block_rows: int = 1024) -> dict[int, float]:
    """Mean silhouette of several labelings of the same points, in one pass.

    Same definition as :func:`sklearn.metrics.silhouette_score` (Euclidean;
    points alone in their cluster score 0), but the pairwise distances are
    computed once, block by block, and summed per cluster for every labeling
    with one matrix product - about 10x faster than calling sklearn per k.
    """
    if not labelings:
        return {}
    X = np.asarray(X, dtype=float)
    n = len(X)
    keys = list(labelings)
    codes = [np.unique(labelings[k], return_inverse=True)[1].ravel() for k in keys]
    sizes = [np.bincount(c) for c in codes]
    offsets = np.cumsum([0] + [len(sz) for sz in sizes])
    onehot = np.zeros((n, offsets[-1]))
    for j, c in enumerate(codes):
        onehot[np.arange(n), offsets[j] + c] = 1.0
    sq = (X**2).sum(axis=1)
    totals = np.zeros((n, offsets[-1]))
    for start in range(0, n, block_rows):
        blk = slice(start, start + block_rows)
        d2 = sq[blk, None] + sq[None, :] - 2.0 * X[blk] @ X.T
        totals[blk] = np.sqrt(np.clip(d2, 0, None)) @ onehot
    rows = np.arange(n)
    out: dict[int, float] = {}
    for j, k in enumerate(keys):
        c, sz = codes[j], sizes[j].astype(float)
        part = totals[:, offsets[j] : offsets[j + 1]]
        own = sz[c]
        a = part[rows, c] / np.maximum(own - 1, 1)
        other = part / sz[None, :]
        other[rows, c] = np.inf
        b = other.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sil = np.where(own > 1, (b - a) / np.maximum(a, b), 0.0)
        out[k] = float(np.nan_to_num(sil).mean())
    return out


def _level(z: float, low: str, mid: str, high: str, cut: float = 0.5) -> str:
    return high if z >= cut else low if z <= -cut else mid


@dataclass
class RFMClusterer:
    """Cluster customers on log-scaled, standardised R, F, M.

    >>> c = RFMClusterer(k_range=(2, 8)).fit(recency_days, frequency, monetary)
    >>> c.labels_, c.n_clusters_, c.cluster_summary_, c.coords_

    Fitted attributes: ``labels_`` (cluster per customer; cluster 0 is the
    most valuable - most recent, frequent and high spending on average),
    ``n_clusters_``, ``silhouette_scores_`` ({k: score}), ``cluster_centers_``
    (in standardised feature space), ``cluster_summary_`` (one row per cluster:
    size, share, mean recency days, mean and median frequency, mean monetary,
    z-scores and a ``description`` in words), ``coords_`` (``(n, 2)`` float32
    principal-component coordinates for a scatter plot), ``center_coords_``,
    ``axis_labels_``, ``degenerate_reason_`` (None normally).

    ``n_threads`` caps OpenMP/BLAS threads during ``fit`` (None = library default).
    """

    k_range: tuple[int, int] = (2, 8)
    random_state: int = 0
    n_init: int = 3
    fit_sample_size: int = 20_000
    silhouette_sample_size: int = 4_000
    max_iter: int = 100
    n_threads: int | None = 1

    # ------------------------------------------------------------------ fit
    def fit(self, recency_days: ArrayLike, frequency: ArrayLike, monetary: ArrayLike) -> RFMClusterer:
        """Scale, choose k by silhouette, cluster every customer, describe the clusters."""
        # OpenMP/BLAS threads fighting over shared cores (a Celery worker, a busy
        # server) made k-means 10-30x slower in measurements; one thread is the default.
        with threadpool_limits(limits=self.n_threads):
            return self._fit(recency_days, frequency, monetary)

    def _fit(self, recency_days: ArrayLike, frequency: ArrayLike, monetary: ArrayLike) -> RFMClusterer:
        k_min, k_max = self.k_range
        if not (1 <= k_min <= k_max):
            raise ValueError(f"k_range must be (k_min, k_max) with 1 <= k_min <= k_max, got {self.k_range}")
        raw = np.column_stack([np.asarray(v, dtype=float) for v in (recency_days, frequency, monetary)])
        feats = rfm_features(recency_days, frequency, monetary)
        n = len(feats)
        if n == 0:
            raise ValueError("no customers to cluster")
        self.mean_ = feats.mean(axis=0)
        std = feats.std(axis=0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        z = (feats - self.mean_) / self.scale_

        rng = np.random.default_rng(self.random_state)
        fit_idx = np.sort(rng.choice(n, self.fit_sample_size, replace=False)) if n > self.fit_sample_size else None
        fit_z = z if fit_idx is None else z[fit_idx]
        n_distinct = len(np.unique(np.round(fit_z, 9), axis=0))
        k_hi = min(k_max, n_distinct, len(fit_z) - 1)

        self.silhouette_scores_: dict[int, float] = {}
        self.degenerate_reason_: str | None = None
        if k_hi < max(k_min, 2):
            if n >= 3 and n_distinct < 2:
                self.degenerate_reason_ = "all customers have the same recency, frequency and spend"
            else:
                self.degenerate_reason_ = (
                    f"too few customers or distinct customer profiles ({n} customers, {n_distinct} distinct) "
                    f"to compare {max(k_min, 2)} or more clusters"
                )
            self.n_clusters_ = 1
            centers = fit_z.mean(axis=0, keepdims=True)
            labels = np.zeros(n, dtype=np.int64)
        else:
            sil_idx = (
                rng.choice(len(fit_z), self.silhouette_sample_size, replace=False)
                if len(fit_z) > self.silhouette_sample_size
                else slice(None)
            )
            sil_z = fit_z[sil_idx]
            fitted: dict[int, KMeans] = {}
            for k in range(max(k_min, 2), k_hi + 1):
                with warnings.catch_warnings():  # duplicate points on small shops
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    fitted[k] = self._kmeans(k).fit(fit_z)
            candidates = {k: km.labels_[sil_idx] for k, km in fitted.items() if len(np.unique(km.labels_[sil_idx])) > 1}
            self.silhouette_scores_ = silhouette_scores(sil_z, candidates)
            best: tuple[float, int, KMeans] | None = None
            for k, score in self.silhouette_scores_.items():  # ascending k: ties keep the smaller k
                if best is None or score > best[0] + 1e-9:
                    best = (score, k, fitted[k])
            if best is None:  # every candidate collapsed onto one cluster in the sample
                self.degenerate_reason_ = "no k in k_range gave two non-empty clusters"
                self.n_clusters_ = 1
                centers = fit_z.mean(axis=0, keepdims=True)
                labels = np.zeros(n, dtype=np.int64)
            else:
                km = best[2]
                centers = km.cluster_centers_
                labels = km.predict(z) if fit_idx is not None else km.labels_.astype(np.int64)
                present = np.unique(labels)
                centers = centers[present]
                labels = np.searchsorted(present, labels)
                self.n_clusters_ = len(present)

        # order clusters by value: recent (low recency z), frequent, high spend first
        value = -centers[:, 0] + centers[:, 1] + centers[:, 2]
        order = np.argsort(-value, kind="stable")
        remap = np.empty_like(order)
        remap[order] = np.arange(len(order))
        self.cluster_centers_ = centers[order]
        self.labels_ = remap[labels]
        self._project(z)
        self.cluster_summary_ = self._summarise(raw, self.labels_)
        return self

    def _kmeans(self, k: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=self.n_init, max_iter=self.max_iter, random_state=self.random_state)

    # ------------------------------------------------------------------ predict
    def predict(self, recency_days: ArrayLike, frequency: ArrayLike, monetary: ArrayLike) -> np.ndarray:
        """Nearest fitted centre for new customers (same scaling as in ``fit``)."""
        if not hasattr(self, "cluster_centers_"):
            raise RuntimeError("call fit() first")
        z = (rfm_features(recency_days, frequency, monetary) - self.mean_) / self.scale_
        c = self.cluster_centers_
        return (-2.0 * z @ c.T + (c**2).sum(axis=1)).argmin(axis=1)  # squared distance up to ||z||^2

    # ------------------------------------------------------------------ helpers
    def _project(self, z: np.ndarray) -> None:
        """2-D principal-component coordinates of every customer and centre."""
        cov = np.cov(z, rowvar=False) if len(z) > 1 else np.zeros((3, 3))
        eigval, eigvec = np.linalg.eigh(np.atleast_2d(cov))
        top = np.argsort(eigval)[::-1][:2]
        comps = eigvec[:, top].T  # (2, 3)
        for i in range(2):  # deterministic sign: largest loading positive
            if comps[i, np.argmax(np.abs(comps[i]))] < 0:
                comps[i] = -comps[i]
        total = float(eigval.sum())
        share = eigval[top] / total if total > 0 else np.zeros(2)
        self.components_ = comps
        self.coords_ = (z @ comps.T).astype(np.float32)
        self.center_coords_ = (self.cluster_centers_ @ comps.T).astype(np.float32)
        labels = []
        for i in range(2):
            terms = [
                f"{'+' if comps[i, j] > 0 else '-'}{_FEATURES[j]}"
                for j in np.argsort(-np.abs(comps[i]))
                if abs(comps[i, j]) >= 0.3
            ]
            labels.append(f"PC{i + 1} ({share[i]:.0%} of variance: {' '.join(terms) or 'n/a'})")
        self.axis_labels_ = labels

    def _summarise(self, raw: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
        rows = []
        n = len(labels)
        for c in range(self.n_clusters_):
            members = raw[labels == c]
            zr, zf, zm = self.cluster_centers_[c]
            median_f = float(np.median(members[:, 1])) if len(members) else float("nan")
            freq_word = _level(zf, "one-off" if median_f <= 1 else "infrequent", "occasional", "frequent")
            desc = ", ".join(
                [
                    _level(-zr, "lapsed", "moderately recent", "recent"),
                    freq_word,
                    "net refunds"
                    if len(members) and members[:, 2].mean() < 0
                    else _level(zm, "low spend", "average spend", "high spend"),
                ]
            )
            if self.n_clusters_ == 1:
                desc = "all customers (single cluster)"
            rows.append(
                {
                    "cluster": c,
                    "size": len(members),
                    "share": len(members) / n if n else 0.0,
                    "mean_recency_days": float(members[:, 0].mean()) if len(members) else float("nan"),
                    "mean_frequency": float(members[:, 1].mean()) if len(members) else float("nan"),
                    "median_frequency": median_f,
                    "mean_monetary": float(members[:, 2].mean()) if len(members) else float("nan"),
                    "z_recency": float(zr),
                    "z_frequency": float(zf),
                    "z_monetary": float(zm),
                    "description": desc,
                }
            )
        return pd.DataFrame(rows)
