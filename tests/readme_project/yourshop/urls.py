from django.apps import apps
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("personalization_core.urls")),  # dashboards and APIs, before Oscar's patterns
    path("", include(apps.get_app_config("oscar").urls[0])),
]
