from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from oscar.core.loading import get_model
from rest_framework import pagination, permissions, viewsets
from rest_framework.exceptions import NotFound

from segmentation.api.serializers import (
    CustomerSegmentSerializer,
    SegmentationRunDetailSerializer,
    SegmentationRunSerializer,
)
from segmentation.params import MembershipFilters, filter_memberships

CustomerSegment = get_model("segmentation", "CustomerSegment")
SegmentationRun = get_model("segmentation", "SegmentationRun")


class Pagination(pagination.PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class SegmentationRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs, newest first; ``/runs/current/`` is the current one with its segment summary."""

    permission_classes = [permissions.IsAdminUser]
    pagination_class = Pagination
    queryset = SegmentationRun.objects.order_by("-created")

    def get_serializer_class(self) -> Any:
        return SegmentationRunDetailSerializer if self.action == "retrieve" else SegmentationRunSerializer

    def get_object(self) -> Any:
        if self.kwargs.get("pk") == "current":
            run = SegmentationRun.objects.filter(is_current=True).first()
            if run is None:
                raise NotFound("no current segmentation run")
            self.check_object_permissions(self.request, run)
            return run
        return super().get_object()


@extend_schema_view(
    list=extend_schema(parameters=[MembershipFilters]), retrieve=extend_schema(parameters=[MembershipFilters])
)
class CustomerSegmentViewSet(viewsets.ReadOnlyModelViewSet):
    """Memberships. Filters (:class:`segmentation.params.MembershipFilters`; a malformed one is a
    400): ``run`` (id, ``current``, the default, or ``all``), ``segment``, ``user``,
    ``guest_email``, ``cluster``, ``churn_risk`` (``true``/``false``)."""

    permission_classes = [permissions.IsAdminUser]
    pagination_class = Pagination
    serializer_class = CustomerSegmentSerializer

    def get_queryset(self) -> Any:
        qs = CustomerSegment.objects.select_related("user").order_by("pk")
        return filter_memberships(qs, MembershipFilters.parse(self.request.query_params))
