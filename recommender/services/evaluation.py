"""Honest evaluation of one kind's candidate on its held-out cases.

The candidate, popularity (and item-to-item for the next-item model) and the live version's
configuration are ranked on the same held-out cases (at most ``MAX_EVALUATION_CASES`` of them,
spread evenly over time); the :class:`~recommender.services.gate.Evaluation` they give is what
the promotion gate decides on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recommender.abstract_models import ModelKind
from recommender.conf import app_settings
from recommender.ml.base import Recommender
from recommender.ml.datasets import NextItemCases
from recommender.ml.evaluation import rank_cases, summarise_ranks
from recommender.ml.popularity import PopularityRecommender, item_counts
from recommender.ml.registry import get_model_class
from recommender.services.gate import Evaluation
from recommender.services.kind_data import KindData

METRIC_KS = (10, 20)


def _subsample(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` of ``n`` case positions, spread evenly over time (deterministic)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _scored(model: Recommender, cases: NextItemCases) -> tuple[np.ndarray, np.ndarray]:
    return rank_cases(model, cases, top_k=20)


def _summary(scored: tuple[np.ndarray, np.ndarray], cases: NextItemCases, n_items: int, counts: Any = None) -> dict:
    out = summarise_ranks(scored[0], scored[1], cases.labels, n_items, METRIC_KS, counts)
    return {k: float(v) for k, v in out.items()}


def evaluate(kind: str, kind_data: KindData, candidate: Recommender, live: Any = None) -> Evaluation:
    """Candidate, popularity (and item-to-item for the next-item model) on the same held-out cases;
    ``live`` (``(version, fitted model)``: the live version's configuration trained on the same
    data, possibly the candidate itself) on the same cases too."""
    train = kind_data.train
    pick = _subsample(len(kind_data.cases), app_settings.MAX_EVALUATION_CASES)
    cases = kind_data.cases.subset(pick)
    counts = item_counts(train)
    scored = {"candidate": _scored(candidate, cases), "popularity": _scored(PopularityRecommender().fit(train), cases)}
    if kind == ModelKind.NEXT_ITEM:
        scored["item_to_item"] = _scored(get_model_class("itemknn")().fit(train), cases)
    version = None
    if live is not None:
        version, model = live
        scored["live"] = scored["candidate"] if model is candidate else _scored(model, cases)
    metrics: dict[str, Any] = {name: _summary(s, cases, train.n_items, counts) for name, s in scored.items()}
    metrics |= {"n_cases": len(cases), "n_cases_total": len(kind_data.cases)}
    if kind_data.note:
        metrics["holdout_note"] = kind_data.note
    ranks = {name: s[0] for name, s in scored.items() if name != "item_to_item"}
    return Evaluation(metrics, ranks, version.pk if version is not None else None)
