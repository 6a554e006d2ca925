"""Latency of scoring one history over the whole catalogue: each blend component and the blend.

What the shop's "for you" block pays per request: ``model.recommend(history, k=20, context=...)``
on one thread. The blend (GRU networks with time features, sequential rules, V-SKNN, item-kNN) is
fitted on UCI Online Retail customer purchase sequences (about 3,700 items, like the shop's
catalogue) with a fixed seed and a short time budget, or loaded from ``--model`` (a directory
written by ``--save`` or by the shop). Then 1,000 random histories of 1-50 items with
timestamps are scored one at a time, per component (``score_batch`` of one history) and for the
whole blend (``recommend``); the table gives p50 / p95 in milliseconds, of the wall clock and
of the thread's CPU time (the second is what to compare on a machine that others load).

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


def fit_blend(path: Path, budget: float, seed: int, networks: int) -> Any:
    """A blend (the shop's default: one network) fitted on Online Retail's training months, the
    networks with time features, the weights chosen on 2,000 validation cases."""
    from recommender.ml.datasets import load_online_retail
    from recommender.ml.hybrid import BlendRecommender

    split = load_online_retail(path)
    net = {"use_time": True, "num_threads": 1}
    model = BlendRecommender(
        seed=seed, time_budget=budget, networks=networks, max_validation_cases=2000, component_params={"gru": net}
    )
    t = time.perf_counter()
    model.fit(split.train)
    seconds = time.perf_counter() - t
    print(f"fitted on {split.train.n_events} events, {split.train.n_items} items in {seconds:.0f} s")
    print(f"weights {model.weights_}")
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


def timed(fn: Any, cases: list[tuple[np.ndarray, dict[str, Any]]]) -> list[float]:
    """p50 and p95 in milliseconds of ``fn(history, context)`` over ``cases``: wall clock, then the
    CPU time of the calling thread (which other processes on a busy machine do not inflate)."""
    for history, ctx in cases[:20]:  # warm-up
        fn(history, ctx)
    wall, cpu = [], []
    for history, ctx in cases:
        t, c = time.perf_counter(), time.thread_time()
        fn(history, ctx)
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - t)
    return [float(np.percentile(np.asarray(x) * 1000, q)) for x in (wall, cpu) for q in (50, 95)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", type=Path, help="load this saved model instead of fitting one")
    parser.add_argument("--save", type=Path, help="save the fitted model here")
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds (networks)")
    parser.add_argument("--networks", type=int, default=1, help="networks in the blend (the shop's setting: 1)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from recommender.ml.registry import load_model

    if args.model:
        model = load_model(args.model)
    else:
        model = fit_blend(args.data, args.budget, args.seed, args.networks)
        if args.save:
            model.save(args.save)
    cases = histories(model.n_items_, args.requests, args.seed)
    rows = []
    for i, (weight, component) in enumerate(zip(model.weights_, model.models_, strict=True)):
        rows.append(
            (
                f"{i}: {component.name} (weight {weight:g})",
                timed(lambda h, c, m=component: m.score_batch([h], c), cases),
            )
        )
    rows.append(
        (
            f"blend.recommend(k=20), {model.n_items_} items",
            timed(lambda h, c: model.recommend(h, k=20, context=c), cases),
        )
    )
    print(f"\n{args.requests} histories of 1-50 items, one thread\n")
    print("| what | p50 ms | p95 ms | p50 CPU ms | p95 CPU ms |\n|---|---:|---:|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | " + " | ".join(f"{x:.2f}" for x in ms) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
