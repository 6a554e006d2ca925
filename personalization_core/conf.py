"""Namespaced settings dicts merged over documented defaults (``settings.RECOMMENDER`` and friends).

Each app builds one :class:`AppSettings` in its own ``conf`` module, with its defaults::

    app_settings = AppSettings("SEGMENTATION", DEFAULTS)
    app_settings.K_MIN  # settings.SEGMENTATION["K_MIN"] if given, else DEFAULTS["K_MIN"]
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed


class AppSettings:
    """Attribute access to a namespaced settings dict with defaults (DRF style).

    The merged dict is cached and re-read whenever the setting named ``name`` changes (tests
    override it with ``override_settings`` or pytest-django's ``settings`` fixture).
    """

    def __init__(self, name: str, defaults: dict[str, Any]) -> None:
        self._name = name
        self._defaults = defaults
        self._cache: dict[str, Any] | None = None
        # a bound method: the signal holds it weakly, as long as this object lives
        setting_changed.connect(self._setting_changed)

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
