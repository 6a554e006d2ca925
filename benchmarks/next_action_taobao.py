"""Next-action prediction (view / basket / purchase) on the Taobao UserBehavior sample.

    PYTHONPATH=$PWD python benchmarks/next_action_taobao.py [PATH]

(``user_id,item_id,category_id,behavior,unix_ts``, no header; default: the sample in
``../shared/data/taobao-sample``). Prints accuracy and macro-F1 of :class:`NextActionModel`
against always predicting the majority class, three seeds, as JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recommender.ml.data import EVENT_BASKET, EVENT_TYPE_NAMES
from recommender.ml.datasets import TAOBAO_BEHAVIOURS
from recommender.ml.nextaction import NextActionModel

#: the behaviours as event types, a favourite counting as a basket addition (as ``load_taobao`` does by default)
TAOBAO_TYPES = {**TAOBAO_BEHAVIOURS, "fav": EVENT_BASKET}


def load_taobao(path: str | Path):
    import pandas as pd

    df = pd.read_csv(path, header=None, names=["user", "item", "cat", "behavior", "ts"])
    df["type"] = df["behavior"].map(TAOBAO_TYPES).astype(np.int64)
    df = df.sort_values(["user", "ts"], kind="stable")
    groups = [g for _, g in df.groupby("user", sort=True)]
    return (
        [g["type"].to_numpy() for g in groups],
        [g["ts"].to_numpy() for g in groups],
        [g["item"].to_numpy() for g in groups],
        [g["cat"].to_numpy() for g in groups],
        df,
    )


def taobao_benchmark(path: str | Path, test_fraction: float = 0.2, seeds: Sequence[int] = (0, 1, 2)) -> dict:
    """Global time split: targets after the ``1 - test_fraction`` time quantile are the test."""
    types, times, items, cats, df = load_taobao(path)
    t_cut = float(np.quantile(df["ts"].to_numpy(), 1 - test_fraction))
    first = [int(np.searchsorted(t, t_cut, side="left")) for t in times]

    def head(a):
        return [np.asarray(s)[:f] for s, f in zip(a, first, strict=True)]

    results = []
    for seed in seeds:
        t0 = time.perf_counter()
        m = NextActionModel(seed=seed).fit(head(types), head(times), head(items), head(cats))
        r = m.evaluate(types, times, items, cats, first_target=first)
        r["seed"], r["fit_seconds"] = seed, time.perf_counter() - t0
        results.append(r)
    return {
        "classes": list(EVENT_TYPE_NAMES),
        "mapping": TAOBAO_TYPES,
        "test_fraction": test_fraction,
        "runs": results,
        "accuracy_mean": float(np.mean([r["accuracy"] for r in results])),
        "macro_f1_mean": float(np.mean([r["macro_f1"] for r in results])),
        "argmax_accuracy_mean": float(np.mean([r["argmax_accuracy"] for r in results])),
        "argmax_macro_f1_mean": float(np.mean([r["argmax_macro_f1"] for r in results])),
        "majority_accuracy": results[0]["majority_accuracy"],
        "majority_macro_f1": results[0]["majority_macro_f1"],
    }


if __name__ == "__main__":  # pragma: no cover
    import sys

    default = Path(__file__).resolve().parents[2] / "shared/data/taobao-sample/UserBehavior_tail10k.csv.gz"
    print(json.dumps(taobao_benchmark(sys.argv[1] if len(sys.argv) > 1 else default), indent=1))
