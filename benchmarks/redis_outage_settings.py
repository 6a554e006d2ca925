"""Settings of ``benchmarks/redis_outage.py``: the demo shop's, or with ``BENCH_CACHE=plain`` a plain
django-redis cache without the circuit breaker (1 s socket timeouts, ``IGNORE_EXCEPTIONS`` with its
traceback logged per call, sorl-thumbnail on the same Redis)."""

import os

from shop.settings import *  # noqa: F403

if os.environ.get("BENCH_CACHE") == "plain":
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, "IGNORE_EXCEPTIONS": True},
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    THUMBNAIL_CACHE = "default"
    THUMBNAIL_CACHE_TIMEOUT = 3600 * 24 * 365 * 10  # sorl-thumbnail's default
