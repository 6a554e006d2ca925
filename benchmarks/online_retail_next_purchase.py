"""Next-purchase prediction on UCI Online Retail, every model plus an ablation of the GRU's optional inputs.

    python -m benchmarks.online_retail_next_purchase ../shared/data/online-retail/online_retail.parquet \
        --json benchmarks/results/online_retail_next_purchase.json

Protocol (:func:`recommender.ml.datasets.load_online_retail`): cancellations (``InvoiceNo``
starting with ``C``), non-positive quantities and rows without ``CustomerID`` are dropped; one
purchase sequence per customer, in time order (lines of an invoice in file order); the last 30
days are the test period: every test purchase line is a target, predicted from all of the
customer's earlier lines, with full ranking over every item seen in the calibration period
(labels unknown to it are misses for every model).

RFM segment: computed per customer from calibration-period invoices only (before the test
cutoff; no leakage): recency (days from the last invoice to the cutoff), frequency (distinct
invoices) and monetary value (sum of quantity x unit price) are turned into quintile scores
1..5; the segment is ``3 * (R - 1) + FM level`` with FM level = low / mid / high (0 / 1 / 2) from the mean
of the F and M scores (15 segments), and customers without calibration purchases get segment 15.

Models: the baselines registered by :mod:`recommender.ml.registry` (tuned on a validation split
carved from the end of the calibration data by :mod:`benchmarks.next_item`) and the GRU with
and without each optional input (time features: hour, weekday, month, gap; RFM segment).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.report import write_json
from recommender.ml.data import SessionData
from recommender.ml.datasets import load_online_retail

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared/data/online-retail/online_retail.parquet"
NEW_CUSTOMER_SEGMENT = 15
N_SEGMENTS = 16

#: table row name -> (registry name, constructor overrides)
GRU_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "gru": ("gru", {}),
    "gru+time": ("gru", {"use_time": True}),
    "gru+rfm": ("gru", {"use_segments": True, "n_segments": N_SEGMENTS}),
    "gru+time+rfm": ("gru", {"use_time": True, "use_segments": True, "n_segments": N_SEGMENTS}),
}
BASELINES = ("pop", "sr", "itemknn", "vsknn")


def _quintiles(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Scores 1..5 by rank (ties share the average rank)."""
    ranks = pd.Series(values if higher_is_better else -values).rank(method="average", pct=True).to_numpy()
    return np.clip(np.ceil(ranks * 5), 1, 5).astype(np.int64)


def rfm_segments(path: Path, cutoff: float) -> dict[int, int]:
    """Customer id -> RFM segment (0..14) from invoices strictly before ``cutoff`` (unix seconds)."""
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, parse_dates=["InvoiceDate"])
    df = df[df["CustomerID"].notna() & ~df["InvoiceNo"].astype(str).str.startswith("C") & (df["Quantity"] > 0)]
    ts = df["InvoiceDate"].astype("datetime64[s]").astype("int64").astype(np.float64)
    df = df[ts < cutoff].assign(
        ts=ts[ts < cutoff], customer=df["CustomerID"].astype("int64"), value=df["Quantity"] * df["UnitPrice"]
    )
    g = df.groupby("customer")
    summary = pd.DataFrame({"last": g["ts"].max(), "frequency": g["InvoiceNo"].nunique(), "monetary": g["value"].sum()})
    r = _quintiles((cutoff - summary["last"].to_numpy()) / 86400.0, higher_is_better=False)
    f = _quintiles(summary["frequency"].to_numpy(dtype=np.float64), higher_is_better=True)
    m = _quintiles(summary["monetary"].to_numpy(dtype=np.float64), higher_is_better=True)
    fm = (f + m) / 2.0
    level = np.where(fm <= 2, 0, np.where(fm <= 3.5, 1, 2))
    seg = 3 * (r - 1) + level
    return dict(zip(summary.index.to_numpy().tolist(), seg.tolist(), strict=True))


def _with_segments(data: SessionData, seg_of: dict[int, int]) -> SessionData:
    keys = data.meta["keys"]
    segs = np.asarray([seg_of.get(int(k), NEW_CUSTOMER_SEGMENT) for k in keys], dtype=np.int64)
    return SessionData(data.sessions, data.n_items, data.event_types, data.timestamps, segs, meta=dict(data.meta))


def load(path: Path, test_days: float = 30.0) -> tuple[SimpleNamespace, dict[str, Any]]:
    split = load_online_retail(path, test_days=test_days)
    seg_of = rfm_segments(path, split.cutoff)
    split.train = _with_segments(split.train, seg_of)
    split.test = _with_segments(split.test, seg_of)
    cases = split.test_cases()
    info = {
        "cutoff_utc": pd.Timestamp(split.cutoff, unit="s").isoformat(),
        "train_customers": len(split.train),
        "train_events": split.train.n_events,
        "train_items": split.train.n_items,
        "test_customers": len(split.test),
        "test_cases": len(cases),
        "unknown_labels": cases.n_unknown_labels,
        "segment_counts": np.bincount(split.train.segments, minlength=N_SEGMENTS).tolist(),
        "test_new_customers": int((split.test.segments == NEW_CUSTOMER_SEGMENT).sum()),
    }
    return SimpleNamespace(train=split.train, test=cases), info


def _run(
    label: str, name: str, extra: dict[str, Any], data, seed: int | None, budget_s: float, val_frac: float
) -> dict[str, Any]:
    from benchmarks.next_item import run_model

    r = run_model(name, data, seed, budget_s, extra, val_frac)
    r["label"] = label
    return r


def markdown(runs: dict[str, list[dict[str, Any]]]) -> str:
    cols = [
        ("HR@20", lambda r: 100 * r["metrics"]["hr@20"], "{:.2f}"),
        ("MRR@20", lambda r: 100 * r["metrics"]["mrr@20"], "{:.2f}"),
        ("HR@10", lambda r: 100 * r["metrics"]["hr@10"], "{:.2f}"),
        ("MRR@10", lambda r: 100 * r["metrics"]["mrr@10"], "{:.2f}"),
        ("train s", lambda r: r["train_seconds"], "{:.1f}"),
        ("p50 ms", lambda r: r["latency"]["p50_ms"], "{:.2f}"),
    ]
    lines = ["| model | " + " | ".join(c[0] for c in cols) + " | runs |", "|---" * (len(cols) + 2) + "|"]
    for label, rs in runs.items():
        cells = []
        for _, get, fmt in cols:
            vals = [get(r) for r in rs]
            cell = fmt.format(statistics.fmean(vals))
            if len(vals) > 1:
                cell += " ± " + fmt.format(statistics.stdev(vals))
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {len(rs)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, nargs="?", default=DEFAULT_PATH)
    parser.add_argument("--models", default=",".join(BASELINES[:2] + tuple(GRU_VARIANTS) + BASELINES[2:]))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--test-days", type=float, default=30.0)
    parser.add_argument("--max-train-minutes", type=float, default=5.0)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--gru-params", default="{}", help="JSON constructor overrides for every GRU variant")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from recommender.ml.registry import available_models

    data, info = load(args.path, args.test_days)
    print(
        f"Online Retail: cutoff {info['cutoff_utc']}, {info['train_customers']:,} customers / "
        f"{info['train_events']:,} purchase lines / {info['train_items']:,} items in calibration; "
        f"{info['test_cases']:,} test purchases of {info['test_customers']:,} customers "
        f"({info['unknown_labels']} labels unknown to calibration)",
        flush=True,
    )
    known = set(available_models())
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    gru_extra = json.loads(args.gru_params)
    runs: dict[str, list[dict[str, Any]]] = {}
    for label in [m.strip() for m in args.models.split(",") if m.strip()]:
        name, extra = GRU_VARIANTS.get(label, (label, {}))
        if name not in known:
            print(f"  {label}: model {name!r} is not registered, skipped", flush=True)
            continue
        if label in GRU_VARIANTS:
            extra = {**gru_extra, **extra}
        model_seeds: list[int | None] = seeds if name in ("gru", "lstm") else [None]
        for seed in model_seeds:
            t0 = time.perf_counter()
            r = _run(label, name, extra, data, seed, args.max_train_minutes * 60, args.validation_fraction)
            m = r["metrics"]
            print(
                f"  {label} seed={seed}: HR@20 {100 * m['hr@20']:.2f} MRR@20 {100 * m['mrr@20']:.2f} "
                f"({time.perf_counter() - t0:.0f}s) chosen {r.get('chosen_params') or r['tuning']['params']}",
                flush=True,
            )
            runs.setdefault(label, []).append(r)
            result = _write(args.json, info, runs)  # after every model, so a long run keeps what it has
    result = _write(args.json, info, runs)
    print()
    print(result["table"])
    return result


def _write(path: Path | None, info: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    result = {
        "dataset": info,
        "runs": runs,
        "table": markdown(runs),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "command": " ".join(sys.argv),
    }
    if path:
        write_json(path, result, default=float)
    return result


if __name__ == "__main__":
    main()
