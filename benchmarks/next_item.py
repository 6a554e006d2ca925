"""Next-item benchmark on a SR-GNN format folder (full ranking, every test prefix).

    python -m benchmarks.next_item ../shared/data/yoochoose1_64 --models pop,sr,vsknn,itemknn

For each model: carve the most recent 10% of the training sessions as validation, pick the
model's hyperparameters from its small grid (:mod:`recommender.ml.tuning`, the same grid
for every data set) on validation HR@20 + MRR@20 within the time budget, refit on the full training
data, evaluate on the test cases. Neural models (``gru``, ``lstm``) tune and stop early on
their own validation split inside ``fit``. Test labels unknown to training stay in the
denominator as misses for every model.

Memory, two ways, both for the final fit: ``alloc MB`` is the tracemalloc peak of a second,
separate fit (Python and NumPy allocations; torch tensors are invisible to it, so it is only
taken for fits under a minute and is blank otherwise); ``RSS Δ MB`` is the peak increase of
the process resident set size during the timed fit (sampled every 5 ms from
/proc/self/statm; it sees torch too, but memory freed earlier and reused is not counted, so
it can read 0). Latency is one ``recommend`` call (one history, top 20)
with BLAS / torch limited to one thread.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import write_json
from recommender.ml.datasets import load_srgnn_folder, validation_split
from recommender.ml.evaluation import evaluate_next_item
from recommender.ml.popularity import item_counts
from recommender.ml.registry import get_model_class
from recommender.ml.tuning import default_grid, grid_search, validation_cases

PUBLISHED_NOTE = (
    "Published (SR-GNN Table 2, yoochoose1_64): POP 6.71/1.65, Item-KNN 51.60/21.81, GRU4Rec 60.64/22.89, "
    "NARM 68.32/28.63, STAMP 68.74/29.67, SR-GNN 70.57/30.94 (P@20/MRR@20)."
)


class PeakRSS:
    """Context manager sampling the process RSS in a thread; ``peak_delta_mb`` after exit."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.peak_delta_mb = float("nan")

    def _rss(self) -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * self.page
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self._start = self._peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss())
        self.peak_delta_mb = (self._peak - self._start) / 2**20


def single_thread_latency(model: Any, prefixes: list[np.ndarray], n: int = 200) -> dict[str, float]:
    """p50 / p95 milliseconds of ``model.recommend(history, k=20)`` with one BLAS/torch thread."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    old_threads = torch.get_num_threads() if torch else None
    picks = [prefixes[i] for i in np.linspace(0, len(prefixes) - 1, min(n, len(prefixes))).astype(int)]
    times = []
    with threadpool_limits(1):
        if torch:
            torch.set_num_threads(1)
        try:
            for h in picks[:5]:
                model.recommend(h, k=20)
            for h in picks:
                t0 = time.perf_counter()
                model.recommend(h, k=20)
                times.append((time.perf_counter() - t0) * 1000)
        finally:
            if torch and old_threads:
                torch.set_num_threads(old_threads)
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))}


def _accepts(cls: type, name: str) -> bool:
    return name in inspect.signature(cls.__init__).parameters


def tune(name: str, data: Any, budget_s: float, validation_fraction: float, base: dict[str, Any]) -> dict[str, Any]:
    """Pick ``name``'s parameters from its grid on the validation split (no-op for a one-entry grid)."""
    grid = default_grid(name)
    if len(grid) <= 1:
        return {"params": {}, "trials": [], "seconds": 0.0}
    tr, va = validation_split(data.train, validation_fraction)
    res = grid_search(
        get_model_class(name),
        grid,
        tr,
        validation_cases(va, max_cases=10000),
        base_params=base,
        time_budget_s=budget_s * 0.6,
    )
    return {"params": res.best_params, "trials": res.trials, "seconds": res.seconds, "complete": res.complete}


def run_model(
    name: str,
    data: Any,
    seed: int | None,
    budget_s: float,
    extra: dict[str, Any],
    validation_fraction: float,
    tuned: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Tune (if the model has a grid), refit on full train, evaluate on test.

    ``tuned``: parameters already chosen on validation for other models in this run; the
    hybrid reuses those of its components (so only its blend weights are tuned here).
    """
    cls = get_model_class(name)
    base: dict[str, Any] = dict(extra)
    if name in ("hybrid", "blend") and "components" not in base:
        # the blends reuse what validation chose for their components (tuning those not yet tuned)
        for c, _ in cls.default_components:
            if tuned is not None and c not in tuned:
                tuned[c] = tune(c, data, budget_s, validation_fraction, {})["params"]
        if name == "hybrid":
            base["components"] = [[c, {**p, **(tuned or {}).get(c, {})}] for c, p in cls.default_components]
        else:
            overrides = base.setdefault("component_params", {})
            for c, _ in cls.default_components:
                overrides[c] = {**(tuned or {}).get(c, {}), **overrides.get(c, {})}
    if seed is not None and _accepts(cls, "seed"):
        base["seed"] = seed
    if _accepts(cls, "time_budget"):
        base.setdefault("time_budget", budget_s)
    tuning = tune(name, data, budget_s, validation_fraction, base)
    params = {**base, **tuning["params"]}
    model = cls(**params)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        model.fit(data.train)
        train_s = time.perf_counter() - t0
    alloc_mb = float("nan")
    if train_s < 60:
        gc.collect()
        tracemalloc.start()
        cls(**params).fit(data.train)
        alloc_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    t0 = time.perf_counter()
    metrics = evaluate_next_item(model, data.test, ks=(10, 20), batch_size=512, item_counts=item_counts(data.train))
    eval_s = time.perf_counter() - t0
    latency = single_thread_latency(model, data.test.prefixes)
    chosen = getattr(model, "chosen_params_", None)
    parts = []
    for component in getattr(model, "models_", []):
        if component.after_validation == "refit":  # the neighbourhood models have rows of their own
            continue
        parts.append(
            {
                "model": f"{name}[{component.name}]",
                "seed": seed,
                "params": component.get_params() if hasattr(component, "get_params") else {},
                "chosen_params": getattr(component, "chosen_params_", None),
                "tuning": {"params": {}, "trials": [], "seconds": 0.0},
                "train_seconds": getattr(component, "train_seconds_", float("nan")),
                "events_per_second": data.train.n_events / getattr(component, "train_seconds_", float("nan")),
                "peak_rss_delta_mb": float("nan"),
                "peak_alloc_mb": float("nan"),
                "latency": single_thread_latency(component, data.test.prefixes),
                "metrics": evaluate_next_item(
                    component, data.test, ks=(10, 20), batch_size=512, item_counts=item_counts(data.train)
                ),
            }
        )
    return {
        "components": parts,
        "model": name,
        "seed": seed,
        "params": params,
        "chosen_params": chosen,
        "tuning": tuning,
        "train_seconds": train_s,
        "events_per_second": data.train.n_events / max(train_s, 1e-9),
        "peak_rss_delta_mb": mem.peak_delta_mb,
        "peak_alloc_mb": alloc_mb,
        "eval_seconds": eval_s,
        "latency": latency,
        "metrics": metrics,
    }


COLUMNS = [
    ("P@20", lambda r: 100 * r["metrics"]["hr@20"], "{:.2f}"),
    ("MRR@20", lambda r: 100 * r["metrics"]["mrr@20"], "{:.2f}"),
    ("P@10", lambda r: 100 * r["metrics"]["hr@10"], "{:.2f}"),
    ("MRR@10", lambda r: 100 * r["metrics"]["mrr@10"], "{:.2f}"),
    ("NDCG@20", lambda r: 100 * r["metrics"]["ndcg@20"], "{:.2f}"),
    ("cov@20", lambda r: 100 * r["metrics"]["coverage@20"], "{:.1f}"),
    ("pop pct@20", lambda r: 100 * r["metrics"].get("pop_percentile@20", float("nan")), "{:.1f}"),
    ("train s", lambda r: r["train_seconds"], "{:.1f}"),
    ("events/s", lambda r: r["events_per_second"], "{:,.0f}"),
    ("alloc MB", lambda r: r["peak_alloc_mb"], "{:.0f}"),
    ("RSS Δ MB", lambda r: r["peak_rss_delta_mb"], "{:.0f}"),
    ("p50 ms", lambda r: r["latency"]["p50_ms"], "{:.2f}"),
]


def markdown_table(runs: dict[str, list[dict[str, Any]]]) -> str:
    """One row per model: mean ± std over seeds (just the value for a single run)."""
    lines = ["| model | " + " | ".join(c[0] for c in COLUMNS) + " | tuned params |"]
    lines.append("|---" * (len(COLUMNS) + 2) + "|")
    for name, rs in runs.items():
        cells = []
        for _, get, fmt in COLUMNS:
            vals = [v for v in (get(r) for r in rs) if v is not None and math.isfinite(v)]
            if not vals:  # e.g. no memory reading on this platform
                cells.append("n/a")
                continue
            cell = fmt.format(statistics.fmean(vals))
            if len(vals) > 1:
                cell += " ± " + fmt.format(statistics.stdev(vals))
            cells.append(cell)
        tuned = rs[0]["tuning"]["params"] or rs[0].get("chosen_params") or {}
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {json.dumps(tuned, sort_keys=True)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="SR-GNN format folder (all_train_seq.txt.gz, test.tsv.gz)")
    parser.add_argument("--models", default="pop,sr,vsknn,itemknn,hybrid", help="comma-separated registry names")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (deterministic models run once)")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--max-train-minutes", type=float, default=10.0, help="tuning + training budget per model")
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument(
        "--model-params", default="{}", help='JSON {"model": {param: value}} passed to the constructors'
    )
    args = parser.parse_args(argv)

    data = load_srgnn_folder(args.data_dir)
    extra_params = json.loads(args.model_params)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    info = {
        "data_dir": str(args.data_dir),
        "train_sessions": len(data.train),
        "train_events": data.train.n_events,
        "train_items": data.train.n_items,
        "test_cases": len(data.test),
        **data.test.meta,
        "stats_json": data.stats,
    }
    print(
        f"{args.data_dir.name}: {info['train_sessions']:,} train sessions, {info['train_events']:,} events, "
        f"{info['train_items']:,} items; {info['test_cases']:,} test cases, {info['unknown_labels']} labels "
        f"unknown to train (misses for every model), {info['dropped_prefix_items']} unknown prefix items dropped",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {}
    tuned: dict[str, dict[str, Any]] = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        cls = get_model_class(name)
        model_seeds: list[int | None] = seeds if _accepts(cls, "seed") else [None]
        for seed in model_seeds:
            r = run_model(
                name,
                data,
                seed,
                args.max_train_minutes * 60,
                extra_params.get(name, {}),
                args.validation_fraction,
                tuned,
            )
            tuned.setdefault(name, r["tuning"]["params"])
            runs.setdefault(name, []).append(r)
            for part in r["components"]:  # e.g. the network inside a blend, scored alone on test
                runs.setdefault(part["model"], []).append(part)
            m = r["metrics"]
            print(
                f"  {name} seed={seed}: P@20 {100 * m['hr@20']:.2f} MRR@20 {100 * m['mrr@20']:.2f} "
                f"(train {r['train_seconds']:.1f}s, tuning {r['tuning']['seconds']:.0f}s, "
                f"eval {r['eval_seconds']:.0f}s)"
                f" params {r['tuning']['params']}",
                flush=True,
            )
    table = markdown_table(runs)
    print()
    print(table)
    print()
    print(PUBLISHED_NOTE)
    result = {
        "dataset": info,
        "runs": runs,
        "table": table,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "command": " ".join(sys.argv),
    }
    if args.json:
        write_json(args.json, result, default=float)
    return result


if __name__ == "__main__":
    main()
