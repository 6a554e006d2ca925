from rest_framework.routers import DefaultRouter

from segmentation.api.views import CustomerSegmentViewSet, SegmentationRunViewSet

app_name = "segmentation-api"

router = DefaultRouter()
router.register("runs", SegmentationRunViewSet, basename="run")
router.register("memberships", CustomerSegmentViewSet, basename="membership")

urlpatterns = router.urls
