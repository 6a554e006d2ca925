from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentationConfig(AppConfig):
    name = "segmentation"
    label = "segmentation"
    verbose_name = _("Customer segmentation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from segmentation import checks, offer_views

        checks.register()
        offer_views.install()  # segment offers on /offers/ only for their members
