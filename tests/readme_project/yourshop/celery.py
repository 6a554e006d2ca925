import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yourshop.settings")

app = Celery("yourshop")
app.config_from_object("django.conf:settings", namespace="CELERY")  # reads the CELERY_* settings
app.autodiscover_tasks()  # finds recommender.tasks and segmentation.tasks
