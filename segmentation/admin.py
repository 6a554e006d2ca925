"""Read-only, filterable browsing of runs and memberships for staff, with CSV export and offers."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.html import format_html

from segmentation.export import memberships_csv_response
from segmentation.models import CustomerSegment, SegmentationRun, SegmentTarget
from segmentation.offers import create_segment_offer


class NoNulFiltersAdmin(admin.ModelAdmin):
    """The change list answers 400 to a filter or search value holding a NUL character (Django's
    admin passes list-filter values straight to the database, and PostgreSQL refuses NUL: a 500)."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if any("\x00" in value for values in request.GET.lists() for value in values[1]):
            return HttpResponseBadRequest("A filter or search value holds a NUL character.", content_type="text/plain")
        return super().changelist_view(request, extra_context)


class ReadOnlyAdmin(NoNulFiltersAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SegmentationRun)
class SegmentationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "as_of", "status", "is_current", "n_customers", "k", "silhouette_3", "created", "total_s")
    list_filter = ("status", "is_current", ("as_of", admin.DateFieldListFilter))
    date_hierarchy = "as_of"
    readonly_fields = [f.name for f in SegmentationRun._meta.fields]

    @admin.display(description="silhouette")
    def silhouette_3(self, obj: SegmentationRun) -> str:
        return "-" if obj.silhouette is None else f"{obj.silhouette:.3f}"

    @admin.display(description="seconds")
    def total_s(self, obj: SegmentationRun) -> str:
        total = (obj.timings or {}).get("total")
        return "-" if total is None else f"{total:.1f}"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # a run holds up to millions of memberships: old runs are pruned by the task
        # (SEGMENTATION["KEEP_RUNS"]) with one DELETE, never through the admin's collector
        return False


@admin.register(CustomerSegment)
class CustomerSegmentAdmin(ReadOnlyAdmin):
    list_display = (
        "customer",
        "segment",
        "rfm",
        "recency_days",
        "frequency",
        "monetary",
        "cluster",
        "p_alive_pct",
        "predicted_value",
        "churn_probability",
        "churn_risk",
        "run",
    )
    list_filter = ("run__is_current", "segment", "churn_risk", "cluster", "r_score", "f_score", "m_score", "run")
    search_fields = ("user__email", "guest_email")
    list_select_related = ("user", "run")
    show_full_result_count = False
    readonly_fields = [f.name for f in CustomerSegment._meta.fields]
    raw_id_fields = ("user",)
    actions = ("export_csv", "create_offer_for_segment")

    @admin.display(description="customer")
    def customer(self, obj: CustomerSegment) -> str:
        return obj.customer_label

    @admin.display(description="RFM")
    def rfm(self, obj: CustomerSegment) -> str:
        return obj.rfm_code

    @admin.display(description="P(active)")
    def p_alive_pct(self, obj: CustomerSegment) -> str:
        return "-" if obj.p_alive is None else f"{100 * obj.p_alive:.0f}%"

    @admin.action(description="Export selected memberships as CSV")
    def export_csv(self, request: HttpRequest, queryset: Any) -> Any:
        return memberships_csv_response(queryset, "segment-memberships.csv")

    @admin.action(description="Create an offer (10%% off) for the segment(s) of the selected rows")
    def create_offer_for_segment(self, request: HttpRequest, queryset: Any) -> None:
        names = sorted(set(queryset.values_list("segment", flat=True)))
        for name in names:
            offer = create_segment_offer([name], percent=10)
            self.message_user(
                request,
                format_html('Created the offer "{}" for segment {} (edit it in the dashboard).', offer.name, name),
                messages.SUCCESS,
            )


@admin.register(SegmentTarget)
class SegmentTargetAdmin(NoNulFiltersAdmin):
    list_display = ("segment", "shopper_name", "condition", "offers")
    list_filter = ("segment",)
    raw_id_fields = ("condition",)

    @admin.display(description="offers")
    def offers(self, obj: SegmentTarget) -> str:
        return ", ".join(o.name for o in obj.condition.offers.all()) or "-"
