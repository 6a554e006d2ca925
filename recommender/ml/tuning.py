"""Hyperparameter choice on a validation split (never on test).

:func:`default_grid` gives each model a small grid that depends only on the model, never on
the data set's name; :func:`grid_search` fits every setting on the training part, scores it
on validation cases and returns the best, within an optional time budget.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender.ml.base import Recommender
from recommender.ml.data import SessionData
from recommender.ml.datasets import NextItemCases, expand_cases
from recommender.ml.evaluation import evaluate_next_item


def _product(**axes: list[Any]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(axes[k] for k in keys))]


#: small per-model grids; the first entry is the model's default (tried first, so it is
#: always available when the time budget runs out)
DEFAULT_GRIDS: dict[str, list[dict[str, Any]]] = {
    "pop": [{}],
    "trending": [{}],
    "segment_pop": [{"shrinkage": 10.0}, {"shrinkage": 100.0}],
    "sr": [{"window": 10}, {"window": 3}, {"window": 5}, {"window": 20}],
    "itemknn": [
        {"neighbours": 100, "recency_decay": 0.5, "shrink": 0.0},
        *_product(neighbours=[50, 200], recency_decay=[0.0, 0.3, 0.7], shrink=[0.0, 20.0]),
    ],
    "vsknn": [
        {"k": 100, "sample_size": 1000},
        *_product(k=[100], sample_size=[1000], item_decay=[1.0, 2.0, 4.0]),
        {"k": 50, "sample_size": 500, "item_decay": 2.0},
        {"k": 200, "sample_size": 2500, "item_decay": 2.0},
        {"k": 200, "sample_size": 2500, "item_decay": 2.0, "idf": True},
        {"k": 100, "sample_size": 1000, "item_decay": 2.0, "before_weight": 0.5},
        {"k": 100, "sample_size": 1000, "item_decay": 2.0, "idf": True},
    ],
    "hybrid": [{"weights": [1.0, 0.5, 0.25]}]
    + [{"weights": [1.0, v, i]} for v in (0.5, 1.0, 4.0) for i in (0.0, 0.25)],
}


def default_grid(name: str) -> list[dict[str, Any]]:
    """The grid for model ``name`` (``[{}]``, i.e. defaults only, if none is defined)."""
    grid = DEFAULT_GRIDS.get(name, [{}])
    unique: list[dict[str, Any]] = []
    for g in grid:
        if g not in unique:
            unique.append(g)
    return unique


@dataclass
class TuningResult:
    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    complete: bool = True


def validation_cases(valid: SessionData, max_cases: int | None = 20000) -> NextItemCases:
    """All next-item cases of ``valid``, thinned to at most ``max_cases`` evenly spaced ones."""
    cases = expand_cases(valid)
    if max_cases is not None and len(cases) > max_cases:
        cases = cases.subset(np.linspace(0, len(cases) - 1, max_cases).round().astype(np.int64))
    return cases


def grid_search(
    model_class: type[Recommender],
    grid: list[dict[str, Any]],
    train: SessionData,
    cases: NextItemCases,
    metric: str = "hr@20+mrr@20",
    base_params: dict[str, Any] | None = None,
    time_budget_s: float | None = None,
) -> TuningResult:
    """Fit ``model_class(**base_params, **setting)`` on ``train`` for each setting and keep the best
    by ``metric`` on ``cases`` (a metric name or a ``+``-joined sum of them; ties: earlier setting).
    No new setting is started after ``time_budget_s``.
    """
    base_params = base_params or {}
    start = time.perf_counter()
    trials: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any]] | None = None
    complete = True
    for setting in grid:
        if time_budget_s is not None and trials and time.perf_counter() - start > time_budget_s:
            complete = False
            break
        t0 = time.perf_counter()
        model = model_class(**{**base_params, **setting}).fit(train)
        result = evaluate_next_item(model, cases, ks=(20,), batch_size=512)
        score = sum(result[m] for m in metric.split("+"))
        trials.append({"params": setting, "score": score, "seconds": time.perf_counter() - t0})
        if best is None or score > best[0]:
            best = (score, setting)
    assert best is not None
    return TuningResult(best[1], best[0], trials, time.perf_counter() - start, complete)
