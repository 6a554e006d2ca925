from django.apps import apps
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("segmentation.urls")),  # dashboard/segments/, api/segmentation/
    path("", include("recommender.urls")),  # dashboard/recommendations/, api/recommendations/
    path("", include(apps.get_app_config("oscar").urls[0])),  # Oscar's own patterns last
]
