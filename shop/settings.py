"""Settings of the demo shop.

SQLite, a file cache and an embedded (filesystem) Celery broker by default, so the
demo needs no server; ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and
Redis (that is how CI and production run).
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from oscar.defaults import *  # noqa: F403  (Oscar's documented way to get its defaults)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SHOP_VAR_DIR", BASE_DIR / "var"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "oscar.config.Shop",
    "oscar.apps.analytics.apps.AnalyticsConfig",
    "oscar.apps.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig",
    "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig",
    "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig",
    "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.basket.apps.BasketConfig",
    "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.offer.apps.OfferConfig",
    "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.customer.apps.CustomerConfig",
    "oscar.apps.search.apps.SearchConfig",
    "oscar.apps.voucher.apps.VoucherConfig",
    "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.dashboard.apps.DashboardConfig",
    "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
    "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
    "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
    "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
    "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
    "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
    "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
    "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
    "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
    "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
    "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
    "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
    "widget_tweaks",
    "haystack",
    "treebeard",
    "django_tables2",
    "sorl.thumbnail",
    "rest_framework",
    "drf_spectacular",
    # ours: after Oscar, so Oscar's models and signals exist when they load
    "recommender.apps.RecommenderConfig",
    "segmentation.apps.SegmentationConfig",
    "segmentation.dashboard.apps.SegmentationDashboardConfig",
    "recommender.dashboard.apps.RecommenderDashboardConfig",
    "shop",
]

SITE_ID = 1

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "recommender.middleware.VisitorMiddleware",
]

ROOT_URLCONF = "shop.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.i18n",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        },
    },
]

WSGI_APPLICATION = "shop.wsgi.application"

# -- database: SQLite for the demo, DATABASE_URL (PostgreSQL) in CI and production
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, the Celery worker and beat share the file
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# -- cache and Celery: Redis when REDIS_URL is set, else a file cache and a filesystem broker
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            # Redis down or hung must never break or slow a page: django-redis with short socket
            # timeouts, cache misses instead of errors, and a circuit breaker that skips Redis for
            # 30 s after a failure, logging one line (recommender/cache.py, README "Redis outages")
            "BACKEND": "recommender.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25, "CIRCUIT_BREAKER_SECONDS": 30},
        },
        # sorl-thumbnail (Oscar's thumbnailer) looks up ~20 thumbnails per listing: a per-process
        # memory cache in front of its database table, so thumbnails do not depend on Redis
        "thumbnails": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "thumbnails"},
    }
    THUMBNAIL_CACHE = "thumbnails"
    THUMBNAIL_CACHE_TIMEOUT = 300  # another process's change of a thumbnail is seen within 5 minutes
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "control_folder": str(_broker_dir / "control"),
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"
    for _d in ("out", "control"):
        (_broker_dir / _d).mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "results").mkdir(parents=True, exist_ok=True)

CELERY_TIMEZONE = "UTC"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER", "0") == "1"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "recommender-purge-events": {
        "task": "recommender.tasks.purge_old_events",
        "schedule": crontab(hour=3, minute=10),
    },
    "segmentation-nightly": {
        "task": "segmentation.tasks.segment_customers",
        "schedule": crontab(hour=2, minute=30),
    },
    # after segmentation (trending per segment uses the current run); on its own queue
    "recommender-train": {
        "task": "recommender.tasks.train_recommenders",
        "schedule": crontab(hour=3, minute=30),
        "options": {"queue": "training"},
    },
}

# -- i18n, static, media
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"

AUTHENTICATION_BACKENDS = (
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
)
# Oscar 4 lists the catalogue through Haystack: Whoosh is pure Python and needs no server
# (``manage.py update_index`` after an import; the demo command does it)
HAYSTACK_CONNECTIONS = {
    "default": {
        "ENGINE": "haystack.backends.whoosh_backend.WhooshEngine",
        "PATH": str(VAR_DIR / "whoosh_index"),
    }
}
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# -- Oscar
OSCAR_SHOP_NAME = "Oscar gift shop (demo)"
OSCAR_DEFAULT_CURRENCY = "GBP"
OSCAR_ALLOW_ANON_CHECKOUT = True
OSCAR_INITIAL_ORDER_STATUS = "Pending"
OSCAR_INITIAL_LINE_STATUS = "Pending"
OSCAR_ORDER_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Cancelled"),
    "Being processed": ("Complete", "Cancelled"),
    "Complete": ("Refunded",),
    "Cancelled": (),
    "Refunded": (),
}
OSCAR_DASHBOARD_NAVIGATION = [
    *OSCAR_DASHBOARD_NAVIGATION,  # noqa: F405
    {
        "label": "Customer segments",
        "icon": "fas fa-users",
        "url_name": "segmentation_dashboard:segmentation-overview",
    },
    {
        "label": "Recommendation models",
        "icon": "fas fa-magic",
        "url_name": "recommender_dashboard:recommender-models",
    },
    {
        "label": "Recommendation report",
        "icon": "fas fa-chart-line",
        "url_name": "recommender_dashboard:recommender-report",
    },
]

# -- the APIs: an OpenAPI schema (drf-spectacular) and a rate limit for anonymous callers
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"recommendations": "120/min"},
}
SPECTACULAR_SETTINGS = {"TITLE": "Oscar personalisation API", "VERSION": "1", "SERVE_INCLUDE_SCHEMA": False}

# -- our apps (every key documented in README.md; omitted keys take their defaults)
RECOMMENDER = {
    # the importer files postage, fees and adjustments under this class (they are also not public)
    "EXCLUDED_PRODUCT_CLASSES": ["non-merchandise"],
    # the demo trains in a few minutes on 2 cores: one recurrent network in the blend, 2 minutes for it
    "TRAINING_TIME_BUDGET_MINUTES": 2,
    "NEXT_ITEM_PARAMS": {"networks": 1},
}
# The demo's guest orders carry one placeholder e-mail per invoice: grouping them would make
# every guest invoice a "customer", so the demo segments registered customers only.
SEGMENTATION = {"INCLUDE_GUESTS": False}

# Everything of WARNING and above, every server error (500) with its traceback included, goes once
# to stderr with the request's id (README, "Logging"); our apps' INFO lines too.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "recommender.logs.RequestIdFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": "plain"},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "recommender": {"level": "INFO"},
        "segmentation": {"level": "INFO"},
    },
}
