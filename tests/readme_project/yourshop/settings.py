"""Settings of the README's shop: a plain django-oscar 4.2 project, then README.md's "Installing" recipe.

The first part is what Oscar's own documentation has a new shop write; the part after the
"personalisation" line is README.md's recipe, verbatim (``tests/test_packaging.py`` checks that every
snippet of the README's install section is in this file, and ``scripts/check_wheel.sh`` runs
``manage.py check`` on this project in a fresh virtualenv with the built wheel and without torch).
"""

import os
import tempfile
from pathlib import Path

from celery.schedules import crontab
from oscar.defaults import *

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "readme-project-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

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
    "sorl.thumbnail",
    "django_tables2",
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
]
ROOT_URLCONF = "yourshop.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_DB", str(Path(tempfile.gettempdir()) / "yourshop.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
AUTHENTICATION_BACKENDS = (
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
)
HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "media"
OSCAR_DEFAULT_CURRENCY = "GBP"

# -- personalisation: README.md, "Installing into an existing Oscar shop", verbatim from here on
INSTALLED_APPS += [
    "rest_framework",
    "drf_spectacular",  # the OpenAPI schema at /api/schema/
    "recommender.apps.RecommenderConfig",  # after every oscar.* app
    "segmentation.apps.SegmentationConfig",
    "segmentation.dashboard.apps.SegmentationDashboardConfig",
    "recommender.dashboard.apps.RecommenderDashboardConfig",
]

MIDDLEWARE += ["recommender.middleware.VisitorMiddleware"]  # last, after Oscar's BasketMiddleware

OSCAR_DASHBOARD_NAVIGATION += [
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
]

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # the recommendations API: per visitor (user, else visitor cookie, else address) and per address
    "DEFAULT_THROTTLE_RATES": {"recommendations": "120/min", "recommendations_address": "600/min"},
    # behind a reverse proxy or load balancer that sets X-Forwarded-For, say how many there are:
    # without it the throttle counts the address Django sees, never a header a client can write
    # "NUM_PROXIES": 1,
}

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG  # served over HTTPS in production (recommender.W005)

# every server error (500) written once to stderr, with its traceback and the request's id (recommender.W006)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "recommender.logs.RequestIdFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {"recommender": {"level": "INFO"}, "segmentation": {"level": "INFO"}},
}

RECOMMENDER = {}  # override only what you need; every key and its default is listed below
SEGMENTATION = {}

# One Redis for the cache and the Celery broker. The cache must be shared by every process:
# the lock that keeps a nightly task from overlapping itself lives there (recommender.W002/E011).
# Redis down or hung never breaks or slows a page (see "Redis outages" below).
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "recommender.cache.ResilientRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25, "CIRCUIT_BREAKER_SECONDS": 30},
    },
    "thumbnails": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}
THUMBNAIL_CACHE = "thumbnails"  # sorl-thumbnail (Oscar's thumbnails) off Redis
THUMBNAIL_CACHE_TIMEOUT = 300
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "recommender-purge-events": {
        "task": "recommender.tasks.purge_old_events",
        "schedule": crontab(hour=3, minute=10),
    },
    "segmentation-nightly": {
        "task": "segmentation.tasks.segment_customers",
        "schedule": crontab(hour=2, minute=30),
    },
    # after segmentation (trending per segment reads the current run), on the training queue
    "recommender-train": {
        "task": "recommender.tasks.train_recommenders",
        "schedule": crontab(hour=3, minute=30),
        "options": {"queue": "training"},
    },
}
