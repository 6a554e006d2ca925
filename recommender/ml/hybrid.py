"""Weighted blends of other recommenders.

``hybrid`` (sequential rules + V-SKNN + item-kNN): each component's scores are divided by
their row maximum (so every component ranges over ``[0, 1]`` for every history) and summed
with ``weights``. SR is precise about the very next item from the last click; V-SKNN uses the
whole session and finds more candidates; item-kNN adds items that co-occur with the history.

``blend`` (recurrent networks + sequential rules + V-SKNN + item-kNN): each component's scores are
made a distribution over the items (clipped at 0, divided by their row sum; the network's
scores already are probabilities) and mixed with weights that ``fit`` chooses on a validation
split carved from the end of the training data. The network and the neighbourhood methods
make different mistakes (the network generalises across sessions, V-SKNN remembers whole
sessions, the rules the exact next click, item-kNN items that co-occur with any item of the
history), so the mixture ranks better than each alone.

A component with weight 0 is skipped when scoring.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np

from recommender.ml.base import ModelFileError, Recommender, register
from recommender.ml.data import SessionData
from recommender.ml.registry import get_model_class

DEFAULT_COMPONENTS: list[list[Any]] = [["sr", {}], ["vsknn", {"item_decay": 2.0}], ["itemknn", {}]]

#: how scores are put on one scale before mixing: by the row maximum or into a distribution
NORMALISATIONS = ("max", "sum")


def normalise_scores(scores: np.ndarray, how: str) -> np.ndarray:
    """Row-normalise ``(B, n_items)`` scores: ``"max"`` divides by the row maximum (if positive),
    ``"sum"`` clips at 0 and divides by the row sum (a row of zeros stays zeros)."""
    if how == "sum":
        s = np.maximum(scores, 0, dtype=np.float32)
        total = s.sum(axis=1, keepdims=True)
    else:
        s = scores.astype(np.float32, copy=True)
        total = s.max(axis=1, keepdims=True) if s.size else np.ones((len(s), 1), dtype=np.float32)
    s /= np.where(total > 0, total, 1).astype(np.float32)
    return s


def weight_grid_for(names: Sequence[str], values: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0)) -> list[list[float]]:
    """Candidate weight vectors for components ``names``: copies of one model (an ensemble of
    networks trained with different seeds) share one weight, the first model's weight is 1 (only
    relative weights matter), every other model's runs over ``values``."""
    groups = list(dict.fromkeys(names))
    grid = []
    for combo in itertools.product(values, repeat=len(groups) - 1):
        weight_of = dict(zip(groups, (1.0, *combo), strict=True))
        grid.append([float(weight_of[n]) for n in names])
    return grid


@register
class HybridRecommender(Recommender):
    """``sum_c weights[c] * normalise(scores_c)`` over the ``components`` ``[[name, params], ...]``.

    normalise: ``"max"`` or ``"sum"`` (see :func:`normalise_scores`).
    weight_grid: candidate weight vectors; when given (and ``validation_fraction`` > 0 or
    ``validation`` is passed), ``fit`` carves the most recent
    ``validation_fraction`` of the sequences as validation (unless ``validation`` is passed),
    fits the components on the rest, keeps the candidate with the best HR@20 + MRR@20 on up to
    ``max_validation_cases`` validation cases (``weights_``; every candidate's score is in
    ``weight_validation_``), then refits on all the data the components that allow it
    (``after_validation``: cheap models refit, networks continue training on the validation split).
    seed: passed on to the components that take one (the ``i``-th copy of a model gets
    ``seed + i``); time_budget: seconds, shared equally by the components that take one.
    None: the components' own defaults.
    """

    name: ClassVar[str] = "hybrid"
    default_components: ClassVar[list[list[Any]]] = DEFAULT_COMPONENTS
    default_weights: ClassVar[list[float]] = [1.0, 0.5, 0.25]

    def __init__(
        self,
        components: list[list[Any]] | None = None,
        weights: list[float] | None = None,
        normalise: str = "max",
        weight_grid: list[list[float]] | None = None,
        validation_fraction: float = 0.1,
        max_validation_cases: int = 10000,
        seed: int | None = None,
        time_budget: float | None = None,
    ) -> None:
        if components is None:
            components = [[name, dict(params)] for name, params in self.default_components]
            weights = weights if weights is not None else list(self.default_weights)
        if normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {NORMALISATIONS}, not {normalise!r}")
        self.components = components
        self.weights = weights if weights is not None else [1.0] * len(components)
        self.normalise = normalise
        self.weight_grid = weight_grid
        self.validation_fraction = validation_fraction
        self.max_validation_cases = max_validation_cases
        self.seed = seed
        self.time_budget = time_budget

    def _build(self) -> list[Recommender]:
        if len(self.weights) != len(self.components):
            raise ValueError("one weight per component")
        if self.weight_grid is not None and any(len(w) != len(self.components) for w in self.weight_grid):
            raise ValueError("every weight_grid entry needs one weight per component")
        classes = [get_model_class(str(name)) for name, _ in self.components]
        accepts = [inspect.signature(cls.__init__).parameters for cls in classes]
        n_budgeted = sum("time_budget" in accepted for accepted in accepts)
        models, copies = [], {}
        for cls, accepted, (name, params) in zip(classes, accepts, self.components, strict=True):
            params = dict(params)
            copy = copies[name] = copies.get(name, -1) + 1
            if self.seed is not None and "seed" in accepted:
                params.setdefault("seed", self.seed + copy)  # copies of one model: different seeds
            if self.time_budget is not None and "time_budget" in accepted:
                params.setdefault("time_budget", self.time_budget / n_budgeted)  # shared equally
            models.append(cls.from_config({"params": params}))  # (which reads older parameter sets too)
        return models

    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        self.n_items_ = data.n_items
        self.weight_validation_: list[dict[str, Any]] = []
        if not self.weight_grid or (validation is None and self.validation_fraction <= 0):
            self.models_ = [m.fit(data, validation) for m in self._build()]
            self.weights_ = [float(w) for w in self.weights]
            return self
        from recommender.ml.datasets import validation_split
        from recommender.ml.tuning import validation_cases

        carved = validation is None
        train, validation = validation_split(data, self.validation_fraction) if carved else (data, validation)
        models = [m.fit(train, validation) for m in self._build()]
        cases = validation_cases(validation, self.max_validation_cases)
        self.weight_validation_ = score_weight_grid(models, self.weight_grid, cases, self.normalise)
        best = max(self.weight_validation_, key=lambda r: r["hr@20"] + r["mrr@20"])
        self.weights_ = [float(w) for w in best["weights"]]
        if carved:  # learn from the validation sessions too: cheap models refit, networks continue
            fresh = self._build()
            for i, m in enumerate(models):
                if not self.weights_[i]:
                    continue
                if m.after_validation == "continue":
                    m.continue_training(validation)
                else:
                    models[i] = fresh[i].fit(data)
        self.models_ = models
        self.chosen_params_ = {"weights": self.weights_} | {
            m.name: m.chosen_params_ for m in models if getattr(m, "chosen_params_", None)
        }
        return self

    def score_batch(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> np.ndarray:
        total = np.zeros((len(histories), self.n_items_), dtype=np.float32)
        for indices, scorer in self._scorers():
            for i, scores in zip(indices, scorer(histories, context), strict=True):
                total += np.float32(self.weights_[i]) * normalise_scores(scores, self.normalise)
        return total

    def _scorers(self) -> list[tuple[list[int], Any]]:
        """The components of non-zero weight, copies of one model grouped (see
        :meth:`~recommender.ml.base.Recommender.stack_key`), each group with its scorer; made on
        first use after ``fit`` or loading."""
        made = getattr(self, "_made_scorers", None)
        if made is None or made[0] is not self.models_ or made[1] != self.weights_:
            groups: dict[Any, list[int]] = {}
            for i, (weight, model) in enumerate(zip(self.weights_, self.models_, strict=True)):
                if weight:
                    key = model.stack_key()
                    groups.setdefault(("alone", i) if key is None else key, []).append(i)
            scorers = [
                (idx, type(self.models_[idx[0]]).stacked_scorer([self.models_[i] for i in idx]))
                for idx in groups.values()
            ]
            made = self._made_scorers = (self.models_, list(self.weights_), scorers)
        return made[2]

    def get_config(self) -> dict[str, Any]:
        return {
            "params": self.get_params(),
            "n_items": self.n_items_,
            "chosen_weights": self.weights_,
            "component_configs": [{"model": m.name, **m.get_config()} for m in self.models_],
        }

    def get_tensors(self) -> dict[str, np.ndarray]:
        return {f"c{i}.{key}": val for i, m in enumerate(self.models_) for key, val in m.get_tensors().items()}

    def set_state(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        sub_configs = config.get("component_configs")
        if not isinstance(sub_configs, list) or len(sub_configs) != len(self.components):
            raise ModelFileError(f"{self.name} config lists a different number of components")
        self.n_items_ = int(config.get("n_items", -1))
        weights = config.get("chosen_weights", self.weights)
        if not isinstance(weights, list) or len(weights) != len(self.components):
            raise ModelFileError(f"{self.name} config has {weights!r} as weights for {len(self.components)} components")
        self.weights_ = [float(w) for w in weights]
        models = []
        for i, (model, sub) in enumerate(zip(self._build(), sub_configs, strict=True)):
            if sub.get("model") != model.name:
                raise ModelFileError(f"component {i} is a {sub.get('model')!r}, expected {model.name!r}")
            prefix = f"c{i}."
            model.set_state(sub, {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
            if model.n_items_ != self.n_items_:
                raise ModelFileError("component item count differs from the blend's")
            models.append(model)
        self.models_ = models


@register
class BlendRecommender(HybridRecommender):
    """``networks`` recurrent networks (``network``: ``"gru"`` or ``"lstm"``, different seeds, one
    shared weight) mixed with the ``default_components`` (sequential rules, V-SKNN, item-kNN); the weights
    are chosen on validation from :func:`weight_grid_for` unless ``weight_grid`` is given.
    ``component_params`` maps a model name to constructor overrides (``{"vsknn": {"k": 200},
    "gru": {"num_threads": 1}}``); ``components``, if given, replaces all of this."""

    name: ClassVar[str] = "blend"
    default_components: ClassVar[list[list[Any]]] = DEFAULT_COMPONENTS

    def __init__(
        self,
        components: list[list[Any]] | None = None,
        weights: list[float] | None = None,
        normalise: str = "sum",
        weight_grid: list[list[float]] | None = None,
        validation_fraction: float = 0.1,
        max_validation_cases: int = 10000,
        seed: int | None = 0,
        time_budget: float | None = None,
        network: str = "gru",
        networks: int = 2,
        component_params: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if components is None:
            if networks < 1:
                raise ValueError("a blend needs at least one network")
            extra = component_params or {}
            nets = [[network, dict(extra.get(network, {}))] for _ in range(networks)]
            others = [[name, {**p, **extra.get(name, {})}] for name, p in self.default_components]
            components = nets + others
            weights = weights if weights is not None else [1.0] * networks + [0.25] * len(others)
        self.network, self.networks, self.component_params = network, networks, component_params
        super().__init__(
            components,
            weights,
            normalise,
            weight_grid_for([str(c[0]) for c in components]) if weight_grid is None else weight_grid,
            validation_fraction,
            max_validation_cases,
            seed,
            time_budget,
        )


def score_weight_grid(
    models: Sequence[Recommender], grid: Sequence[Sequence[float]], cases: Any, normalise: str, chunk: int = 500
) -> list[dict[str, Any]]:
    """HR@20 and MRR@20 (fractions) on ``cases`` of every weight vector in ``grid``; each model
    scores every case once."""
    from recommender.ml.evaluation import MISS_RANK, target_ranks

    grid_arr = np.asarray(grid, dtype=np.float32)
    hits = np.zeros(len(grid_arr))
    rr = np.zeros(len(grid_arr))
    n = len(cases)
    used = np.flatnonzero(grid_arr.any(axis=0))  # components some candidate gives a weight
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        ctx = {key: val[a:b] for key, val in cases.context.items()} or None
        parts = {int(c): normalise_scores(models[c].score_batch(cases.prefixes[a:b], ctx), normalise) for c in used}
        labels = cases.labels[a:b]
        for j, weights in enumerate(grid_arr):
            total = np.zeros_like(parts[int(used[0])])
            for c in used:
                if weights[c]:
                    total += weights[c] * parts[int(c)]
            ranks = target_ranks(total, labels)
            top = (ranks <= 20) & (ranks < MISS_RANK)
            hits[j] += top.sum()
            rr[j] += (1.0 / ranks[top]).sum()
    return [
        {"weights": [float(w) for w in weights], "hr@20": hits[j] / max(n, 1), "mrr@20": rr[j] / max(n, 1)}
        for j, weights in enumerate(grid_arr)
    ]
