"""The demo django-oscar shop that hosts the recommender and segmentation apps."""

from shop.celery import app as celery_app

__all__ = ("celery_app",)
