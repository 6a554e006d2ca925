"""The promotion gate: does a trained candidate replace the live version of its kind?

:class:`PromotionGate` is the policy. A shop that wants another one installs an app labelled
``recommender_training`` whose ``gate.py`` defines its own ``PromotionGate``; training loads the
class with ``recommender.loading.get_class("recommender_training.gate", "PromotionGate")``.

The default policy, on the kind's held-out cases (its most recent days, never trained on):

1. there are at least ``MIN_HOLDOUT_CASES`` of them;
2. the candidate beats popularity on ``GATE_METRIC``;
3. the candidate is not significantly worse than the live version's *configuration* trained on
   exactly the candidate's training data and scored on the same cases: a one-sided paired test
   (exact McNemar for hit rates, Wilcoxon signed-rank for MRR and NDCG) at ``GATE_SIGNIFICANCE``.

Comparing with the configuration rather than the live model's own file keeps the comparison fair:
the live model was refitted on data that lies inside today's held-out days, so it would be judged
on what it learnt, and it never saw the newest days, so it would lose on what it could not know.
When the candidate's configuration is the live one, its refit to this cutoff is the candidate
itself: the newer data wins unless the candidate fails the first two rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender.conf import app_settings
from recommender.ml.evaluation import paired_worse_test, per_case


@dataclass
class Evaluation:
    """What training measured for one candidate: ``metrics`` (stored on the version) and each
    model's conservative rank of every case's target (``"candidate"``, ``"popularity"`` and, when
    there is a live version whose configuration could be trained, ``"live"``)."""

    metrics: dict[str, Any]
    ranks: dict[str, np.ndarray]
    live_version: int | None = None


@dataclass
class Decision:
    promote: bool
    reason: str
    #: the figures the decision rests on, stored on the version (``metrics["gate"]``)
    figures: dict[str, Any] = field(default_factory=dict)


class PromotionGate:
    """The default policy (see the module doc). Settings are read when the gate is made."""

    def __init__(self, metric: str | None = None, alpha: float | None = None, min_cases: int | None = None) -> None:
        self.metric = metric or app_settings.GATE_METRIC
        self.alpha = float(app_settings.GATE_SIGNIFICANCE if alpha is None else alpha)
        self.min_cases = int(app_settings.MIN_HOLDOUT_CASES if min_cases is None else min_cases)

    def decide(self, evaluation: Evaluation) -> Decision:
        metrics, key = evaluation.metrics, self.metric
        n = metrics["n_cases"]
        if n < self.min_cases:
            return Decision(
                False, f"only {n} held-out cases (< MIN_HOLDOUT_CASES = {self.min_cases}): too few to judge"
            )
        cand, pop = metrics["candidate"][key], metrics["popularity"][key]
        if not cand > pop:
            return Decision(False, f"{key} {cand:.4f} does not beat popularity ({pop:.4f})")
        if "live" not in evaluation.ranks:
            return Decision(True, f"{key} {cand:.4f} beats popularity ({pop:.4f})")
        figures = self.compare(evaluation.ranks["candidate"], evaluation.ranks["live"])
        figures["live_version"] = evaluation.live_version
        shown = (
            f"{key} {figures['candidate']:.4f} vs {figures['reference']:.4f}, "
            f"{figures['test']} p = {figures['p_value']:.3g}"
        )
        if figures["p_value"] < self.alpha:
            return Decision(
                False,
                f"significantly worse than the live version {evaluation.live_version}'s configuration trained on "
                f"the same data ({shown} < {self.alpha:g})",
                figures,
            )
        return Decision(
            True,
            f"{key} {cand:.4f} beats popularity ({pop:.4f}) and is not significantly worse than the live "
            f"version {evaluation.live_version}'s configuration trained on the same data ({shown})",
            figures,
        )

    def compare(self, candidate_ranks: np.ndarray, live_ranks: np.ndarray) -> dict[str, Any]:
        """The paired test of the candidate against the live configuration, with ``alpha``."""
        test = paired_worse_test(per_case(candidate_ranks, self.metric), per_case(live_ranks, self.metric), self.metric)
        return test | {"alpha": self.alpha}


class NextActionGate:
    """The purchase-intent model's policy (the ``next_action`` kind), on its held-out days: at least
    ``MIN_HOLDOUT_CASES`` next actions to judge, and a macro-F1 over view, basket, purchase and leave
    above both baselines, always predicting the most frequent action of the training days and
    "the next action repeats the last one". A shop replaces it like :class:`PromotionGate`."""

    baselines = ("majority", "repeat_last")

    def __init__(self, min_cases: int | None = None) -> None:
        self.min_cases = int(app_settings.MIN_HOLDOUT_CASES if min_cases is None else min_cases)

    def decide(self, metrics: dict[str, Any]) -> Decision:
        n = metrics["n_cases"]
        if n < self.min_cases:
            return Decision(
                False, f"only {n} held-out next actions (< MIN_HOLDOUT_CASES = {self.min_cases}): too few to judge"
            )
        cand = metrics["candidate"]["macro_f1"]
        figures = {name: metrics[name]["macro_f1"] for name in self.baselines} | {"candidate": cand}
        shown = ", ".join(f"{name.replace('_', ' ')} {figures[name]:.4f}" for name in self.baselines)
        if not all(cand > figures[name] for name in self.baselines):
            return Decision(False, f"macro-F1 {cand:.4f} does not beat both baselines ({shown})", figures)
        return Decision(True, f"macro-F1 {cand:.4f} beats both baselines ({shown})", figures)
