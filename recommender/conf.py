"""The ``RECOMMENDER`` settings dict, merged over documented defaults.

Read values as attributes of :data:`app_settings` (``app_settings.TRACKING_ENABLED``);
the object re-reads ``settings.RECOMMENDER`` whenever tests override it.
Every key is documented in README.md ("Settings").
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

SETTINGS_NAME = "RECOMMENDER"

DEFAULTS: dict[str, Any] = {
    # Capture
    "TRACKING_ENABLED": True,  # master switch: False records nothing
    "RESPECT_GPC": True,  # a request with "Sec-GPC: 1" is not tracked
    "REQUIRE_CONSENT": False,  # True: track only visitors whose consent cookie says "1"
    "CONSENT_COOKIE": "tracking_consent",
    "VISITOR_COOKIE": "oscar_visitor",  # pseudonymous random id of a browser
    "VISITOR_COOKIE_AGE": 365 * 24 * 3600,
    "VISITOR_COOKIE_SECURE": False,
    "BOT_USER_AGENTS": (
        r"bot\b|bot/|crawl|spider|slurp|facebookexternalhit|bingpreview|headlesschrome|"
        r"python-requests|python-urllib|curl/|wget/|httpclient|go-http-client|scrapy|lighthouse|pingdom"
    ),
    "EVENT_RETENTION_DAYS": 400,  # older events are purged daily; None keeps them forever
    # PostgreSQL: commit event inserts made outside any transaction with synchronous_commit off
    "EVENT_ASYNC_COMMIT": True,
    # Periodic tasks
    "TASK_LOCK_TIMEOUT": 6 * 3600,  # seconds a periodic task may hold its no-overlap lock
}

# Keys whose values must be of this type (checked by recommender.E002)
TYPES: dict[str, type | tuple[type, ...]] = {
    "TRACKING_ENABLED": bool,
    "RESPECT_GPC": bool,
    "REQUIRE_CONSENT": bool,
    "CONSENT_COOKIE": str,
    "VISITOR_COOKIE": str,
    "VISITOR_COOKIE_AGE": int,
    "VISITOR_COOKIE_SECURE": bool,
    "BOT_USER_AGENTS": str,
    "EVENT_RETENTION_DAYS": (int, type(None)),
    "EVENT_ASYNC_COMMIT": bool,
    "TASK_LOCK_TIMEOUT": int,
}


class AppSettings:
    """Attribute access to a namespaced settings dict with defaults (DRF style)."""

    def __init__(self, name: str, defaults: dict[str, Any]) -> None:
        self._name = name
        self._defaults = defaults
        self._cache: dict[str, Any] | None = None

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


app_settings = AppSettings(SETTINGS_NAME, DEFAULTS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        app_settings.reload()


setting_changed.connect(_reload)
