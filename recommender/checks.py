"""System checks: misconfiguration is reported at startup with an id and a hint."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from personalization_core.checks import check_settings_dict
from recommender.conf import app_settings

REQUIRED_OSCAR_APPS = {
    "oscar.apps.catalogue": "product views",
    "oscar.apps.basket": "basket additions",
    "oscar.apps.order": "purchases",
    "oscar.apps.customer": "login merge",
    "oscar.apps.search": "searches",
}


def _app_modules() -> list[str]:
    from django.apps import apps

    return [cfg.name for cfg in apps.get_app_configs()]


def check_oscar_apps(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    modules = _app_modules()
    errors: list[checks.CMessage] = []
    for module, purpose in REQUIRED_OSCAR_APPS.items():
        if not any(m == module or m.endswith("." + module.rsplit(".", 1)[-1]) for m in modules):
            errors.append(
                checks.Error(
                    f"{module} (or a fork of it) is not installed; {purpose} cannot be captured.",
                    hint="Install django-oscar's apps as in its documentation.",
                    id="recommender.E001",
                )
            )
    if "recommender" in modules:
        ours = modules.index("recommender")
        oscar_positions = [i for i, m in enumerate(modules) if m.startswith("oscar.")]
        if oscar_positions and ours < max(oscar_positions):
            errors.append(
                checks.Error(
                    "'recommender' is listed before Oscar's apps in INSTALLED_APPS.",
                    hint="Put 'recommender' and 'segmentation' after all oscar.* apps.",
                    id="recommender.E003",
                )
            )
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if "recommender.middleware.VisitorMiddleware" not in middleware:
        errors.append(
            checks.Warning(
                "recommender.middleware.VisitorMiddleware is not in MIDDLEWARE.",
                hint="Without it anonymous visitors get no visitor id and searches/orders lose their visitor.",
                id="recommender.W001",
            )
        )
    return errors


def check_recommender_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    return check_settings_dict(app_settings, "recommender")


def check_broker(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    """The Celery broker the web process sends tasks to ("Train now") and beat sends the nightly runs to.

    An unknown transport (a typo such as ``reddis://``, or one whose client library is not
    installed) is an error; no broker at all is an error with ``DEBUG`` off (the periodic tasks
    would not run) and a warning with it on (Celery would try its ``amqp://localhost`` default);
    an in-process broker (``memory://``, ``filesystem://``) is fine for a demo only.
    """
    from kombu import Connection
    from kombu.transport import resolve_transport

    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if broker:
        try:
            resolve_transport(Connection(broker).transport_cls)
        except (KeyError, ImportError, ValueError) as exc:
            return [
                checks.Error(
                    f"CELERY_BROKER_URL {broker.split('://')[0]}:// is not a usable Celery transport: {exc}.",
                    hint="Use your Redis, e.g. redis://127.0.0.1:6379/0 (README.md, Installing).",
                    id="recommender.E010",
                )
            ]
    if not broker and settings.DEBUG:
        return [
            checks.Warning(
                "CELERY_BROKER_URL is not set: Celery falls back to amqp://guest@localhost//.",
                hint="Set CELERY_BROKER_URL to your Redis, e.g. redis://127.0.0.1:6379/0 (README.md, Installing).",
                id="recommender.W003",
            )
        ]
    if settings.DEBUG:
        return []
    if not broker or broker.startswith(("memory://", "filesystem://")):
        return [
            checks.Error(
                f"CELERY_BROKER_URL is {broker or 'unset'!r} with DEBUG off: periodic tasks would not run reliably.",
                hint="Set CELERY_BROKER_URL to your Redis, e.g. redis://127.0.0.1:6379/0.",
                id="recommender.E004",
            )
        ]
    return []


def check_task_lock_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    """The periodic tasks' no-overlap lock (``recommender.locks``) lives in the ``default`` cache.

    Django's per-process caches cannot hold it: with ``LocMemCache`` each worker process has its
    own lock, so two workers (or a worker and the "Train now" button's worker) can run the same
    nightly task at once; ``DummyCache`` never holds anything. A warning while ``DEBUG`` is on
    (one process in development is normal, and it is Django's default cache), an error with
    ``DEBUG`` off, where several worker processes are the norm.
    """
    from django.core.cache import caches
    from django.core.cache.backends.dummy import DummyCache
    from django.core.cache.backends.locmem import LocMemCache

    try:
        backend = caches["default"]
    except Exception:  # a broken CACHES setting is reported by Django itself
        return []
    if not isinstance(backend, LocMemCache | DummyCache):
        return []
    level, check_id = (checks.Warning, "recommender.W002") if settings.DEBUG else (checks.Error, "recommender.E011")
    return [
        level(
            f"The default cache is {type(backend).__name__}, a per-process cache: the lock that keeps the "
            "nightly tasks from overlapping does not hold across Celery worker processes.",
            hint="Use a shared cache, e.g. django_redis.cache.RedisCache on your Redis (README.md, Installing).",
            id=check_id,
        )
    ]


def check_training_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    """Values the training run would only reject at night: caught at startup instead."""
    import importlib.util
    import re

    from recommender.ml.registry import available_models

    if check_recommender_settings():
        return []  # unknown keys or wrong types are reported by E002 first
    errors: list[checks.CMessage] = []
    if app_settings.RNN_CELL not in ("gru", "lstm"):
        errors.append(
            checks.Error(
                f"RECOMMENDER['RNN_CELL'] is {app_settings.RNN_CELL!r}.",
                hint='Use "gru" or "lstm".',
                id="recommender.E005",
            )
        )
    if not re.fullmatch(r"(hr|mrr|ndcg)@(10|20)", app_settings.GATE_METRIC):
        hint = "Use hr@K, mrr@K or ndcg@K with K 10 or 20."
        errors.append(
            checks.Error(
                f"RECOMMENDER['GATE_METRIC'] is {app_settings.GATE_METRIC!r}.", hint=hint, id="recommender.E006"
            )
        )
    alias = app_settings.MODEL_STORAGE
    if alias is not None and alias not in getattr(settings, "STORAGES", {}):
        errors.append(
            checks.Error(
                f"RECOMMENDER['MODEL_STORAGE'] names {alias!r}, which is not in STORAGES.",
                hint="Add it to settings.STORAGES or use None for default_storage.",
                id="recommender.E007",
            )
        )
    name = app_settings.NEXT_ITEM_MODEL
    no_torch = name in ("blend", "gru", "lstm") and importlib.util.find_spec("torch") is None
    if name is not None and (no_torch or name not in available_models()):
        hint = (
            "Install torch for the neural models (pip install 'django-oscar-personalization[torch]'), "
            'or use "hybrid".'
            if name in ("blend", "gru", "lstm")
            else ""
        )
        hint = hint or f"Choose from {', '.join(available_models())}."
        errors.append(
            checks.Error(
                f"RECOMMENDER['NEXT_ITEM_MODEL'] {name!r} is not an available model.", hint=hint, id="recommender.E008"
            )
        )
    if app_settings.HOLDOUT_DAYS <= 0 or app_settings.MAX_HISTORY_LENGTH < 2:
        errors.append(
            checks.Error("RECOMMENDER['HOLDOUT_DAYS'] must be > 0 and MAX_HISTORY_LENGTH >= 2.", id="recommender.E009")
        )
    if not 0 < app_settings.GATE_SIGNIFICANCE < 1:
        message = f"RECOMMENDER['GATE_SIGNIFICANCE'] is {app_settings.GATE_SIGNIFICANCE!r}."
        errors.append(checks.Error(message, hint="Use a level between 0 and 1, such as 0.05.", id="recommender.E012"))
    bad = [k for k in ("BLOCK_CACHE_SECONDS", "CARD_CACHE_SECONDS", "MAX_PER_CATEGORY") if getattr(app_settings, k) < 0]
    if bad or not 1 <= app_settings.BLOCK_LIMIT <= 50:
        errors.append(
            checks.Error(
                "RECOMMENDER: BLOCK_LIMIT must be 1-50 and " + ", ".join(bad or ["the others"]) + " must be >= 0.",
                id="recommender.E021",
            )
        )
    return errors + _intent_errors()


def _intent_errors() -> list[checks.CMessage]:
    """The purchase-intent settings (``recommender.E022``)."""
    problems = []
    if app_settings.INTENT_CELL not in ("gru", "lstm"):
        problems.append(f'INTENT_CELL is {app_settings.INTENT_CELL!r}, not "gru" or "lstm"')
    q = list(app_settings.INTENT_BAND_QUANTILES)
    if len(q) != 2 or not all(isinstance(v, int | float) for v in q) or not 0 < q[0] < q[1] < 1:
        problems.append(f"INTENT_BAND_QUANTILES is {q!r}, not two increasing numbers between 0 and 1")
    if app_settings.INTENT_VISIT_GAP_MINUTES <= 0 or app_settings.INTENT_ACTIVE_DAYS <= 0:
        problems.append("INTENT_VISIT_GAP_MINUTES and INTENT_ACTIVE_DAYS must be > 0")
    if app_settings.INTENT_HISTORY_LENGTH < 2:
        problems.append("INTENT_HISTORY_LENGTH must be at least 2")
    return [
        checks.Error(f"RECOMMENDER: {problem}.", hint="See the purchase-intent settings.", id="recommender.E022")
        for problem in problems
    ]


def check_exclusions(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    """The products that are not goods are named by text: a number or an empty name matches none."""
    if check_recommender_settings():
        return []  # unknown keys or wrong types are reported by E002 first
    errors: list[checks.CMessage] = []
    for key in ("EXCLUDED_PRODUCT_CLASSES", "EXCLUDED_UPCS"):
        bad = [v for v in getattr(app_settings, key) if not isinstance(v, str) or not v.strip()]
        if bad:
            errors.append(
                checks.Error(
                    f"RECOMMENDER[{key!r}] holds {', '.join(repr(v) for v in bad)}.",
                    hint="List product class slugs or UPCs as non-empty strings.",
                    id="recommender.E013",
                )
            )
    return errors


def check_caches(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    """A Redis cache that a hung server could make every page wait on (README "Redis outages")."""
    messages: list[checks.CMessage] = []
    for alias, config in getattr(settings, "CACHES", {}).items():
        backend = config.get("BACKEND", "")
        options = config.get("OPTIONS") or {}
        if backend == "recommender.cache.ResilientRedisCache":
            for key in ("CIRCUIT_BREAKER_SECONDS", "SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT"):
                value = options.get(key, 0)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    message = f"CACHES[{alias!r}]['OPTIONS'][{key!r}] is {value!r}."
                    messages.append(checks.Error(message, hint="Use a number of seconds >= 0.", id="recommender.E020"))
        elif backend.startswith("django_redis.") and not (
            options.get("SOCKET_TIMEOUT") and options.get("IGNORE_EXCEPTIONS")
        ):
            messages.append(
                checks.Warning(
                    f"CACHES[{alias!r}] uses django-redis without SOCKET_TIMEOUT and IGNORE_EXCEPTIONS: a hung or dead "
                    "Redis would make pages wait or fail.",
                    hint='Use "BACKEND": "recommender.cache.ResilientRedisCache" (README, "Redis outages").',
                    id="recommender.W020",
                )
            )
    return messages


#: secret keys published with a project or a tutorial: a shop running on one lets anyone sign
#: cookies (sessions, the visitor cookie) and recommendation links
PUBLIC_SECRET_KEYS = ("demo-only-insecure-key-change-me", "readme-project-only-not-a-secret")


def check_production(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    """With ``DEBUG`` off: a public secret key, a visitor cookie sent over plain HTTP, and 500s that
    no log handler would write down."""
    if settings.DEBUG:
        return []
    messages: list[checks.CMessage] = []
    key = str(getattr(settings, "SECRET_KEY", ""))
    if key in PUBLIC_SECRET_KEYS or key.startswith("django-insecure-") or len(set(key)) < 5:
        messages.append(
            checks.Warning(
                "SECRET_KEY is a published or trivial key while DEBUG is off.",
                hint="Anyone can forge sessions, visitor cookies and recommendation links: set a long random "
                "DJANGO_SECRET_KEY (python -c 'import secrets; print(secrets.token_urlsafe(50))').",
                id="recommender.W004",
            )
        )
    if app_settings.VISITOR_COOKIE_SECURE is False or not getattr(settings, "SESSION_COOKIE_SECURE", False):
        messages.append(
            checks.Warning(
                "The session or the visitor cookie may be sent over plain HTTP while DEBUG is off.",
                hint="Serve the shop over HTTPS with SESSION_COOKIE_SECURE = True, and leave "
                "RECOMMENDER['VISITOR_COOKIE_SECURE'] at None (Secure on HTTPS) or True.",
                id="recommender.W005",
            )
        )
    if not _request_errors_are_written():
        messages.append(
            checks.Warning(
                "A server error (500) would leave no trace: no log handler writes django.request errors.",
                hint='Add a root handler to LOGGING, e.g. "root": {"handlers": ["console"], "level": "WARNING"} '
                '(README, "Logging").',
                id="recommender.W006",
            )
        )
    return messages


def _request_errors_are_written() -> bool:
    """Whether an ERROR of ``django.request`` reaches a handler that writes it somewhere with DEBUG off
    (the mail handler counts only with ADMINS; handlers limited to DEBUG do not count)."""
    import logging

    from django.utils.log import AdminEmailHandler, RequireDebugTrue

    logger: logging.Logger | None = logging.getLogger("django.request")
    while logger is not None:
        if (logger.level and logger.level > logging.ERROR) or logger.disabled:
            return False
        for handler in logger.handlers:
            debug_only = any(isinstance(f, RequireDebugTrue) for f in handler.filters)
            mail_to_nobody = isinstance(handler, AdminEmailHandler) and not settings.ADMINS
            if not debug_only and not mail_to_nobody and handler.level <= logging.ERROR:
                return True
        logger = logger.parent if logger.propagate else None  # type: ignore[assignment]
    return False


def register() -> None:
    checks.register(check_oscar_apps, checks.Tags.compatibility)
    checks.register(check_recommender_settings)
    checks.register(check_training_settings)
    checks.register(check_exclusions)
    checks.register(check_broker, checks.Tags.compatibility, deploy=False)
    checks.register(check_task_lock_cache, checks.Tags.caches)
    checks.register(check_caches, checks.Tags.caches)
    checks.register(check_production, checks.Tags.security)
