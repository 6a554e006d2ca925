from django.urls import path

from recommender.api import views

app_name = "recommender-api"

urlpatterns = [
    path("preview/<int:user_id>/<str:placement>/", views.PreviewView.as_view(), name="preview"),
    path("click/", views.ClickView.as_view(), name="click"),
    path("report/", views.ReportView.as_view(), name="report"),
    path("intent/", views.IntentView.as_view(), name="intent"),  # before the catch-all placement
    path("<str:placement>/", views.RecommendationsView.as_view(), name="recommendations"),
]
