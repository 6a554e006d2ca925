"""Model names -> classes, and :func:`load_model` that opens any saved model directory.

Each model class registers itself where it is defined (:func:`recommender.ml.base.register`);
this module imports the model modules on the first lookup. The neural models live in
:mod:`recommender.ml.sequence` (needs torch), imported only by a lookup that needs it, so the
light models load without torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from recommender.ml.base import MODEL_CLASSES, ModelFileError, Recommender, read_model_files

#: modules whose Recommender classes register themselves on import
MODEL_MODULES = ("recommender.ml.popularity", "recommender.ml.itemknn", "recommender.ml.rules", "recommender.ml.hybrid")
#: the same, for modules that need an optional dependency (skipped when it is not installed)
LAZY_MODULES = ("recommender.ml.sequence",)
#: optional packages a lazy module may need (``pip install 'django-oscar-personalization[torch]'``)
OPTIONAL_DEPENDENCIES = ("torch",)
#: lazy module -> the optional package it lacked, filled by the first lookup that needed it
MISSING_DEPENDENCIES: dict[str, str] = {}

_MODELS = MODEL_CLASSES  # the registry itself (tests add classes to it)
_lazy_loaded = False


def _load(include_lazy: bool = True) -> None:
    """Import the model modules (their classes register themselves), the optional ones once."""
    global _lazy_loaded
    for module_name in MODEL_MODULES:
        importlib.import_module(module_name)
    if not include_lazy or _lazy_loaded:
        return
    _lazy_loaded = True
    for module_name in LAZY_MODULES:
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").partition(".")[0]
            if exc.name != module_name and missing not in OPTIONAL_DEPENDENCIES:
                raise  # the module exists but a required dependency is missing: a broken install
            if exc.name != module_name:
                MISSING_DEPENDENCIES[module_name] = missing


def available_models(include_lazy: bool = True) -> list[str]:
    """Registered model names (with the neural ones when ``include_lazy`` and importable)."""
    _load(include_lazy)
    return sorted(_MODELS)


def get_model_class(name: str) -> type[Recommender]:
    """The class registered as ``name`` (KeyError listing the choices if unknown)."""
    if name not in _MODELS:
        _load()
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
