"""Every page and API of the plugin, for one line in the project's ``urls.py``, before Oscar's own::

    path("", include("personalization_core.urls")),

gives ``dashboard/segments/`` and ``api/segmentation/`` (:mod:`segmentation.urls`),
``dashboard/recommendations/``, ``api/recommendations/`` and ``api/schema/``
(:mod:`recommender.urls`).
"""

from django.urls import include, path

urlpatterns = [
    path("", include("segmentation.urls")),
    path("", include("recommender.urls")),
]
