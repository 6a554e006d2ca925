from django.apps import apps
from django.utils.translation import gettext_lazy as _
from oscar.core.application import OscarConfig


class RecommenderConfig(OscarConfig):
    """An Oscar app config, so that Oscar's ``get_class`` finds the classes a shop may fork
    (``get_class("recommender.services.gate", "PromotionGate")``)."""

    name = "recommender"
    label = "recommender"
    verbose_name = _("Recommendations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from recommender import checks, receivers
        from recommender.services import serving

        checks.register()
        receivers.connect()
        serving.connect_catalogue_signals()
        if apps.is_installed("django.contrib.admin"):
            from recommender.admin import add_personal_data_actions

            add_personal_data_actions()
