"""Weighted blend of other recommenders (default: sequential rules + V-SKNN + item-kNN).

Each component's scores are divided by their row maximum (so every component ranges over
``[0, 1]`` for every history) and summed with ``weights``. SR is precise about the very next
item from the last click; V-SKNN uses the whole session and finds more candidates; item-kNN
adds items that co-occur with the history. A component with weight 0 is skipped when scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from recommender.ml.base import ModelFileError, Recommender
from recommender.ml.data import SessionData

DEFAULT_COMPONENTS: list[list[Any]] = [["sr", {}], ["vsknn", {"item_decay": 2.0}], ["itemknn", {}]]


class HybridRecommender(Recommender):
    """``sum_c weights[c] * scores_c / max(scores_c)`` over the ``components`` ``[[name, params], ...]``."""

    name = "hybrid"

    def __init__(self, components: list[list[Any]] | None = None, weights: list[float] | None = None) -> None:
        if components is None:
            components = [list(c) for c in DEFAULT_COMPONENTS]
            weights = weights if weights is not None else [1.0, 0.5, 0.25]
        self.components = components
        self.weights = weights if weights is not None else [1.0] * len(components)

    def _build(self) -> list[Recommender]:
        from recommender.ml.registry import get_model_class

        if len(self.weights) != len(self.components):
            raise ValueError("one weight per component")
        return [get_model_class(str(name))(**dict(params)) for name, params in self.components]

    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        self.models_ = [m.fit(data, validation) for m in self._build()]
        self.n_items_ = data.n_items
        return self

    def score_batch(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> np.ndarray:
        total = np.zeros((len(histories), self.n_items_), dtype=np.float32)
        for weight, model in zip(self.weights, self.models_, strict=True):
            if weight == 0:
                continue
            s = model.score_batch(histories, context)
            top = s.max(axis=1, keepdims=True) if s.size else np.ones((len(histories), 1), dtype=np.float32)
            total += np.float32(weight) * s / np.where(top > 0, top, 1).astype(np.float32)
        return total

    def get_config(self) -> dict[str, Any]:
        return {
            "params": {"components": self.components, "weights": self.weights},
            "n_items": self.n_items_,
            "component_configs": [{"model": m.name, **m.get_config()} for m in self.models_],
        }

    def get_tensors(self) -> dict[str, np.ndarray]:
        return {f"c{i}.{key}": val for i, m in enumerate(self.models_) for key, val in m.get_tensors().items()}

    def set_state(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        sub_configs = config.get("component_configs")
        if not isinstance(sub_configs, list) or len(sub_configs) != len(self.components):
            raise ModelFileError("hybrid config lists a different number of components")
        self.n_items_ = int(config.get("n_items", -1))
        models = []
        for i, (model, sub) in enumerate(zip(self._build(), sub_configs, strict=True)):
            if sub.get("model") != model.name:
                raise ModelFileError(f"component {i} is a {sub.get('model')!r}, expected {model.name!r}")
            prefix = f"c{i}."
            model.set_state(sub, {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
            if model.n_items_ != self.n_items_:
                raise ModelFileError("component item count differs from the hybrid's")
            models.append(model)
        self.models_ = models
