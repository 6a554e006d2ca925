"""Everything the recommender serves, for one ``include`` in the project's urls.py::

    path("", include("recommender.urls")),

gives ``dashboard/recommendations/`` (staff dashboard, namespace ``recommender_dashboard``),
``api/recommendations/`` (the visitor's recommendations, namespace ``recommender-api``) and
``api/schema/`` (the OpenAPI schema of every API of the project, drf-spectacular).
"""

from django.apps import apps
from django.conf import settings
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

#: the schema's title and description unless the project's SPECTACULAR_SETTINGS give its own
SCHEMA_SETTINGS = {
    "TITLE": "Oscar personalisation API",
    "DESCRIPTION": "Recommendations for the visitor of the request (public), customer segmentation and staff "
    "previews (staff only).",
    "VERSION": "1",
}

urlpatterns = [
    path(
        "dashboard/recommendations/",
        include((apps.get_app_config("recommender_dashboard").urls[0], "recommender_dashboard")),
    ),
    path("api/recommendations/", include("recommender.api.urls")),
    # anonymous callers see the public operations only; staff see theirs too
    path(
        "api/schema/",
        SpectacularAPIView.as_view(
            serve_public=False,
            custom_settings={
                key: value
                for key, value in SCHEMA_SETTINGS.items()
                if key not in getattr(settings, "SPECTACULAR_SETTINGS", {})
            },
        ),
        name="api-schema",
    ),
]
