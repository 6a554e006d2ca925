from personalization_core.celery import app as celery_app  # noqa: F401  (Celery: the worker, beat and "Train now")
