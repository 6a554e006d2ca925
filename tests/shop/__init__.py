"""Tests of the demo project ``shop``: its Celery app and its importers."""
