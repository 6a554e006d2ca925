"""Everything segmentation serves, for one ``include`` in the project's urls.py::

    path("", include("segmentation.urls")),

gives ``dashboard/segments/`` (staff dashboard, namespace ``segmentation_dashboard``)
and ``api/segmentation/`` (staff-only API, namespace ``segmentation-api``).
"""

from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path(
        "dashboard/segments/",
        include((apps.get_app_config("segmentation_dashboard").urls[0], "segmentation_dashboard")),
    ),
    path("api/segmentation/", include("segmentation.api.urls")),
]
