"""Overridable classes, in the idiom of Oscar's ``get_class``.

``get_class("recommender_serving.rungs", "Rungs")`` returns the class from the shop's fork when
an app is installed under the label (``recommender_serving``) and its module (``rungs``) defines
the class; otherwise ours (``recommender.serving.rungs.Rungs``). Unlike a fork of an Oscar app, a
fork here holds only the modules it changes, and the label need not be installed at all.

Labels: ``recommender_serving`` (the blocks: ``placements``, ``rungs``, ``rules``, ``cache``,
``tokens``, ``service``) and ``recommender_training`` (``gate``: the promotion gates; ``intent``:
the purchase-intent kind).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from django.apps import apps

#: each label's own package: where a class comes from when the shop has not forked it
PACKAGES = {"recommender_serving": "recommender.serving", "recommender_training": "recommender.services"}


def get_class(module_label: str, classname: str) -> Any:
    """The class ``classname`` of ``module_label`` (``"<label>.<module>"``), the fork's where it has one."""
    label, _, module = module_label.partition(".")
    ours = f"{PACKAGES[label]}.{module}"
    try:
        forked = f"{apps.get_app_config(label).name}.{module}"
    except LookupError:  # not installed: ours
        forked = ours
    if forked != ours and _exists(forked):
        klass = getattr(importlib.import_module(forked), classname, None)
        if klass is not None:
            return klass
    return getattr(importlib.import_module(ours), classname)


def _exists(name: str) -> bool:
    """Whether the module ``name`` exists (an error raised inside an existing module propagates)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError as error:  # a parent package is missing
        if error.name and name.startswith(f"{error.name}."):
            return False
        raise
