"""System checks report misconfiguration with ids and hints."""

from __future__ import annotations

import logging

from django.core.management import call_command

from recommender import checks


def ids(messages):
    return sorted({m.id for m in messages})


def test_demo_settings_pass_all_checks(settings):
    settings.DEBUG = True  # the demo runs with DEBUG; without it the embedded broker is an error (below)
    call_command("check", fail_level="WARNING")


def test_unknown_and_mistyped_settings(settings):
    settings.RECOMMENDER = {"TRACKING_ENABLD": True, "EVENT_RETENTION_DAYS": "30"}
    messages = checks.check_recommender_settings()
    assert ids(messages) == ["recommender.E002"]
    assert len(messages) == 2
    assert "TRACKING_ENABLD" in messages[0].msg


def test_settings_must_be_a_dict(settings):
    settings.RECOMMENDER = ["TRACKING_ENABLED"]
    assert ids(checks.check_recommender_settings()) == ["recommender.E002"]


def test_broker_required_in_production(settings):
    settings.DEBUG = False
    settings.CELERY_BROKER_URL = "filesystem://"
    assert ids(checks.check_broker()) == ["recommender.E004"]
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    assert checks.check_broker() == []


def test_redis_caches_that_a_hung_server_could_stall(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "recommender.cache.ResilientRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"CIRCUIT_BREAKER_SECONDS": "30", "SOCKET_TIMEOUT": -1},
        },
        "plain": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
        "memory": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    messages = checks.check_caches()
    assert [(m.id, m.msg.split("]")[0]) for m in messages] == [
        ("recommender.E020", "CACHES['default'"),
        ("recommender.E020", "CACHES['default'"),
        ("recommender.W020", "CACHES['plain'"),
    ]
    settings.CACHES = {"default": {"BACKEND": "recommender.cache.ResilientRedisCache", "LOCATION": "redis://x/0"}}
    assert checks.check_caches() == []


def test_app_order_and_missing_oscar_apps(monkeypatch):
    monkeypatch.setattr(checks, "_app_modules", lambda: ["recommender", "oscar.apps.catalogue", "oscar.apps.basket"])
    assert ids(checks.check_oscar_apps()) == ["recommender.E001", "recommender.E003"]


def test_missing_middleware_warns(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "recommender" not in m]
    assert ids(checks.check_oscar_apps()) == ["recommender.W001"]


def test_settings_reload_on_override(settings):
    from recommender.conf import app_settings

    assert app_settings.TRACKING_ENABLED is True
    settings.RECOMMENDER = {"TRACKING_ENABLED": False}
    assert app_settings.TRACKING_ENABLED is False


def test_training_settings_are_checked_at_startup(settings):
    settings.RECOMMENDER = {
        "RNN_CELL": "transformer",
        "GATE_METRIC": "auc",
        "MODEL_STORAGE": "s3",
        "NEXT_ITEM_MODEL": "nope",
        "HOLDOUT_DAYS": 0,
        "GATE_SIGNIFICANCE": 1.5,
    }
    found = ids(checks.check_training_settings())
    assert found == [f"recommender.E0{i:02d}" for i in (5, 6, 7, 8, 9, 12)]
    settings.RECOMMENDER = {"RNN_CELL": "lstm", "GATE_METRIC": "ndcg@10", "NEXT_ITEM_MODEL": "hybrid"}
    assert checks.check_training_settings() == []


def test_products_that_are_not_goods_are_named_by_text(settings):
    assert checks.check_exclusions() == []  # the default: the importer's non-merchandise class
    settings.RECOMMENDER = {"EXCLUDED_PRODUCT_CLASSES": ["non-merchandise", ""], "EXCLUDED_UPCS": [123, "POST"]}
    found = checks.check_exclusions()
    assert [m.id for m in found] == ["recommender.E013", "recommender.E013"]
    assert "EXCLUDED_PRODUCT_CLASSES" in found[0].msg and "''" in found[0].msg and "123" in found[1].msg


def test_production_settings_are_checked_when_debug_is_off(settings):
    from logging.config import dictConfig

    from django.utils.log import DEFAULT_LOGGING

    settings.DEBUG = False
    settings.SECRET_KEY = "demo-only-insecure-key-change-me"
    settings.SESSION_COOKIE_SECURE = False
    assert ids(checks.check_production()) == ["recommender.W004", "recommender.W005"]  # the demo logs 500s
    settings.SECRET_KEY = "a-long-random-key-nobody-has-published-1234567890"
    settings.SESSION_COOKIE_SECURE = True
    assert checks.check_production() == []
    settings.RECOMMENDER = {"VISITOR_COOKIE_SECURE": False}
    assert ids(checks.check_production()) == ["recommender.W005"]
    settings.RECOMMENDER = {}
    root = logging.getLogger()
    handlers = root.handlers[:]
    try:  # Django's own logging only: errors go to the mail of empty ADMINS, or to DEBUG's console
        root.handlers = []
        dictConfig(DEFAULT_LOGGING)
        settings.ADMINS = []
        assert ids(checks.check_production()) == ["recommender.W006"]
    finally:
        root.handlers = handlers
        from django.conf import settings as live

        dictConfig(live.LOGGING)
    settings.DEBUG = True
    assert checks.check_production() == []
