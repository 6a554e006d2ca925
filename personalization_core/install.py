"""The plugin's settings for a django-oscar project, in one call at the end of its ``settings.py``::

    from personalization_core.install import personalize

    personalize(globals())

:func:`personalize` adds what the apps need and keeps everything the project has set: it appends
the missing apps, middleware and context processor, adds dictionary keys the project has not
given (``REST_FRAMEWORK``, ``CELERY_BEAT_SCHEDULE``...), and sets a setting only when the
project has not set it. To use other values, set them before the call (``CACHES``,
``CELERY_BROKER_URL``, a beat entry of the same name) or pass the keyword arguments; to drop a
part, pass False for it.

What it gives, by setting (the README's "Installing into an existing Oscar shop" explains each):

* ``INSTALLED_APPS``: Django REST framework, drf-spectacular and the four apps, after Oscar's;
* ``MIDDLEWARE``: ``recommender.middleware.VisitorMiddleware``, last;
* ``TEMPLATES``: the ``request`` context processor (Oscar needs it too);
* ``OSCAR_DASHBOARD_NAVIGATION``: "Customer segments", "Recommendation models" and "Recommendation report";
* ``REST_FRAMEWORK``: the OpenAPI schema class and the recommendations API's throttle rates;
* ``SESSION_COOKIE_SECURE`` and ``CSRF_COOKIE_SECURE``: ``not DEBUG``;
* ``LOGGING``: every 500 once to stderr with its traceback and the request's id;
* ``CACHES`` (and sorl-thumbnail's ``THUMBNAIL_CACHE``): one Redis shared by every process,
  behind a circuit breaker, and a per-process cache for thumbnails;
* ``CELERY_*``: that Redis as broker and result store, JSON, the shop's time zone, and the
  nightly schedule (segmentation, training, event purge).
"""

from __future__ import annotations

import copy
import os
from collections.abc import MutableMapping
from typing import Any

__all__ = ["APPS", "BEAT_SCHEDULE", "DEFAULT_REDIS_URL", "personalize"]

#: the Redis when neither ``redis_url`` nor the ``REDIS_URL`` environment variable names one
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

#: appended to ``INSTALLED_APPS``, after every Oscar app
APPS = (
    "rest_framework",
    "drf_spectacular",  # the OpenAPI schema at /api/schema/
    "recommender.apps.RecommenderConfig",
    "segmentation.apps.SegmentationConfig",
    "segmentation.dashboard.apps.SegmentationDashboardConfig",
    "recommender.dashboard.apps.RecommenderDashboardConfig",
)
MIDDLEWARE = "recommender.middleware.VisitorMiddleware"  # last, after Oscar's BasketMiddleware
CONTEXT_PROCESSOR = "django.template.context_processors.request"
DASHBOARD_NAVIGATION = (
    {"label": "Customer segments", "icon": "fas fa-users", "url_name": "segmentation_dashboard:segmentation-overview"},
    {"label": "Recommendation models", "icon": "fas fa-magic", "url_name": "recommender_dashboard:recommender-models"},
    {
        "label": "Recommendation report",
        "icon": "fas fa-chart-line",
        "url_name": "recommender_dashboard:recommender-report",
    },
)
#: the recommendations API: per visitor (user, else visitor cookie, else address) and per address
THROTTLE_RATES = {"recommendations": "120/min", "recommendations_address": "600/min"}

#: (task, hour, minute, options) of each nightly task, in the shop's time zone
BEAT_SCHEDULE: dict[str, tuple[str, int, int, dict[str, Any]]] = {
    "segmentation-nightly": ("segmentation.tasks.segment_customers", 2, 30, {}),
    "recommender-purge-events": ("recommender.tasks.purge_old_events", 3, 10, {}),
    # after segmentation (trending per segment reads the current run), on the training queue
    "recommender-train": ("recommender.tasks.train_recommenders", 3, 30, {"queue": "training"}),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "recommender.logs.RequestIdFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {"recommender": {"level": "INFO"}, "segmentation": {"level": "INFO"}},
}


def personalize(
    settings: MutableMapping[str, Any],
    *,
    redis_url: str | None = None,
    cache: bool = True,
    celery: bool = True,
    beat_schedule: bool = True,
    dashboard_navigation: bool = True,
    logging: bool = True,
    throttle_rates: dict[str, str] | None = None,
    num_proxies: int | None = None,
) -> list[str]:
    """Add the plugin's settings to ``settings`` (the settings module's ``globals()``); return the names changed.

    ``redis_url``: the Redis of the cache and the broker (default: the ``REDIS_URL``
    environment variable, else ``redis://127.0.0.1:6379/0``). ``cache``, ``celery``,
    ``beat_schedule``, ``dashboard_navigation``, ``logging``: False leaves that part to the
    project. ``throttle_rates``: rates of the recommendations API over the defaults (120 a
    minute per visitor, 600 per address). ``num_proxies``: how many reverse proxies set
    ``X-Forwarded-For`` in front of the shop (DRF's ``NUM_PROXIES``; without it the throttle
    counts the address Django sees, never a header a client can write).
    """
    out = _Changes(settings)
    _add_apps(out, dashboard_navigation)
    _add_rest_framework(out, throttle_rates, num_proxies)
    secure = not settings.get("DEBUG", False)  # served over HTTPS in production (recommender.W005)
    out.setdefault("SESSION_COOKIE_SECURE", secure)
    out.setdefault("CSRF_COOKIE_SECURE", secure)
    if logging:
        out.setdefault("LOGGING", copy.deepcopy(LOGGING))  # every 500 written down (recommender.W006)
    redis_url = redis_url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if cache and "CACHES" not in settings:
        _add_cache(out, redis_url)
    if celery:
        out.setdefault("CELERY_BROKER_URL", redis_url)
        out.setdefault("CELERY_RESULT_BACKEND", redis_url)
        out.setdefault("CELERY_TASK_SERIALIZER", "json")
        out.setdefault("CELERY_RESULT_SERIALIZER", "json")
        out.setdefault("CELERY_ACCEPT_CONTENT", ["json"])
        out.setdefault("CELERY_TIMEZONE", settings.get("TIME_ZONE") or "UTC")
    if beat_schedule:
        _add_beat_schedule(out)
    return out.changed


class _Changes:
    """The settings being extended, and the names of those changed so far (in order)."""

    def __init__(self, settings: MutableMapping[str, Any]) -> None:
        self.settings = settings
        self.changed: list[str] = []

    def setdefault(self, name: str, value: Any) -> None:
        """Set ``name`` only when the project has not set it."""
        if name not in self.settings:
            self.settings[name] = value
            self.changed.append(name)

    def replace(self, name: str, value: Any) -> None:
        """Set ``name`` to ``value`` (the project's value extended), when it differs."""
        if self.settings.get(name) != value:
            self.settings[name] = value
            self.changed.append(name)


def _add_apps(out: _Changes, dashboard_navigation: bool) -> None:
    """The apps, the middleware, the ``request`` context processor and the dashboard's menu entries."""
    settings = out.settings
    out.replace("INSTALLED_APPS", _with_apps(list(settings.get("INSTALLED_APPS", []))))
    middleware = list(settings.get("MIDDLEWARE", []))
    out.replace("MIDDLEWARE", middleware if MIDDLEWARE in middleware else [*middleware, MIDDLEWARE])
    if "TEMPLATES" in settings:
        out.replace("TEMPLATES", _with_request_processor(settings["TEMPLATES"]))
    if dashboard_navigation:
        from oscar.defaults import OSCAR_DASHBOARD_NAVIGATION

        out.replace(
            "OSCAR_DASHBOARD_NAVIGATION",
            _with_navigation(settings.get("OSCAR_DASHBOARD_NAVIGATION", OSCAR_DASHBOARD_NAVIGATION)),
        )


def _add_rest_framework(out: _Changes, throttle_rates: dict[str, str] | None, num_proxies: int | None) -> None:
    """``REST_FRAMEWORK``: the OpenAPI schema class and the throttle rates (a rate the project has
    set wins over ``throttle_rates``, which win over the defaults)."""
    rest = dict(out.settings.get("REST_FRAMEWORK", {}))
    rest.setdefault("DEFAULT_SCHEMA_CLASS", "drf_spectacular.openapi.AutoSchema")
    rest["DEFAULT_THROTTLE_RATES"] = {
        **THROTTLE_RATES,
        **(throttle_rates or {}),
        **rest.get("DEFAULT_THROTTLE_RATES", {}),
    }
    if num_proxies is not None:
        rest.setdefault("NUM_PROXIES", num_proxies)
    out.replace("REST_FRAMEWORK", rest)


def _add_cache(out: _Changes, redis_url: str) -> None:
    """The shared Redis cache and a per-process one for sorl-thumbnail."""
    # shared by every process: the nightly tasks' lock lives there (recommender.W002/E011);
    # a Redis down or hung costs a page nothing (README, "Redis outages")
    out.setdefault(
        "CACHES",
        {
            "default": {
                "BACKEND": "recommender.cache.ResilientRedisCache",
                "LOCATION": redis_url,
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25, "CIRCUIT_BREAKER_SECONDS": 30},
            },
            "thumbnails": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        },
    )
    out.setdefault("THUMBNAIL_CACHE", "thumbnails")  # sorl-thumbnail (Oscar's thumbnails) off Redis
    out.setdefault("THUMBNAIL_CACHE_TIMEOUT", 300)


def _add_beat_schedule(out: _Changes) -> None:
    """The nightly tasks of :data:`BEAT_SCHEDULE` the project's ``CELERY_BEAT_SCHEDULE`` lacks."""
    from celery.schedules import crontab

    schedule = dict(out.settings.get("CELERY_BEAT_SCHEDULE", {}))
    for name, (task, hour, minute, options) in BEAT_SCHEDULE.items():
        entry = {"task": task, "schedule": crontab(hour=hour, minute=minute)}
        schedule.setdefault(name, {**entry, "options": dict(options)} if options else entry)
    out.replace("CELERY_BEAT_SCHEDULE", schedule)


def _with_apps(installed: list[str]) -> list[str]:
    """``installed`` and the apps it lacks (an app counts as installed by its package or its AppConfig)."""
    missing = []
    for app in APPS:
        package = app.partition(".apps.")[0]
        if not any(entry in (app, package) or entry.startswith(package + ".apps.") for entry in installed):
            missing.append(app)
    return [*installed, *missing]


def _with_request_processor(templates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``TEMPLATES`` with the ``request`` context processor in each Django template engine."""
    out = []
    for engine in templates:
        if engine.get("BACKEND") == "django.template.backends.django.DjangoTemplates":
            processors = list(engine.get("OPTIONS", {}).get("context_processors", []))
            if CONTEXT_PROCESSOR not in processors:
                options = {**engine.get("OPTIONS", {}), "context_processors": [CONTEXT_PROCESSOR, *processors]}
                engine = {**engine, "OPTIONS": options}
        out.append(engine)
    return out


def _with_navigation(navigation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Oscar's dashboard menu with our pages, unless an entry (or a child of one) already links to each."""

    def url_names(entries: list[dict[str, Any]]) -> set[str]:
        return {e.get("url_name", "") for e in entries} | {n for e in entries for n in url_names(e.get("children", []))}

    present = url_names(navigation)
    return [*navigation, *(dict(e) for e in DASHBOARD_NAVIGATION if e["url_name"] not in present)]
