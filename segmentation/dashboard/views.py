"""Staff-only dashboard views (access is enforced by the app config's ``default_permissions``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.views import View
from django.views.generic import TemplateView
from oscar.core.loading import get_model
from rest_framework.exceptions import ValidationError

from segmentation import behaviour, charts
from segmentation.abstract_models import RunStatus
from segmentation.export import csv_response, memberships_csv_response
from segmentation.offers import create_segment_offer
from segmentation.params import (
    GuestParams,
    OfferForm,
    RunParams,
    SegmentPageParams,
    WhatIfParams,
    error_text,
    filter_memberships,
)
from segmentation.services.lookups import current_run
from segmentation.services.reports import cluster_points, explain, transition_matrix, what_if

CustomerSegment = get_model("segmentation", "CustomerSegment")
SegmentationRun = get_model("segmentation", "SegmentationRun")


class BadParameters(Exception):
    """Malformed query parameters: the view answers 400 with the reasons (see :func:`_bad_request`)."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(error_text(error.detail))


def _parse(parser: type, data: Any) -> dict[str, Any]:
    try:
        return parser.parse(data)
    except ValidationError as exc:
        raise BadParameters(exc) from exc


def _bad_request(exc: BadParameters) -> HttpResponse:
    return HttpResponseBadRequest(f"Bad parameters:\n{exc}\n", content_type="text/plain; charset=utf-8")


class ParamsMixin:
    """Malformed query parameters give a 400 that says which and why (never a 500)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        except BadParameters as exc:
            return _bad_request(exc)


def _run_from_request(request: HttpRequest) -> SegmentationRun | None:
    run_id = _parse(RunParams, request.GET).get("run")
    if run_id is not None:
        try:
            return SegmentationRun.objects.get(pk=run_id)
        except SegmentationRun.DoesNotExist as exc:
            raise Http404("no such run") from exc
    return current_run()


def _currency(run: SegmentationRun) -> str:
    return (run.parameters.get("settings") or {}).get("currency", "")


class OverviewView(ParamsMixin, TemplateView):
    template_name = "segmentation/dashboard/overview.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        run = _run_from_request(self.request)
        runs = list(SegmentationRun.objects.order_by("-created")[:30])
        ctx.update(run=run, runs=runs, last_failed=next((r for r in runs if r.status == RunStatus.FAILED), None))
        if run is None:
            return ctx
        summary = run.summary or {}
        previous = (
            SegmentationRun.objects.filter(status=RunStatus.SUCCEEDED, created__lt=run.created)
            .order_by("-created")
            .first()
        )
        history = list(
            SegmentationRun.objects.filter(status=RunStatus.SUCCEEDED)
            .order_by("as_of", "created")
            .values_list("as_of", "summary")
        )[-60:]
        # runs never change once written: the SVGs are cached per run (and per newest run for the trend)
        key = f"segmentation:overview-charts:{run.pk}:{runs[0].pk if runs else 0}"
        svgs = cache.get(key)
        if svgs is None:
            svgs = {
                "chart_sizes": charts.segment_sizes(summary.get("segments", [])),
                "chart_heatmap": charts.rf_heatmap(summary.get("heatmap_rf", [])),
                "chart_scatter": charts.cluster_scatter(
                    cluster_points(run), summary.get("clusters", []), _currency(run)
                ),
                "chart_backtest": charts.backtest_deciles(summary.get("backtest", {})),
                "chart_churn": charts.churn_over_runs(
                    [(d.isoformat(), (s or {}).get("churn_share")) for d, s in history]
                ),
            }
            cache.set(key, svgs, 24 * 3600)
        ctx.update({name: mark_safe(svg) for name, svg in svgs.items()})  # our own matplotlib output
        ctx.update(what_if=self.what_if(run))
        ctx.update(
            summary=summary,
            segments=summary.get("segments", []),
            clusters=summary.get("clusters", []),
            clv=summary.get("clv", {}),
            backtest=summary.get("backtest", {}),
            currency=_currency(run),
            previous=previous,
            transitions=transition_matrix(previous, run) if previous else None,
        )
        return ctx

    def what_if(self, run: SegmentationRun) -> dict[str, Any]:
        """The "which segment would this customer be in?" form: its values, errors and answer."""
        g = self.request.GET
        form = {"recency": g.get("wi_r", ""), "frequency": g.get("wi_f", ""), "monetary": g.get("wi_m", "")}
        if not any(form.values()):
            return {"form": form}
        try:
            params = WhatIfParams.parse(g)
        except ValidationError:
            return {
                "form": form,
                "error": "Give whole days since the last order (0 or more), a number of orders "
                "(1 or more) and a spend (a number).",
            }
        result = what_if(run, params["wi_r"], params["wi_f"], params["wi_m"])
        return {"form": form, "result": result}


class SegmentView(ParamsMixin, TemplateView):
    """A segment's customers, filterable, paginated, exportable (``?format=csv``)."""

    template_name = "segmentation/dashboard/segment.html"
    paginate_by = 50

    def filtered(self, run: SegmentationRun, params: dict[str, Any]) -> QuerySet:
        """The run's memberships narrowed by the page's validated parameters, in their order."""
        qs = filter_memberships(CustomerSegment.objects.select_related("user"), {**params, "run": run.pk})
        return qs.order_by(params.get("order", "-monetary"), "pk")

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        params = _parse(SegmentPageParams, request.GET)
        run = _run_from_request(request)
        if run is None:
            raise Http404("no segmentation run yet")
        qs = self.filtered(run, params)
        if params.get("format") == "csv":
            return memberships_csv_response(qs, f"segment-{params.get('segment') or 'all'}-{run.as_of:%Y%m%d}.csv")
        page = Paginator(qs, self.paginate_by).get_page(request.GET.get("page"))
        params = request.GET.copy()
        params.pop("page", None)
        ctx = self.get_context_data(
            run=run,
            page_obj=page,
            memberships=page.object_list,
            segment=request.GET.get("name", ""),
            querystring=params.urlencode(),
            segment_names=sorted((run.segment_counts or {}).keys()),
        )
        return self.render_to_response(ctx)


class CustomerView(ParamsMixin, TemplateView):
    """One customer's scores, segment history, predicted value and why."""

    template_name = "segmentation/dashboard/customer.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        user_id = kwargs.get("user_id")
        if user_id:
            customer = get_object_or_404(get_user_model(), pk=user_id)
            qs = CustomerSegment.objects.filter(user=customer)
            label = getattr(customer, "email", "") or str(customer)
        else:
            if not (self.request.GET.get("email") or "").strip():
                raise Http404("no customer given")
            email = _parse(GuestParams, self.request.GET)["email"].strip().lower()
            customer = None
            qs = CustomerSegment.objects.filter(user__isnull=True, guest_email=email)
            label = f"{email} (guest)"
        kept = list(SegmentationRun.objects.filter(status=RunStatus.SUCCEEDED).values_list("pk", flat=True))
        history = list(qs.filter(run_id__in=kept).select_related("run").order_by("-run__as_of"))
        current = next((m for m in history if m.run.is_current), None)
        ctx.update(
            customer=customer,
            label=label,
            history=history,
            current=current,
            why=explain(current) if current else "",
        )
        return ctx


class BehaviourView(TemplateView):
    """The shop's behaviour at a glance (``?format=csv&table=...`` exports one table)."""

    template_name = "segmentation/dashboard/behaviour.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        data = behaviour.shop_behaviour()
        if request.GET.get("format") == "csv":
            table = request.GET.get("table", "")
            if table not in behaviour.TABLES:
                raise Http404("no such table")
            return csv_response(behaviour.behaviour_csv_rows(data, table), f"behaviour-{table}.csv")
        key = f"segmentation:behaviour-svgs:{data['computed']}"
        svgs = cache.get(key)
        if svgs is None:
            grids = {
                "product views": behaviour.activity_grid(data["activity"], "view"),
                "basket additions": behaviour.activity_grid(data["activity"], "basket"),
                "orders": behaviour.activity_grid(data["activity"], "order"),
            }
            svgs = {
                "chart_activity": charts.activity_heatmaps(grids),
                "chart_weekly": charts.weekly_year_on_year(data["weekly"]["rows"]),
                "chart_funnel": charts.funnel_bars(data["funnel_categories"], "category"),
                "chart_cohorts": charts.cohort_heatmap(data["cohorts"]),
                "chart_new_returning": charts.new_vs_returning(data["new_returning"]),
            }
            cache.set(key, svgs, 24 * 3600)
        intent = behaviour.purchase_intent()
        ctx = self.get_context_data(
            data=data,
            computed=datetime.fromisoformat(data["computed"]),  # shown in the shop's zone and format
            tables=behaviour.TABLES,
            intent=intent,
            **{k: mark_safe(v) for k, v in svgs.items()},
            **self.intent_charts(intent),
        )
        return self.render_to_response(ctx)

    @staticmethod
    def intent_charts(intent: dict[str, Any] | None) -> dict[str, str]:
        """The live purchase-intent version's two figures, cached per version (it never changes)."""
        if not intent or intent.get("version") is None:
            return {}
        version = intent["version"]
        key = f"segmentation:intent-svgs:{version.pk}:{version.created.timestamp()}:{get_language()}"
        svgs = cache.get(key)
        if svgs is None:
            svgs = {
                "chart_intent": charts.intent_distribution(intent["distribution"], intent["bands"]),
                "chart_reliability": charts.intent_reliability(intent["calibration"]),
            }
            cache.set(key, svgs, 24 * 3600)
        return {k: mark_safe(v) for k, v in svgs.items()}


class CreateOfferView(View):
    """POST ``segment`` (and ``percent``): create a Site offer for that segment."""

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            form = OfferForm.parse(request.POST)
            offer = create_segment_offer([form["segment"]], percent=form["percent"])
        except ValidationError as exc:
            messages.error(request, f"No offer created: {error_text(exc.detail)}")
            return HttpResponseRedirect(reverse("segmentation_dashboard:segmentation-overview"))
        except ValueError as exc:
            messages.error(request, f"No offer created: {exc}")
            return HttpResponseRedirect(reverse("segmentation_dashboard:segmentation-overview"))
        messages.success(request, f'Created the offer "{offer.name}". Review or edit it here.')
        return HttpResponseRedirect(reverse("dashboard:offer-detail", kwargs={"pk": offer.pk}))
