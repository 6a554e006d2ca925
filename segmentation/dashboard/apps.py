from django.urls import path, re_path
from django.utils.translation import gettext_lazy as _
from oscar.core.application import OscarDashboardConfig


class SegmentationDashboardConfig(OscarDashboardConfig):
    """Staff pages: overview, a segment's customers, a customer's history, offers for a segment,
    the shop's behaviour.

    Include in the project's ``urls.py`` (see README)::

        path("", include("segmentation.urls"))  # dashboard/segments/ and api/segmentation/
    """

    name = "segmentation.dashboard"
    label = "segmentation_dashboard"
    namespace = "segmentation_dashboard"
    verbose_name = _("Segmentation dashboard")
    default_permissions = ["is_staff"]

    def get_urls(self):  # type: ignore[no-untyped-def]
        from segmentation.dashboard import views

        urls = [
            path("", views.OverviewView.as_view(), name="segmentation-overview"),
            path("segment/", views.SegmentView.as_view(), name="segmentation-segment"),
            re_path(r"^customer/(?P<user_id>[0-9]+)/$", views.CustomerView.as_view(), name="segmentation-customer"),
            path("guest/", views.CustomerView.as_view(), name="segmentation-guest"),
            path("offer/", views.CreateOfferView.as_view(), name="segmentation-create-offer"),
            path("behaviour/", views.BehaviourView.as_view(), name="segmentation-behaviour"),
        ]
        return self.post_process_urls(urls)
