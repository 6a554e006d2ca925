"""Model names -> classes, and :func:`load_model` that opens any saved model directory.

The neural models live in :mod:`recommender.ml.sequence` (needs torch); it is imported
only when one of its names is asked for, so the light models load without torch.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from recommender.ml.base import ModelFileError, Recommender, read_model_files
from recommender.ml.hybrid import BlendRecommender, HybridRecommender
from recommender.ml.itemknn import ItemKNNRecommender
from recommender.ml.popularity import PopularityRecommender, SegmentPopularityRecommender, TrendingRecommender
from recommender.ml.rules import SequentialRulesRecommender, VSKNNRecommender

#: modules whose Recommender subclasses register themselves under their ``name`` on first use
LAZY_MODULES = ("recommender.ml.sequence",)
#: optional packages a lazy module may need (``pip install 'django-oscar-personalization[torch]'``)
OPTIONAL_DEPENDENCIES = ("torch",)
#: lazy module -> the optional package it lacked, filled by the first lookup that needed it
MISSING_DEPENDENCIES: dict[str, str] = {}

_MODELS: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        PopularityRecommender,
        TrendingRecommender,
        SegmentPopularityRecommender,
        ItemKNNRecommender,
        SequentialRulesRecommender,
        VSKNNRecommender,
        HybridRecommender,
        BlendRecommender,
    )
}
_lazy_loaded = False


def _load_lazy() -> None:
    global _lazy_loaded
    if _lazy_loaded:
        return
    _lazy_loaded = True
    for module_name in LAZY_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").partition(".")[0]
            if exc.name != module_name and missing not in OPTIONAL_DEPENDENCIES:
                raise  # the module exists but a required dependency is missing: a broken install
            if exc.name != module_name:
                MISSING_DEPENDENCIES[module_name] = missing
            continue
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Recommender)
                and not inspect.isabstract(obj)
                and obj.__module__ == module.__name__
                and obj.name not in ("base", "sequence")
            ):
                _MODELS.setdefault(obj.name, obj)


def available_models(include_lazy: bool = True) -> list[str]:
    """Registered model names (with the neural ones when ``include_lazy`` and importable)."""
    if include_lazy:
        _load_lazy()
    return sorted(_MODELS)


def get_model_class(name: str) -> type[Recommender]:
    """The class registered as ``name`` (KeyError listing the choices if unknown)."""
    if name not in _MODELS:
        _load_lazy()
    try:
        return _MODELS[name]
    except KeyError:
        missing = "".join(
            f"; {module} is unavailable because {package} is not installed"
            f" (pip install 'django-oscar-personalization[{package}]')"
            for module, package in MISSING_DEPENDENCIES.items()
        )
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(sorted(_MODELS))}{missing}") from None


def load_model(directory: str | Path) -> Recommender:
    """Load a saved model of any registered kind from ``directory`` (ModelFileError if damaged)."""
    config, _ = read_model_files(directory)
    name = config.get("model")
    try:
        cls = get_model_class(str(name))
    except KeyError as exc:
        raise ModelFileError(f"{directory}: unknown model type {name!r}") from exc
    return cls.load(directory)
