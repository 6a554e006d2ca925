"""Staff-only pages (access is enforced by the app config's ``default_permissions``)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.views import View
from django.views.generic import TemplateView
from oscar.core.loading import get_model

from recommender.abstract_models import ModelKind, VersionStatus
from recommender.dashboard import charts
from recommender.dashboard.forms import (
    ConfirmVersionForm,
    EndExperimentForm,
    IntentOfferForm,
    ReportFilterForm,
    StartExperimentForm,
)
from recommender.measurement import assignment
from recommender.measurement import report as reports
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
        key = f"recommender:dashboard:metrics-chart:{newest}:{len(recent)}"
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


class VersionChangeView(TemplateView):
    """A change of the version serving a kind: GET shows what it does and asks for confirmation;
    only a POST with its box ticked makes the change (a POST without it changes nothing)."""

    template_name = "recommender/dashboard/confirm_version.html"

    def version(self, pk: int) -> Any:
        return get_object_or_404(ModelVersion, pk=pk)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.confirmation(self.version(pk), ConfirmVersionForm())

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self.version(pk)
        form = ConfirmVersionForm(request.POST)
        if not form.is_valid():
            return self.confirmation(version, form)
        self.change(request, version)
        return HttpResponseRedirect(_models_url())

    def confirmation(self, version: Any, form: ConfirmVersionForm) -> HttpResponse:
        live = ModelVersion.objects.filter(kind=version.kind, status=VersionStatus.LIVE).exclude(pk=version.pk).first()
        return self.render_to_response(
            self.get_context_data(version=version, live=live, form=form, **self.words(version))
        )

    def words(self, version: Any) -> dict[str, str]:
        raise NotImplementedError

    def change(self, request: HttpRequest, version: Any) -> None:
        raise NotImplementedError


class PromoteView(VersionChangeView):
    """Make a version live (a rollback when it is an earlier one)."""

    def words(self, version: Any) -> dict[str, str]:
        rollback = version.status == VersionStatus.RETIRED
        return {
            "action": "Roll back to this version" if rollback else "Promote this version",
            "kind_of_change": "promote",
        }

    def change(self, request: HttpRequest, version: Any) -> None:
        try:
            versions.promote(version, request.user, reason=f"promoted by {request.user.get_username()}")
        except versions.PromotionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{version} is live.")


class RetireView(VersionChangeView):
    """Take the live version out of service: its blocks use the next fallback."""

    def version(self, pk: int) -> Any:
        return get_object_or_404(ModelVersion, pk=pk, status=VersionStatus.LIVE)

    def words(self, version: Any) -> dict[str, str]:
        return {"action": "Retire this version", "kind_of_change": "retire"}

    def change(self, request: HttpRequest, version: Any) -> None:
        versions.retire(version, request.user)
        messages.success(request, f"{version} no longer serves; its blocks use the next fallback.")


class CreateIntentOfferView(View):
    """POST an intent range and a discount (:class:`IntentOfferForm`): a Site offer for visitors whose
    purchase intent is in the range, with items in the basket (:func:`recommender.offers.create_intent_offer`)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        from recommender.offers import create_intent_offer

        form = IntentOfferForm(request.POST)
        back = HttpResponseRedirect(reverse("segmentation_dashboard:segmentation-behaviour") + "#purchase-intent")
        if not form.is_valid():
            errors = "; ".join(str(e) for field in form.errors.values() for e in field)
            messages.error(request, f"No offer created: {errors}")
            return back
        data = form.cleaned_data
        offer = create_intent_offer(
            float(data["min_percent"]) / 100, float(data["max_percent"]) / 100, percent=data["percent"]
        )
        messages.success(request, f'Created the offer "{offer.name}". Review or edit it here.')
        return HttpResponseRedirect(reverse("dashboard:offer-detail", kwargs={"pk": offer.pk}))


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


# -- the report page: what recommendations earn -------------------------------------------------


DASH = "\u2013"  # an en dash: no figure


def _report_url(**params: Any) -> str:
    url = reverse("recommender_dashboard:recommender-report")
    return f"{url}?{urlencode(params)}" if params else url


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{100 * value:+.1f} %" if signed else f"{100 * value:.2f} %"


def _amount(value: float | None, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def _interval(low: float | None, high: float | None, fmt: Any) -> str:
    if low is None and high is None:
        return "no bounds yet"
    lo = fmt(low, signed=True) if low is not None else "no lower bound"
    hi = fmt(high, signed=True) if high is not None else "no upper bound"
    return f"{lo} to {hi}"


def _shown_comparison(c: dict[str, Any]) -> dict[str, Any]:
    """A comparison's figures as the page writes them (rates in %, amounts with two decimals)."""
    fmt = _pct if c["kind"] == "proportion" else _amount
    size = c["sample_size"]
    return {
        **c,
        "control_text": fmt(c["control"]),
        "treatment_text": fmt(c["treatment"]),
        "uplift_text": _pct(c["uplift"], signed=True),
        "uplift_interval": _interval(c["uplift_low"], c["uplift_high"], _pct),
        "diff_text": (_points(c["diff"]) if c["kind"] == "proportion" else _amount(c["diff"], signed=True)),
        "diff_interval": _interval(c["diff_low"], c["diff_high"], _points if c["kind"] == "proportion" else _amount),
        "p_text": DASH if c["p_value"] is None else f"{c['p_value']:.3f}",
        "size_text": (
            f"{size['control']:,} in control, {size['treatment']:,} in treatment ({size['total']:,} in all)"
            if size
            else c["sample_size_note"]
        ),
    }


def _points(value: float | None, signed: bool = True) -> str:
    return DASH if value is None else f"{100 * value:+.2f} points"


class ReportView(TemplateView):
    """What the blocks earn: per placement and arm, per arm with the A/B comparison, plots, the CSV
    export (``?format=csv``: the per-placement-and-arm table of the same filter), and the forms that
    start and end an experiment."""

    template_name = "recommender/dashboard/report.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        flt, filter_form = self._filter()
        data = reports.report(flt)
        if request.GET.get("format") == "csv":
            return _report_csv(data, flt)
        return self.render_to_response(self.get_context_data(flt=flt, data=data, filter_form=filter_form))

    def _filter(self) -> tuple[reports.ReportFilter, ReportFilterForm]:
        params = self.request.GET.copy()
        if "experiment" not in params:  # the page opens on the running experiment (none: all shoppers)
            running = assignment.running_experiment()
            params["experiment"] = str(running.pk) if running is not None else ""
        form = ReportFilterForm(params)
        if not form.is_valid():
            return reports.make_filter(), form
        d = form.cleaned_data
        uplift = float(d["uplift"]) / 100 if d["uplift"] is not None else None
        flt = reports.make_filter(d["start"], d["end"], d["experiment"], uplift)
        shown = ReportFilterForm(
            initial={
                "start": flt.start,
                "end": flt.end,
                "experiment": flt.experiment,
                "uplift": f"{100 * flt.uplift:g}",
            }
        )
        return flt, shown

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        if "data" not in ctx:
            ctx["flt"], ctx["filter_form"] = self._filter()
            ctx["data"] = reports.report(ctx["flt"])
        flt, data = ctx["flt"], ctx["data"]
        query = {
            "start": flt.start.isoformat(),
            "end": flt.end.isoformat(),
            "experiment": flt.experiment.pk if flt.experiment is not None else "",
            "uplift": f"{100 * flt.uplift:g}",
        }
        ctx.update(
            comparisons=[_shown_comparison(c) for c in data["comparisons"]],
            csv_url=_report_url(**query, format="csv"),
            api_url=reverse("recommender-api:report") + "?" + urlencode(query),
            running=(running := assignment.running_experiment()),
            running_share=f"{100 * running.control_share:g} %" if running is not None else "",
            experiment_share=f"{100 * data['experiment']['control_share']:g} %" if data["experiment"] else "",
            uplift_text=f"{100 * flt.uplift:+g} %",
            start_form=ctx.get("start_form") or StartExperimentForm(prefix="start"),
            end_form=ctx.get("end_form") or EndExperimentForm(prefix="end"),
        )
        ctx.update(self._charts(flt, data))
        return ctx

    def _charts(self, flt: reports.ReportFilter, data: dict[str, Any]) -> dict[str, Any]:
        key = f"{flt.key}:charts:{data['computed'].isoformat()}"
        svgs = cache.get(key)
        if svgs is None:
            titles = {row["placement"]: row["title"] for row in data["placements"]}
            revenue = next((c for c in data["comparisons"] if c["metric"] == "revenue per visitor"), None)
            svgs = {"chart_ctr": charts.ctr_per_day(data["days"], titles)}
            if data["experiment"] is not None:
                svgs["chart_revenue"] = charts.revenue_per_visitor(data["arms"], revenue, data["currency"])
            cache.set(key, svgs, reports.CACHE_SECONDS)
        return {k: mark_safe(v) for k, v in svgs.items()}


def _report_csv(data: dict[str, Any], flt: reports.ReportFilter) -> HttpResponse:
    import csv

    from django.utils.http import content_disposition_header

    response = HttpResponse(content_type="text/csv")
    writer = csv.writer(response)
    for row in reports.csv_rows(data):  # placement names come from the code, numbers are numbers
        writer.writerow([f"'{v}" if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in row])
    name = f"recommendation-report-{flt.start:%Y%m%d}-{flt.end:%Y%m%d}"
    if flt.experiment is not None:
        name += f"-experiment-{flt.experiment.pk}"
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=f"{name}.csv")
    return response


class StartExperimentView(ReportView):
    """Start a new experiment (ends the running one); only with its confirmation box ticked."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        form = StartExperimentForm(request.POST, prefix="start")
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(start_form=form))
        try:
            experiment = assignment.start_experiment(form.cleaned_data["name"], form.cleaned_data["control_share"])
        except ValueError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(_report_url())
        messages.success(
            request,
            f"Experiment “{experiment.name}” started: {experiment.control_share:.0%} of shoppers now see best "
            "sellers in the blocks, the others personalised recommendations.",
        )
        return HttpResponseRedirect(_report_url())


class EndExperimentView(ReportView):
    """End the running experiment; only with its confirmation box ticked."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        form = EndExperimentForm(request.POST, prefix="end")
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(end_form=form))
        experiment = assignment.end_experiment()
        if experiment is None:
            messages.info(request, "No experiment is running.")
            return HttpResponseRedirect(_report_url())
        messages.success(
            request, f"Experiment “{experiment.name}” ended: every shopper sees personalised recommendations again."
        )
        return HttpResponseRedirect(_report_url(experiment=experiment.pk))
