"""Latency of scoring one history over the whole catalogue: each blend component and the blend.

What the shop's "for you" block pays per request: ``model.recommend(history, k=20, context=...)``
on one thread. The blend (GRU networks with time features, sequential rules, V-SKNN, item-kNN) is
fitted on UCI Online Retail customer purchase sequences (about 3,700 items, like the shop's
catalogue) with a fixed seed and a short time budget, or loaded from ``--model`` (a directory
written by ``--save`` or by the shop). Then 1,000 random histories of 1-50 items with
timestamps are scored one at a time, per component (``score_batch`` of one history) and for the
whole blend (``recommend``); the table gives p50 / p95 in milliseconds.

    PYTHONPATH=$PWD python benchmarks/scoring_latency.py [--save DIR | --model DIR]

The machine may be shared: run it when ``uptime`` shows it quiet, and read small differences
as noise.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared/data/online-retail/online_retail.parquet"


def fit_blend(path: Path, budget: float, seed: int) -> Any:
    """A blend fitted on Online Retail's training months, the networks with time features."""
    from recommender.ml.datasets import load_online_retail
    from recommender.ml.hybrid import BlendRecommender

    split = load_online_retail(path)
    net = {"use_time": True, "num_threads": 1}
    model = BlendRecommender(seed=seed, time_budget=budget, component_params={"gru": net})
    t = time.perf_counter()
    model.fit(split.train)
    print(f"fitted on {split.train.n_events} events, {split.train.n_items} items in {time.perf_counter() - t:.0f} s")
    return model


def histories(n_items: int, n: int, seed: int) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """``n`` random histories of 1-50 items with sorted timestamps (as ``scoring_latency`` in train_in_shop)."""
    rng = np.random.default_rng(seed)
    out = []
    for length in rng.integers(1, 51, n):
        history = rng.integers(0, n_items, length)
        ts = np.sort(rng.uniform(1.29e9, 1.32e9, length))
        out.append((history, {"timestamps": [ts], "event_types": [np.zeros(length, dtype=np.int64)]}))
    return out


def timed(fn: Any, cases: list[tuple[np.ndarray, dict[str, Any]]]) -> tuple[float, float]:
    """p50 and p95 in milliseconds of ``fn(history, context)`` over ``cases``."""
    for history, ctx in cases[:20]:  # warm-up
        fn(history, ctx)
    times = []
    for history, ctx in cases:
        t = time.perf_counter()
        fn(history, ctx)
        times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", type=Path, help="load this saved model instead of fitting one")
    parser.add_argument("--save", type=Path, help="save the fitted model here")
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds (networks)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from recommender.ml.registry import load_model

    if args.model:
        model = load_model(args.model)
    else:
        model = fit_blend(args.data, args.budget, args.seed)
        if args.save:
            model.save(args.save)
    cases = histories(model.n_items_, args.requests, args.seed)
    rows = []
    for i, (weight, component) in enumerate(zip(model.weights_, model.models_, strict=True)):
        p50, p95 = timed(lambda h, c, m=component: m.score_batch([h], c), cases)
        rows.append((f"{i}: {component.name} (weight {weight:g})", p50, p95))
    p50, p95 = timed(lambda h, c: model.recommend(h, k=20, context=c), cases)
    rows.append((f"blend.recommend(k=20), {model.n_items_} items", p50, p95))
    print(f"\n{args.requests} histories of 1-50 items, one thread\n")
    print("| what | p50 ms | p95 ms |\n|---|---:|---:|")
    for name, a, b in rows:
        print(f"| {name} | {a:.2f} | {b:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
