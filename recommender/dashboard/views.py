"""Staff-only pages (access is enforced by the app config's ``default_permissions``)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views import View
from django.views.generic import TemplateView
from oscar.core.loading import get_model

from recommender.abstract_models import ModelKind, VersionStatus
from recommender.dashboard import charts
from recommender.services import preview, versions

TrainingRun = get_model("recommender", "TrainingRun")
ModelVersion = get_model("recommender", "ModelVersion")


def _models_url() -> str:
    return reverse("recommender_dashboard:recommender-models")


class ModelsView(TemplateView):
    """Live version per kind, runs with their metrics, why candidates were rejected, previews."""

    template_name = "recommender/dashboard/models.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        live = {v.kind: v for v in ModelVersion.objects.filter(status=VersionStatus.LIVE)}
        runs = list(TrainingRun.objects.prefetch_related("versions").order_by("-created", "-pk")[:30])
        recent = list(ModelVersion.objects.select_related("run", "promoted_by").order_by("-created", "-pk")[:60])
        problems = versions.load_problems(list(live.values()))
        ctx.update(
            kinds=[
                {"kind": k, "label": k.label, "live": v, "problem": problems.get(v.pk) if v else None}
                for k in ModelKind
                for v in [live.get(k.value)]
            ],
            runs=runs,
            versions=recent,
            product_query=self.request.GET.get("product", ""),
            customer_query=self.request.GET.get("customer", ""),
        )
        newest = runs[0].pk if runs else 0
        key = f"recommender:dashboard:chart:{newest}:{len(recent)}"
        svg = cache.get(key)
        if svg is None:
            history = list(
                ModelVersion.objects.exclude(metrics={})
                .order_by("created", "pk")
                .values("pk", "kind", "status", "metrics", "created")
            )
            svg = charts.metrics_over_runs(history)
            cache.set(key, svg, 3600)
        ctx["chart"] = mark_safe(svg)
        ctx.update(self._previews())
        return ctx

    def _previews(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        query = self.request.GET.get("product", "").strip()
        if query:
            product = preview.find_product(query)
            out["preview_product"] = product
            if product is not None:
                out["product_previews"] = [preview.for_product(p, product) for p in preview.PRODUCT_PLACEMENTS]
        query = self.request.GET.get("customer", "").strip()
        if query:
            customer = preview.find_customer(query)
            out["preview_customer"] = customer
            if customer is not None:
                out["customer_preview"] = preview.for_customer(customer)
        return out


class PromoteView(View):
    """Make a version live (a rollback when it is an earlier one)."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = get_object_or_404(ModelVersion, pk=pk)
        try:
            versions.promote(version, request.user, reason=f"promoted by {request.user.get_username()}")
        except versions.PromotionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{version} is live.")
        return HttpResponseRedirect(_models_url())


class RetireView(View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = get_object_or_404(ModelVersion, pk=pk, status=VersionStatus.LIVE)
        versions.retire(version, request.user)
        messages.success(request, f"{version} no longer serves; its blocks use the next fallback.")
        return HttpResponseRedirect(_models_url())


class TrainView(View):
    """Queue a training run on the training queue (the Celery worker does it)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        from recommender.tasks import enqueue_training

        try:
            enqueue_training()
        except Exception as exc:  # broker down: say so, never a 500
            messages.error(request, f"Could not queue the training ({type(exc).__name__}: {exc}).")
        else:
            messages.success(request, "Training queued; refresh this page in a few minutes.")
        return HttpResponseRedirect(_models_url())
