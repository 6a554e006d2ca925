from django.urls import path

from recommender.api import views

app_name = "recommender-api"

urlpatterns = [
    path("preview/<int:user_id>/<str:placement>/", views.PreviewView.as_view(), name="preview"),
    path("<str:placement>/", views.RecommendationsView.as_view(), name="recommendations"),
]
