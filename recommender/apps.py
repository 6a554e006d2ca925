from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommenderConfig(AppConfig):
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
