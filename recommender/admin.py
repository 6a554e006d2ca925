"""Staff views of captured events (read-only), training runs, and model versions (promote / retire)."""

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from recommender.models import Bury, Event, ModelVersion, TrainingRun, VersionStatus
from recommender.services import personal_data, versions

# -- personal data (GDPR): erase / export actions, on the user admin and the event admin -----------


def can_erase(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.is_staff and request.user.has_perm("recommender.erase_personal_data")


def can_export(request: HttpRequest) -> bool:
    user = request.user
    return user.is_active and user.is_staff and user.has_perm("recommender.export_personal_data")


def _erase(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any, people: list[personal_data.Person]
) -> TemplateResponse | None:
    """Ask once (a confirmation page), then erase each person and report the counts."""
    if not can_erase(request):
        raise PermissionDenied
    if request.POST.get("post") != "yes":
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": "Erase personal data",
            "opts": modeladmin.model._meta,
            "people": people,
            "queryset": queryset,
            "action": request.POST.get("action", ""),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "recommender/admin/erase_personal_data.html", context)
    total: dict[str, int] = {}
    for person in people:
        for key, value in personal_data.erase(person).items():
            total[key] = total.get(key, 0) + value
    modeladmin.message_user(
        request,
        f"Erased the personal data of {len(people)} person(s): {total.get('events', 0)} events and "
        f"{total.get('segment_memberships', 0)} segment memberships deleted, {total.get('orders_excluded', 0)} "
        "orders no longer learnt from.",
        messages.SUCCESS,
    )
    return None


@admin.action(
    description="Erase personal data (events, segments, recommendations)", permissions=["erase_personal_data"]
)
def erase_personal_data_of_users(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> Any:
    people = [personal_data.person_for_user(pk) for pk in queryset.values_list("pk", flat=True)]
    return _erase(modeladmin, request, queryset, people)


@admin.action(description="Export personal data as JSON", permissions=["export_personal_data"])
def export_personal_data_of_users(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> HttpResponse:
    if not can_export(request):
        raise PermissionDenied
    people = [personal_data.person_for_user(pk) for pk in queryset.values_list("pk", flat=True)]
    body = json.dumps({"people": [personal_data.export(p) for p in people]}, indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="personal-data.json"'
    return response


def add_personal_data_actions(site: admin.AdminSite | None = None) -> None:
    """Give the registered admin of the user model (Django's, or the shop's own) the erase and export
    actions, shown only to staff with the ``recommender.erase_personal_data`` /
    ``export_personal_data`` permissions. Called from ``RecommenderConfig.ready``."""
    from django.contrib.auth import get_user_model

    site = site or admin.site
    model_admin = site._registry.get(get_user_model())
    if model_admin is None:
        return
    actions = list(model_admin.actions or ())
    for action in (erase_personal_data_of_users, export_personal_data_of_users):
        if action not in actions:
            actions.append(action)
    model_admin.actions = actions
    # what Django's ``allowed_permissions`` filter calls with the request
    model_admin.has_erase_personal_data_permission = can_erase  # type: ignore[attr-defined]
    model_admin.has_export_personal_data_permission = can_export  # type: ignore[attr-defined]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("created", "kind", "user", "short_visitor", "product", "order_number", "quantity", "price", "query")
    list_filter = ("kind", ("created", admin.DateFieldListFilter))
    search_fields = ("=visitor_id", "order_number", "query", "user__email", "product__title")
    date_hierarchy = "created"
    list_select_related = ("user", "product")
    show_full_result_count = False
    readonly_fields = [f.name for f in Event._meta.fields]
    actions = ("erase_people",)

    @admin.action(
        description="Erase the personal data of the people behind the selected events",
        permissions=["erase_personal_data"],
    )
    def erase_people(self, request: HttpRequest, queryset: Any) -> Any:
        """The account of each event, or for an anonymous event its browser's visitor id."""
        users = set(queryset.exclude(user__isnull=True).values_list("user_id", flat=True))
        visitors = set(queryset.filter(user__isnull=True).exclude(visitor_id="").values_list("visitor_id", flat=True))
        people = [personal_data.person_for_user(pk) for pk in sorted(users)]
        people += [personal_data.person_for_visitor(v) for v in sorted(visitors)]
        return _erase(self, request, queryset, people)

    def has_erase_personal_data_permission(self, request: HttpRequest) -> bool:
        return can_erase(request)

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
