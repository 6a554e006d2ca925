"""A Celery app for a shop that has none: one line in the project package's ``__init__.py``::

    from personalization_core.celery import app as celery_app  # noqa: F401

It reads the ``CELERY_*`` settings (:func:`personalization_core.install.personalize` gives
them) and finds the tasks of every installed app. The web process then sends tasks (the
dashboard's "Train now") to the shop's broker, and the worker and beat run with the settings
named in the environment::

    DJANGO_SETTINGS_MODULE=yourshop.settings celery -A yourshop worker -Q celery,training -l info
    DJANGO_SETTINGS_MODULE=yourshop.settings celery -A yourshop beat -l info

A shop with its own Celery app keeps it, and leaves this module alone.
"""

import os

from celery import Celery
from django.core.exceptions import ImproperlyConfigured

if not os.environ.get("DJANGO_SETTINGS_MODULE"):
    raise ImproperlyConfigured(
        "personalization_core.celery reads the Django settings named by DJANGO_SETTINGS_MODULE, which is not set: "
        "run Celery as DJANGO_SETTINGS_MODULE=yourshop.settings celery -A yourshop worker"
    )

app = Celery("personalization_core")
app.config_from_object("django.conf:settings", namespace="CELERY")  # the CELERY_* settings
app.autodiscover_tasks()  # recommender.tasks, segmentation.tasks and any other app's tasks
