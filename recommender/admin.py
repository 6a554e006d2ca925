"""Read-only, filterable browsing of captured events for staff."""

from django.contrib import admin

from recommender.models import Event


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
