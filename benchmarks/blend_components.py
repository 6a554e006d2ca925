"""Which parts should ``blend`` mix? Compared side by side on the validation split (test untouched).

    python -m benchmarks.blend_components DATA_DIR [--seed 0] [--network-minutes 7.5] [--json PATH]

Fits on the training split exactly what ``blend`` fits before it chooses its weights (the most
recent 10 % of the training sessions held out as validation): two GRUs (seeds ``s`` and
``s + 1``), one LSTM (seed ``s``), each with ``--network-minutes`` of training and early
stopping on the validation split, plus sequential rules, V-SKNN and item-kNN with the
parameters their grids choose on the same split. Then, for each set of parts, every weight
vector of :func:`~recommender.ml.hybrid.weight_grid_for` is scored on the validation cases.

The weights are chosen on one half of the cases (alternate cases) and scored on the other, in
both directions, so a set with more weights to choose does not win by fitting noise. HR@20 is
also split into cases whose target is already in the history ("repeat") and the rest ("new").
The row "per history length" chooses weights separately for histories of 1, 2, 3-4, 5-8 and 9+
items.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.next_item import tune
from benchmarks.report import write_json
from recommender.ml.datasets import load_srgnn_folder, validation_split
from recommender.ml.evaluation import MISS_RANK, target_ranks
from recommender.ml.hybrid import normalise_scores, weight_grid_for
from recommender.ml.registry import get_model_class
from recommender.ml.tuning import validation_cases

#: the sets of parts compared (names as in PARTS); networks share one weight
SETS = {
    "networks alone (2 GRU)": ["gru0", "gru1"],
    "2 GRU + sr + vsknn": ["gru0", "gru1", "sr", "vsknn"],
    "2 GRU + sr + vsknn + itemknn (the blend)": ["gru0", "gru1", "sr", "vsknn", "itemknn"],
    "GRU + LSTM + sr + vsknn": ["gru0", "lstm0", "sr", "vsknn"],
    "2 GRU + LSTM + sr + vsknn": ["gru0", "gru1", "lstm0", "sr", "vsknn"],
}
PER_LENGTH_SET = "2 GRU + sr + vsknn"
LENGTH_EDGES = [2, 3, 5, 9]  # buckets 1, 2, 3-4, 5-8, 9+


def fit_parts(data, seed: int, network_minutes: float) -> tuple[dict, object]:
    """The parts fitted on the training split, and the validation split."""
    train, validation = validation_split(data.train, 0.1)
    parts = {}
    for name, cell, s in (("gru0", "gru", seed), ("gru1", "gru", seed + 1), ("lstm0", "lstm", seed)):
        t = time.perf_counter()
        parts[name] = get_model_class(cell)(seed=s, time_budget=60 * network_minutes)
        parts[name].fit(train, validation)
        print(f"{name}: {time.perf_counter() - t:.0f} s, best epoch {parts[name].best_epoch_}", flush=True)
    for name in ("sr", "vsknn", "itemknn"):
        params = {"item_decay": 2.0} if name == "vsknn" else {}
        params |= tune(name, data, 600.0, 0.1, {})["params"]
        parts[name] = get_model_class(name)(**params).fit(train)
        print(f"{name}: {params}", flush=True)
    return parts, validation


def score_sets(parts: dict, cases) -> dict[str, dict]:
    """Per set: the weight grid and, per candidate and case, hit@20 and reciprocal rank."""
    out = {}
    grids = {
        label: np.asarray(weight_grid_for(["network" if n[:-1] in ("gru", "lstm") else n for n in names]), np.float32)
        for label, names in SETS.items()
    }
    for label in SETS:
        out[label] = {"grid": grids[label], "hit": [], "rr": []}
    n = len(cases)
    for a in range(0, n, 500):
        b = min(a + 500, n)
        scores = {name: normalise_scores(m.score_batch(cases.prefixes[a:b]), "sum") for name, m in parts.items()}
        for label, names in SETS.items():
            ranks = np.empty((len(grids[label]), b - a))
            for j, weights in enumerate(grids[label]):
                total = sum(w * scores[name] for w, name in zip(weights, names, strict=True) if w)
                ranks[j] = target_ranks(total, cases.labels[a:b])
            hit = (ranks <= 20) & (ranks < MISS_RANK)
            out[label]["hit"].append(hit)
            out[label]["rr"].append(np.where(hit, 1.0 / ranks, 0.0))
    for res in out.values():
        res["hit"], res["rr"] = np.concatenate(res["hit"], 1), np.concatenate(res["rr"], 1)
    return out


def cross_halves(hit: np.ndarray, rr: np.ndarray, groups: np.ndarray | None = None) -> tuple[float, float, np.ndarray]:
    """Choose weights (per group) on one half of the cases, score them on the other, both ways.
    Returns HR@20, MRR@20 (percent, all cases) and the candidate used for each case."""
    n = hit.shape[1]
    groups = np.zeros(n, dtype=np.int64) if groups is None else groups
    first = np.arange(n) % 2 == 0
    used = np.zeros(n, dtype=np.int64)
    for choose_on in (first, ~first):
        for g in np.unique(groups):
            pick = choose_on & (groups == g)
            best = int((hit[:, pick].sum(1) + rr[:, pick].sum(1)).argmax())
            used[~choose_on & (groups == g)] = best
    cases = np.arange(n)
    return 100 * hit[used, cases].mean(), 100 * rr[used, cases].mean(), used


def _row(label: str, hit: np.ndarray, used: np.ndarray, repeat: np.ndarray, hr: float, mrr: float, weights) -> dict:
    hit_used = hit[used, np.arange(len(used))]
    return {
        "parts": label,
        "hr@20": hr,
        "mrr@20": mrr,
        "hr@20 repeat": 100 * hit_used[repeat].mean(),
        "hr@20 new": 100 * hit_used[~repeat].mean(),
        "weights": weights,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--network-minutes", type=float, default=7.5, help="training budget of each network")
    ap.add_argument("--max-cases", type=int, default=20000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    data = load_srgnn_folder(args.data_dir)
    parts, validation = fit_parts(data, args.seed, args.network_minutes)
    cases = validation_cases(validation, args.max_cases)
    repeat = np.array([label in set(p.tolist()) for p, label in zip(cases.prefixes, cases.labels, strict=True)])
    results = score_sets(parts, cases)
    rows = []
    for label, res in results.items():
        hr, mrr, used = cross_halves(res["hit"], res["rr"])
        chosen = sorted({tuple(res["grid"][j].tolist()) for j in np.unique(used)})
        rows.append(_row(label, res["hit"], used, repeat, hr, mrr, [list(c) for c in chosen]))
        if label == PER_LENGTH_SET:
            lengths = np.digitize([len(p) for p in cases.prefixes], LENGTH_EDGES)
            hr, mrr, used = cross_halves(res["hit"], res["rr"], lengths)
            rows.append(_row(f"{label}, per history length", res["hit"], used, repeat, hr, mrr, []))
    name = Path(args.data_dir).name
    print(f"\n{name}, seed {args.seed}: {len(cases)} validation cases ({100 * repeat.mean():.1f} % repeats)\n")
    print("| parts | HR@20 | MRR@20 | HR@20 repeat | HR@20 new | weights chosen |\n|---|---|---|---|---|---|")
    for r in rows:
        weights = "; ".join(" ".join(f"{w:g}" for w in ws) for ws in r["weights"])
        print(
            f"| {r['parts']} | {r['hr@20']:.2f} | {r['mrr@20']:.2f} | {r['hr@20 repeat']:.2f} | "
            f"{r['hr@20 new']:.2f} | {weights} |"
        )
    if args.json:
        write_json(args.json, {"data": name, "seed": args.seed, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
