from django.urls import path
from django.utils.translation import gettext_lazy as _
from oscar.core.application import OscarDashboardConfig


class RecommenderDashboardConfig(OscarDashboardConfig):
    """Staff pages for the recommendation models and what they earn (``/dashboard/recommendations/``).

    Include ``recommender.urls`` in the project's ``urls.py`` (see README).
    """

    name = "recommender.dashboard"
    label = "recommender_dashboard"
    namespace = "recommender_dashboard"
    verbose_name = _("Recommendation dashboard")
    default_permissions = ["is_staff"]

    def get_urls(self):  # type: ignore[no-untyped-def]
        from recommender.dashboard import views

        urls = [
            path("models/", views.ModelsView.as_view(), name="recommender-models"),
            path("models/<int:pk>/promote/", views.PromoteView.as_view(), name="recommender-promote"),
            path("models/<int:pk>/retire/", views.RetireView.as_view(), name="recommender-retire"),
            path("models/train/", views.TrainView.as_view(), name="recommender-train"),
            path("intent-offer/", views.CreateIntentOfferView.as_view(), name="recommender-create-intent-offer"),
            path("report/", views.ReportView.as_view(), name="recommender-report"),
            path("report/start/", views.StartExperimentView.as_view(), name="recommender-experiment-start"),
            path("report/end/", views.EndExperimentView.as_view(), name="recommender-experiment-end"),
        ]
        return self.post_process_urls(urls)
