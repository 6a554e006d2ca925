"""Namespaced settings dicts (``settings.RECOMMENDER`` and friends), each key declared once.

Each app lists its keys as :class:`Setting` declarations in its own ``conf`` module and builds
one :class:`AppSettings` from them::

    SETTINGS = [Setting("K_MIN", int, 2, "KMeans k is chosen by silhouette from K_MIN to K_MAX"), ...]
    app_settings = AppSettings("SEGMENTATION", SETTINGS)
    app_settings.K_MIN  # settings.SEGMENTATION["K_MIN"] if given, else the declared default

The same declarations give the system checks (unknown keys, wrong types:
:func:`personalization_core.checks.check_settings_dict`) and the README's settings tables
(:func:`settings_table`; ``python scripts/settings_table.py --write`` rewrites them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

TypeSpec = type | tuple[type, ...]


@dataclass(frozen=True)
class Setting:
    """One key of a namespaced settings dict."""

    name: str
    #: the value must be an instance of this (a type or a tuple of types, as for ``isinstance``)
    type: TypeSpec
    default: Any
    #: one line for the README's table (Markdown)
    doc: str
    #: how the README shows the default when its value is too long for the table
    shown_default: str | None = None
    #: the value shapes what training learns: each training run records it with its parameters
    training: bool = False

    @property
    def types(self) -> tuple[type, ...]:
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def type_text(self) -> str:
        """``int or None`` for ``(int, type(None))``."""
        return " or ".join("None" if t is type(None) else t.__name__ for t in self.types)

    def default_text(self) -> str:
        """The default as the README shows it: a Python literal with double-quoted strings."""
        return self.shown_default if self.shown_default is not None else f"`{python_literal(self.default)}`"


def python_literal(value: Any) -> str:
    """``["Cancelled"]`` for ``["Cancelled"]``: ``repr`` with double-quoted strings."""
    if isinstance(value, str):
        return repr(value) if '"' in value else f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def settings_table(declared: Iterable[Setting]) -> str:
    """The Markdown table of the declared keys (the README's "Settings" tables)."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for s in declared:
        cells = [f"`{s.name}`", s.type_text(), s.default_text(), s.doc]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


class AppSettings:
    """Attribute access to a namespaced settings dict over its declared defaults (DRF style).

    The merged dict is cached and re-read whenever the setting named ``name`` changes (tests
    override it with ``override_settings`` or pytest-django's ``settings`` fixture).
    """

    def __init__(self, name: str, declared: Sequence[Setting]) -> None:
        self._name = name
        self._declared: dict[str, Setting] = {s.name: s for s in declared}
        if len(self._declared) != len(declared):
            raise ValueError(f"{name}: a key is declared twice")
        self._defaults: dict[str, Any] = {s.name: s.default for s in declared}
        self._cache: dict[str, Any] | None = None
        # a bound method: the signal holds it weakly, as long as this object lives
        setting_changed.connect(self._setting_changed)

    @property
    def name(self) -> str:
        """The name of the settings dict (``"RECOMMENDER"``)."""
        return self._name

    @property
    def declared(self) -> dict[str, Setting]:
        """Every key's :class:`Setting`, in declaration order."""
        return self._declared

    @property
    def defaults(self) -> dict[str, Any]:
        return self._defaults

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, self._name, None) or {}

    def as_dict(self) -> dict[str, Any]:
        if self._cache is None:
            self._cache = {**self._defaults, **self.user_settings}
        return self._cache

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_") or attr not in self._defaults:
            raise AttributeError(f"Invalid {self._name} setting: {attr!r}")
        return self.as_dict()[attr]

    def reload(self) -> None:
        self._cache = None

    def _setting_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting == self._name:
            self.reload()
