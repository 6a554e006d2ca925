"""Everything the recommender serves, for one ``include`` in the project's urls.py::

    path("", include("recommender.urls")),

gives ``dashboard/recommendations/`` (staff dashboard, namespace ``recommender_dashboard``).
"""

from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path(
        "dashboard/recommendations/",
        include((apps.get_app_config("recommender_dashboard").urls[0], "recommender_dashboard")),
    ),
]
