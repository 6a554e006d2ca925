from __future__ import annotations

from typing import Any

from rest_framework import pagination, permissions, viewsets
from rest_framework.exceptions import NotFound

from segmentation.api.serializers import (
    CustomerSegmentSerializer,
    SegmentationRunDetailSerializer,
    SegmentationRunSerializer,
)
from segmentation.models import CustomerSegment, SegmentationRun


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


class CustomerSegmentViewSet(viewsets.ReadOnlyModelViewSet):
    """Memberships. Filters: ``run`` (id or ``current``, the default), ``segment``, ``user``,
    ``guest_email``, ``cluster``, ``churn_risk`` (``true``/``false``)."""

    permission_classes = [permissions.IsAdminUser]
    pagination_class = Pagination
    serializer_class = CustomerSegmentSerializer

    def get_queryset(self) -> Any:
        p = self.request.query_params
        qs = CustomerSegment.objects.select_related("user").order_by("pk")
        run = p.get("run", "current")
        if run == "current":
            qs = qs.filter(run__is_current=True)
        elif run != "all":
            qs = qs.filter(run_id=int(run)) if run.isdigit() else qs.none()
        if p.get("segment"):
            qs = qs.filter(segment=p["segment"])
        if p.get("user", "").isdigit():
            qs = qs.filter(user_id=int(p["user"]))
        if p.get("guest_email"):
            qs = qs.filter(guest_email=p["guest_email"].strip().lower())
        if p.get("cluster", "").lstrip("-").isdigit():
            qs = qs.filter(cluster=int(p["cluster"]))
        if p.get("churn_risk") in ("true", "false"):
            qs = qs.filter(churn_risk=p["churn_risk"] == "true")
        return qs
