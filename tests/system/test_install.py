"""``personalization_core.install.personalize``: what a shop's settings get, and what they keep.

The README's project (``tests/readme_project``) is configured by it alone; these tests call it on
plain dictionaries, as a settings module's ``globals()``.
"""

from __future__ import annotations

import copy

from celery.schedules import crontab
from oscar.defaults import OSCAR_DASHBOARD_NAVIGATION

from personalization_core.install import APPS, personalize

OSCAR_APPS = ["django.contrib.auth", "oscar.config.Shop", "oscar.apps.catalogue.apps.CatalogueConfig"]
OSCAR_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.contrib.auth.context_processors.auth"]},
    }
]


def oscar_settings(**extra):
    """What Oscar's documentation has a new shop's settings.py hold (the parts personalize reads)."""
    return {
        "DEBUG": False,
        "TIME_ZONE": "Europe/London",
        "INSTALLED_APPS": list(OSCAR_APPS),
        "MIDDLEWARE": list(OSCAR_MIDDLEWARE),
        "TEMPLATES": copy.deepcopy(TEMPLATES),
        "OSCAR_DASHBOARD_NAVIGATION": list(OSCAR_DASHBOARD_NAVIGATION),
        **extra,
    }


def test_a_plain_oscar_project_gets_everything(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = oscar_settings()
    changed = personalize(settings)
    assert settings["INSTALLED_APPS"] == [*OSCAR_APPS, *APPS]  # ours after every Oscar app
    assert settings["MIDDLEWARE"] == [*OSCAR_MIDDLEWARE, "recommender.middleware.VisitorMiddleware"]
    processors = settings["TEMPLATES"][0]["OPTIONS"]["context_processors"]
    assert processors == ["django.template.context_processors.request", "django.contrib.auth.context_processors.auth"]
    urls = [entry.get("url_name") for entry in settings["OSCAR_DASHBOARD_NAVIGATION"]]
    assert urls[-3:] == [
        "segmentation_dashboard:segmentation-overview",
        "recommender_dashboard:recommender-models",
        "recommender_dashboard:recommender-report",
    ]
    assert settings["REST_FRAMEWORK"] == {
        "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        "DEFAULT_THROTTLE_RATES": {"recommendations": "120/min", "recommendations_address": "600/min"},
    }
    assert settings["SESSION_COOKIE_SECURE"] is settings["CSRF_COOKIE_SECURE"] is True  # DEBUG is off
    assert settings["LOGGING"]["filters"]["request_id"] == {"()": "recommender.logs.RequestIdFilter"}
    default = settings["CACHES"]["default"]
    assert default["BACKEND"] == "recommender.cache.ResilientRedisCache"
    assert default["LOCATION"] == settings["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert settings["THUMBNAIL_CACHE"] == "thumbnails" and "thumbnails" in settings["CACHES"]
    assert settings["CELERY_TIMEZONE"] == "Europe/London" and settings["CELERY_ACCEPT_CONTENT"] == ["json"]
    beat = settings["CELERY_BEAT_SCHEDULE"]
    assert beat["recommender-train"] == {
        "task": "recommender.tasks.train_recommenders",
        "schedule": crontab(hour=3, minute=30),
        "options": {"queue": "training"},
    }
    assert {entry["task"] for entry in beat.values()} == {
        "segmentation.tasks.segment_customers",
        "recommender.tasks.purge_old_events",
        "recommender.tasks.train_recommenders",
    }
    assert {"INSTALLED_APPS", "CACHES", "CELERY_BEAT_SCHEDULE", "LOGGING"} <= set(changed)
    # Oscar's own defaults are never changed in place
    assert len(OSCAR_DASHBOARD_NAVIGATION) == len(urls) - 3


def test_a_second_call_changes_nothing():
    settings = oscar_settings()
    personalize(settings)
    before = copy.deepcopy(settings)
    assert personalize(settings) == []
    assert settings == before


def test_what_the_shop_set_is_kept(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://env-redis:6379/2")
    own_cache = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "cache"}}
    settings = oscar_settings(
        DEBUG=True,
        INSTALLED_APPS=[*OSCAR_APPS, "recommender", "rest_framework"],  # one of ours by its package name
        CACHES=own_cache,
        CELERY_BROKER_URL="amqp://rabbit//",
        CELERY_BEAT_SCHEDULE={"recommender-train": {"task": "recommender.tasks.train_recommenders", "schedule": 60}},
        REST_FRAMEWORK={"DEFAULT_THROTTLE_RATES": {"recommendations": "30/min"}, "PAGE_SIZE": 10},
        LOGGING={"version": 1},
        SESSION_COOKIE_SECURE=True,
    )
    personalize(settings)
    apps = settings["INSTALLED_APPS"]
    assert apps.count("rest_framework") == 1 and "recommender.apps.RecommenderConfig" not in apps
    assert "segmentation.apps.SegmentationConfig" in apps
    assert settings["CACHES"] is own_cache and "THUMBNAIL_CACHE" not in settings
    assert settings["CELERY_BROKER_URL"] == "amqp://rabbit//"
    assert settings["CELERY_RESULT_BACKEND"] == "redis://env-redis:6379/2"  # not set: the environment's Redis
    assert settings["CELERY_BEAT_SCHEDULE"]["recommender-train"]["schedule"] == 60  # the shop's entry wins
    assert "segmentation-nightly" in settings["CELERY_BEAT_SCHEDULE"]
    rates = settings["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]
    assert rates == {"recommendations": "30/min", "recommendations_address": "600/min"}
    assert settings["REST_FRAMEWORK"]["PAGE_SIZE"] == 10
    assert settings["LOGGING"] == {"version": 1}
    assert settings["SESSION_COOKIE_SECURE"] is True and settings["CSRF_COOKIE_SECURE"] is False  # DEBUG is on


def test_keyword_arguments_override_and_leave_parts_out():
    settings = oscar_settings()
    personalize(
        settings,
        redis_url="redis://cache:6379/1",
        throttle_rates={"recommendations": "60/min"},
        num_proxies=1,
        beat_schedule=False,
        dashboard_navigation=False,
        logging=False,
    )
    assert settings["CACHES"]["default"]["LOCATION"] == settings["CELERY_BROKER_URL"] == "redis://cache:6379/1"
    assert settings["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]["recommendations"] == "60/min"
    assert settings["REST_FRAMEWORK"]["NUM_PROXIES"] == 1
    assert "CELERY_BEAT_SCHEDULE" not in settings and "LOGGING" not in settings
    assert settings["OSCAR_DASHBOARD_NAVIGATION"] == list(OSCAR_DASHBOARD_NAVIGATION)
    settings = oscar_settings()
    personalize(settings, cache=False, celery=False)
    assert "CACHES" not in settings and not any(
        name.startswith("CELERY_") and name != "CELERY_BEAT_SCHEDULE" for name in settings
    )
