"""The contract every recommendation model follows.

Conventions (scikit-learn / implicit style):

* ``__init__`` only stores hyperparameters; ``fit`` returns ``self``; fitted
  attributes end in ``_``.
* Items are integer indices ``0 .. n_items - 1``; mapping to product ids lives
  outside (see :class:`recommender.ml.data.ItemIndex`).
* ``score_batch`` is the one method a model must implement for ranking; it
  returns a dense ``(len(histories), n_items)`` float32 array, higher is better.
  ``recommend`` and the evaluation are built on it.
* ``save`` / ``load`` write safetensors + JSON only, never pickle.
* A model class registers its ``name`` where it is defined, with :func:`register`.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import numpy as np

from recommender.ml.data import SessionData

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
TENSORS_FILE = "model.safetensors"


class ModelFileError(ValueError):
    """A saved model directory is missing, truncated, tampered with or foreign."""


class HasParams:
    """scikit-learn's convention: ``__init__`` stores each argument under its own name, so the
    hyperparameters are read from its signature and listed nowhere else."""

    @classmethod
    def param_names(cls) -> list[str]:
        """The names of the ``__init__`` arguments, in order."""
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.name != "self" and p.kind not in skip]

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters by name, as ``__init__`` stored them (``cls(**get_params())`` is a copy)."""
        return {name: getattr(self, name) for name in self.param_names()}


#: registry name -> model class, filled by :func:`register` as the model modules are imported
MODEL_CLASSES: dict[str, type[Recommender]] = {}

R = TypeVar("R", bound="type[Recommender]")


def register(cls: R) -> R:
    """Class decorator: make ``cls`` loadable under ``cls.name`` (see :mod:`recommender.ml.registry`)."""
    MODEL_CLASSES.setdefault(cls.name, cls)
    return cls


class Recommender(HasParams, ABC):
    """Base class of all next-item / related-item models."""

    #: registry name, written to ``config.json`` so ``load_model`` can find the class
    name: ClassVar[str] = "base"
    #: how a blend that tuned its weights on a validation split lets this model learn from that
    #: split afterwards: ``"refit"`` (a fresh ``fit`` on all the data: cheap models) or
    #: ``"continue"`` (``continue_training(validation)``: models that stopped early on that split,
    #: where a refit would cost the whole training again and leave nothing to stop on)
    after_validation: ClassVar[str] = "refit"

    n_items_: int

    # -- training ----------------------------------------------------------
    @abstractmethod
    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        """Learn from training sequences; ``validation`` may drive early stopping."""

    def continue_training(self, data: SessionData, seed: int | None = None) -> Self:
        """Learn from sessions that arrived after ``fit`` (models with ``after_validation = "continue"``)."""
        raise NotImplementedError(f"{type(self).__name__} refits instead of continuing")

    # -- scoring -----------------------------------------------------------
    @abstractmethod
    def score_batch(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> np.ndarray:
        """Scores of every item for each history: float32 array ``(B, n_items)``.

        ``histories`` are int arrays of item indices, oldest first. ``context``
        carries optional per-history side information (``"event_types"``,
        ``"timestamps"``, ``"segments"``) for models that use it; others ignore it.
        """

    def stack_key(self) -> Hashable | None:
        """Models of one class with the same key (not None) can be scored together by
        :meth:`stacked_scorer`, e.g. copies of one network trained with different seeds."""
        return None

    @classmethod
    def stacked_scorer(
        cls, models: Sequence[Recommender]
    ) -> Callable[[Sequence[np.ndarray], dict[str, Any] | None], list[np.ndarray]]:
        """A function scoring histories with each of ``models`` (``[m.score_batch(...) for m in
        models]``); a class whose copies can share the work overrides it."""

        def score(histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> list[np.ndarray]:
            return [m.score_batch(histories, context) for m in models]

        return score

    def recommend(
        self,
        history: Sequence[int] | np.ndarray,
        k: int = 20,
        exclude: Iterable[int] | None = None,
        context: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` item indices and their scores for one history, best first."""
        scores = self.score_batch([np.asarray(history, dtype=np.int64)], context)[0].astype(np.float32, copy=True)
        if exclude is not None:
            ex = np.fromiter((i for i in exclude if 0 <= i < scores.shape[0]), dtype=np.int64)
            scores[ex] = -np.inf
        return top_k(scores, k)

    def similar_items(self, item: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Items most like ``item``; models without a notion of similarity raise."""
        raise NotImplementedError(f"{type(self).__name__} has no item similarity")

    # -- persistence -------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable hyperparameters and fitted scalars."""
        return {}

    def get_tensors(self) -> dict[str, np.ndarray]:
        """Fitted arrays to store in safetensors."""
        return {}

    def set_state(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        """Restore fitted state from ``get_config()`` and ``get_tensors()`` output."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        params = config.get("params", {})
        return cls(**params)

    def save(self, directory: str | Path) -> Path:
        return write_model_files(directory, self.name, self.get_config(), self.get_tensors())

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        config, tensors = read_model_files(directory, cls.name)
        try:
            model = cls.from_config(config)
            model.set_state(config, tensors)
        except ModelFileError:
            raise
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            # a tampered config (unknown/invalid parameter, inconsistent shapes) is a damaged file
            raise ModelFileError(f"{directory}: config and tensors do not describe a valid model: {exc}") from exc
        return model


def write_model_files(directory: str | Path, name: str, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (with format version and model name)."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(directory / TENSORS_FILE))
    config = {"format_version": FORMAT_VERSION, "model": name, **config}
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
    return directory


def read_model_files(directory: str | Path, model: str | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read ``config.json`` and ``model.safetensors``; any damage is a ModelFileError, and so is a
    config whose model name is not ``model`` (when given)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    directory = Path(directory)
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
    except FileNotFoundError as exc:
        raise ModelFileError(f"{directory}: no {CONFIG_FILE}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{directory}/{CONFIG_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{directory}/{CONFIG_FILE}: unknown format version")
    try:
        tensors = load_file(str(directory / TENSORS_FILE))
    except FileNotFoundError as exc:
        raise ModelFileError(f"{directory}: no {TENSORS_FILE}") from exc
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{directory}/{TENSORS_FILE} is damaged: {exc}") from exc
    if model is not None and config.get("model") != model:
        raise ModelFileError(f"{directory} holds a {config.get('model')!r} model, not {model!r}")
    return config, tensors


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest finite scores, best first (ties: lower index first)."""
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    part = np.argpartition(-scores, k - 1)[:k]
    order = np.lexsort((part, -scores[part]))
    idx = part[order]
    return idx.astype(np.int64), scores[idx].astype(np.float32)
