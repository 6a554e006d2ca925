from django.apps import apps
from django.utils.translation import gettext_lazy as _
from oscar.core.application import OscarConfig


class RecommenderConfig(OscarConfig):
    """The recommender app: capture, training, serving, the API and the admin."""

    name = "recommender"
    label = "recommender"
    verbose_name = _("Recommendations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from recommender import checks, offer_views, receivers
        from recommender.measurement import checks as measurement_checks
        from recommender.serving import checks as serving_checks
        from recommender.serving import generations

        checks.register()
        receivers.connect()
        generations.connect()
        serving_checks.register()
        measurement_checks.register()
        offer_views.install()  # intent offers on /offers/ only for the visitors they apply to
        if apps.is_installed("django.contrib.admin"):
            from recommender.admin import add_personal_data_actions

            add_personal_data_actions()
