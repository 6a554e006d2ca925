"""Staff views of captured events (read-only), training runs, and model versions (promote / retire)."""

from django.contrib import admin, messages

from recommender.models import Bury, Event, ModelVersion, TrainingRun, VersionStatus
from recommender.services import versions


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("created", "kind", "user", "short_visitor", "product", "order_number", "quantity", "price", "query")
    list_filter = ("kind", ("created", admin.DateFieldListFilter))
    search_fields = ("=visitor_id", "order_number", "query", "user__email", "product__title")
    date_hierarchy = "created"
    list_select_related = ("user", "product")
    show_full_result_count = False
    readonly_fields = [f.name for f in Event._meta.fields]

    @admin.display(description="visitor")
    def short_visitor(self, obj: Event) -> str:
        return obj.visitor_id[:8]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False  # events go by the retention setting (purge_old_events), not by hand


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "created", "as_of", "status", "trigger", "total_seconds", "peak_rss_mb")
    list_filter = ("status",)
    readonly_fields = [f.name for f in TrainingRun._meta.fields]

    @admin.display(description="seconds")
    def total_seconds(self, obj: TrainingRun) -> float | None:
        return (obj.timings or {}).get("total")

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Browse versions; promote one (rollback) or retire one with the actions."""

    list_display = ("pk", "kind", "model_name", "status", "gate_value", "popularity_value", "created", "promoted_by")
    list_filter = ("kind", "status")
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ("promote_versions", "retire_versions")

    @admin.display(description="candidate")
    def gate_value(self, obj: ModelVersion) -> str:
        key = (obj.metrics or {}).get("gate_metric", "hr@20")
        value = (obj.metrics or {}).get("candidate", {}).get(key)
        return "-" if value is None else f"{key} {100 * value:.2f}"

    @admin.display(description="popularity")
    def popularity_value(self, obj: ModelVersion) -> str:
        key = (obj.metrics or {}).get("gate_metric", "hr@20")
        value = (obj.metrics or {}).get("popularity", {}).get(key)
        return "-" if value is None else f"{100 * value:.2f}"

    @admin.action(description="Promote the selected version (make it live; one per kind)")
    def promote_versions(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        if queryset.values("kind").distinct().count() != queryset.count():
            self.message_user(request, "Choose at most one version of each kind.", messages.ERROR)
            return
        for version in queryset:
            try:
                versions.promote(version, request.user, reason=f"promoted by {request.user.get_username()}")
            except versions.PromotionError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{version} is live.", messages.SUCCESS)

    @admin.action(description="Retire the selected versions (stop serving them)")
    def retire_versions(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for version in queryset.filter(status=VersionStatus.LIVE):
            versions.retire(version, request.user)
        self.message_user(request, "Retired.", messages.SUCCESS)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Bury)
class BuryAdmin(admin.ModelAdmin):
    """Products and categories never recommended in any block (the shop's own curated
    ``ProductRecommendation`` pins products on product pages)."""

    list_display = ("product", "category", "note", "created")
    raw_id_fields = ("product",)
    search_fields = ("product__title", "product__upc", "category__name", "note")
