"""A model version's files in Django storage: write, verify, load. Never pickle.

A version's folder ``<MODEL_STORAGE_PREFIX>/<kind>/v<pk>-<token>/`` holds what the model's
``save`` writes (``config.json`` + ``model.safetensors``) and ``items.json``, the product id of
each item index. The sha256 of every file is kept on the version row; loading checks them, so
a truncated, swapped or edited file is a :class:`ArtifactError`, never a model that serves.
``MODEL_STORAGE`` names a ``STORAGES`` alias (e.g. S3 through django-storages); by default
``default_storage``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage, storages

from recommender.conf import app_settings
from recommender.ml import intent
from recommender.ml.base import ModelFileError, Recommender, read_model_files
from recommender.ml.registry import load_model

ITEMS_FILE = "items.json"


class ArtifactError(ValueError):
    """A version's files are missing, damaged, or do not describe a usable model."""


@dataclass
class LoadedModel:
    """A verified model with the product id of each of its item indices."""

    model: Any  # a Recommender, or the purchase-intent IntentScorer
    product_ids: list[int]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index_of = {pid: i for i, pid in enumerate(self.product_ids)}

    def indices(self, product_ids: Sequence[int]) -> np.ndarray:
        """Item indices of the products the model knows (others are skipped, never an error)."""
        return np.fromiter(
            (i for i in (self.index_of.get(int(p)) for p in product_ids) if i is not None), dtype=np.int64
        )

    def products(self, indices: Sequence[int]) -> list[int]:
        return [self.product_ids[int(i)] for i in indices]


def storage() -> Storage:
    alias = app_settings.MODEL_STORAGE
    return storages[alias] if alias else default_storage


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(
    model: Recommender, product_ids: Sequence[int], kind: str, version_id: int, meta: dict[str, Any] | None = None
) -> tuple[str, dict[str, str]]:
    """Save ``model``, its product ids and ``meta`` (JSON) to storage; returns (folder, {file name: sha256})."""
    if len(product_ids) != getattr(model, "n_items_", 0):
        raise ArtifactError(f"{len(product_ids)} product ids for a model of {getattr(model, 'n_items_', 0)} items")
    folder = f"{app_settings.MODEL_STORAGE_PREFIX.rstrip('/')}/{kind}/v{version_id}-{secrets.token_hex(4)}"
    files: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="recommender-save-") as tmp:
        model.save(tmp)
        Path(tmp, ITEMS_FILE).write_text(json.dumps({"product_ids": [int(p) for p in product_ids], "meta": meta or {}}))
        for path in sorted(Path(tmp).iterdir()):
            data = path.read_bytes()
            name = storage().save(f"{folder}/{path.name}", ContentFile(data))
            if name != f"{folder}/{path.name}":  # storage renamed it: the folder was not fresh
                raise ArtifactError(f"storage wrote {name!r} instead of {folder}/{path.name}")
            files[path.name] = _sha256(data)
    return folder, files


def load(folder: str, files: dict[str, str]) -> LoadedModel:
    """Read, check and load a version's files (ArtifactError on any damage)."""
    if not folder or not files:
        raise ArtifactError("this version has no files")
    with tempfile.TemporaryDirectory(prefix="recommender-load-") as tmp:
        for name, digest in files.items():
            try:
                with storage().open(f"{folder}/{name}", "rb") as fh:
                    data = fh.read()
            except (FileNotFoundError, OSError) as exc:
                raise ArtifactError(f"{folder}/{name} cannot be read: {exc}") from exc
            if _sha256(data) != digest:
                raise ArtifactError(f"{folder}/{name} does not match its checksum (damaged or replaced)")
            Path(tmp, name).write_bytes(data)
        try:
            model = _load_model(tmp)
            items = json.loads(Path(tmp, ITEMS_FILE).read_text())
            product_ids, meta = items["product_ids"], dict(items.get("meta") or {})
        except ModelFileError as exc:
            raise ArtifactError(f"{folder}: {exc}") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"{folder}/{ITEMS_FILE} is not a list of product ids: {exc}") from exc
    if not isinstance(product_ids, list) or len(product_ids) != model.n_items_:
        raise ArtifactError(f"{folder}: {ITEMS_FILE} does not name the model's {model.n_items_} items")
    loaded = LoadedModel(model, [int(p) for p in product_ids], meta)
    if isinstance(model, Recommender):
        check_scores(loaded)
    return loaded


def _load_model(directory: str) -> Any:
    """A registered recommendation model, or the purchase-intent network's NumPy scorer (which
    checks its own probabilities as it loads)."""
    config, _ = read_model_files(directory)
    if config.get("model") == intent.MODEL_NAME:
        return intent.IntentScorer.load(directory)
    return load_model(directory)


def check_scores(loaded: LoadedModel) -> None:
    """A model whose scores are NaN (e.g. NaN weights) or never finite recommends nothing: damaged."""
    model = loaded.model
    probe = [np.zeros(1, dtype=np.int64), np.arange(min(3, model.n_items_), dtype=np.int64)]
    try:
        scores = model.score_batch(probe)
    except Exception as exc:  # a model that cannot score is as damaged as a truncated file
        raise ArtifactError(f"the model cannot score a history: {type(exc).__name__}: {exc}") from exc
    if np.isnan(scores).any() or not np.isfinite(scores).any(axis=1).all():
        raise ArtifactError("the model's scores are NaN or never finite (damaged weights)")


def delete(folder: str, files: dict[str, Any]) -> None:
    """Remove a version's files (missing files are fine)."""
    for name in files:
        try:
            storage().delete(f"{folder}/{name}")
        except (FileNotFoundError, OSError):
            continue
