"""Recommendations for the current visitor (and a staff preview for any customer).

``GET /api/recommendations/<placement>/?product=ID&limit=N``: the same service as the template
tags, for the visitor of this request (session user, else the visitor cookie); no parameter
names another person. ``GET /api/recommendations/intent/`` gives the visitor's purchase-intent
band. ``GET /api/recommendations/preview/<user_id>/<placement>/`` is staff only,
and so is ``GET /api/recommendations/report/?start=&end=&experiment=&uplift=`` (what the blocks earn).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control
from django.utils.crypto import salted_hmac
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from oscar.core.loading import get_model
from rest_framework import permissions, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from personalization_core.fields import StrictIntegerField
from recommender.api.report_serializers import Report as ReportOut
from recommender.api.report_serializers import ReportQuery
from recommender.api.serializers import BlockSerializer
from recommender.serving import service
from recommender.serving.blocks import Visitor, visitor_of
from recommender.serving.history import open_basket_product_ids

PARAMETERS = [
    OpenApiParameter(
        "placement", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(service.placements()), description="which block"
    ),
    OpenApiParameter("product", OpenApiTypes.INT, description="the product on the page (product placements)"),
    OpenApiParameter("limit", OpenApiTypes.INT, description="how many products (1-50, default BLOCK_LIMIT)"),
]


class _HashedThrottle(SimpleRateThrottle):
    """Counts calls under a salted HMAC of who calls, so the cache never holds a raw IP address or
    visitor id; a rate missing from ``DEFAULT_THROTTLE_RATES`` takes the class's ``default_rate``.

    The count is one cache counter per caller and window of the rate's period, raised with the
    cache's atomic ``incr`` (Redis ``INCR``): DRF's own history list is read and written back, so
    callers arriving together overwrite each other's calls and pass the limit. A window is fixed
    (it starts on a multiple of the period), so a caller may make up to twice the rate across the
    boundary of two windows, never more.

    The address is the one Django sees (``REMOTE_ADDR``): ``X-Forwarded-For`` counts only when the
    shop declares its proxies with DRF's ``NUM_PROXIES`` (a client can write any address there).
    While the cache does not answer (Redis down or hung), calls are let through: the counts are
    unknown, and the shop's pages and API stay up rather than refusing everyone."""

    default_rate = "120/min"

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        window = int(self.timer() // self.duration)
        self.window_ends = (window + 1) * self.duration
        counter = f"{self.key}:{window}"
        self.cache.add(counter, 0, self.duration + 1)
        try:
            calls = self.cache.incr(counter)
        except ValueError:  # the counter is gone: the cache does not answer (or evicted it just now)
            return True
        return calls is None or calls <= self.num_requests  # None: a cache that ignores its errors

    def wait(self) -> float:
        return max(0.0, self.window_ends - self.timer())

    def get_rate(self) -> str | None:
        try:
            return super().get_rate()
        except ImproperlyConfigured:
            return self.default_rate

    def get_ident(self, request: Request) -> str:
        if api_settings.NUM_PROXIES is None:
            return request.META.get("REMOTE_ADDR", "")
        return super().get_ident(request)

    def hashed_key(self, ident: str) -> str:
        digest = salted_hmac("recommender.throttle", ident).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}


class RecommendationThrottle(_HashedThrottle):
    """Per visitor: the user, else the signed visitor cookie, else the address
    (``DEFAULT_THROTTLE_RATES["recommendations"]``, default 120/min)."""

    scope = "recommendations"

    def get_cache_key(self, request: Request, view: Any) -> str:
        from recommender.tracking import visitor_id

        if request.user and request.user.is_authenticated:
            return self.hashed_key(f"user:{request.user.pk}")
        vid = visitor_id(request._request, create=False)
        return self.hashed_key(f"visitor:{vid}" if vid else f"address:{self.get_ident(request)}")


class RecommendationAddressThrottle(_HashedThrottle):
    """Per address, whoever calls from it (``DEFAULT_THROTTLE_RATES["recommendations_address"]``,
    default 600/min: shoppers behind one office or mobile-carrier address share it); a client that
    drops its cookie to get a fresh visitor count still meets this one."""

    scope = "recommendations_address"
    default_rate = "600/min"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.hashed_key(f"address:{self.get_ident(request)}")


class _Query(serializers.Serializer):
    product = StrictIntegerField(required=False)
    limit = StrictIntegerField(required=False, max_value=50)


def _block(
    request: Request, placement: str, visitor: Visitor | None = None, basket_ids: set[int] | None = None
) -> Response:
    """The block for the request's own visitor (``visitor`` None: measured like a page's blocks), or
    for another person's (a staff preview: not measured)."""
    placements = service.placements()
    if placement not in placements:
        raise NotFound(f"unknown placement; choose from {', '.join(placements)}")
    query = _Query(data=request.query_params)
    if not query.is_valid():
        raise ValidationError(query.errors)
    product = None
    if "product" in query.validated_data:
        Product = get_model("catalogue", "Product")
        product = Product.objects.filter(pk=query.validated_data["product"], is_public=True).first()
        if product is None:
            raise NotFound("no such product")
    django_request = request._request
    strategy = service.strategy_for(django_request, visitor or visitor_of(django_request))
    limit = query.validated_data.get("limit")
    block = service.recommend(
        django_request,
        placement,
        product=product,
        limit=limit,
        visitor=visitor,
        strategy=strategy,
        basket_ids=basket_ids,
    )
    return Response(BlockSerializer(block, context={"request": request, "strategy": strategy}).data)


class RecommendationsView(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [RecommendationAddressThrottle, RecommendationThrottle]

    @extend_schema(parameters=PARAMETERS, responses=BlockSerializer, operation_id="recommendations_for_visitor")
    def get(self, request: Request, placement: str) -> Response:
        return _block(request, placement)


class _IntentOut(serializers.Serializer):
    band = serializers.ChoiceField(
        choices=["low", "medium", "high"],
        allow_null=True,
        help_text="the visitor's purchase-intent band; null without a live model, history or tracking consent",
    )


class IntentView(APIView):
    """The purchase-intent band of this request's own visitor (never the probability, never another
    person's): what a front end needs to adapt the page to a hesitating shopper."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [RecommendationAddressThrottle, RecommendationThrottle]

    @extend_schema(responses=_IntentOut, operation_id="purchase_intent_of_visitor")
    def get(self, request: Request) -> Response:
        from recommender.serving.intent import visitor_intent

        found = visitor_intent(request._request)
        response = Response({"band": found.band if found is not None else None})
        patch_cache_control(response, private=True, no_store=True)
        return response


class PreviewView(APIView):
    """Staff only: what a customer would see (their history, their segment, their open basket)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(parameters=PARAMETERS, responses=BlockSerializer, operation_id="recommendations_preview")
    def get(self, request: Request, user_id: int, placement: str) -> Any:
        user = get_object_or_404(get_user_model(), pk=user_id)
        return _block(request, placement, Visitor(user, ""), open_basket_product_ids(user))


class _Click(serializers.Serializer):
    attribution = serializers.CharField(max_length=1000, help_text="a result's `attribution` token")
    product = StrictIntegerField(help_text="the product clicked (the result's `id`)")


class ClickView(APIView):
    """A headless front end reports a click on a recommended product (a product page of the shop
    reached through a result's `url` records it by itself). The token is signed for the visitor it
    was made for: another visitor's, a forged or an expired one is ignored."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [RecommendationAddressThrottle, RecommendationThrottle]

    @extend_schema(request=_Click, responses={204: None}, operation_id="recommendation_click")
    def post(self, request: Request) -> Response:
        from recommender.measurement.capture import record_click

        body = _Click(data=request.data)
        if not body.is_valid():
            raise ValidationError(body.errors)
        Product = get_model("catalogue", "Product")
        product = Product.objects.filter(pk=body.validated_data["product"]).first()
        if product is None:
            raise NotFound("no such product")
        django_request = request._request
        record_click(django_request, product, body.validated_data["attribution"], visitor_of(django_request))
        return Response(status=204)


class ReportView(APIView):
    """Staff only: what the recommendation blocks earn, the figures of the dashboard's report page
    (per placement and arm, per day, per arm with treatment against control)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(parameters=[ReportQuery], responses=ReportOut, operation_id="recommendations_report")
    def get(self, request: Request) -> Response:
        from recommender.measurement import report

        query = ReportQuery(data=request.query_params)
        if not query.is_valid():
            raise ValidationError(query.errors)
        q = query.validated_data
        experiment: Any = report.RUNNING
        if "experiment" in q:
            raw = q["experiment"].strip().lower()
            if raw in ("", "none"):
                experiment = None
            elif raw.isascii() and raw.isdigit():
                Experiment = get_model("recommender", "Experiment")
                experiment = Experiment.objects.filter(pk=int(raw)).first()
                if experiment is None:
                    raise NotFound("no such experiment")
            else:
                raise ValidationError({"experiment": ["an experiment's id, empty or `none`"]})
        uplift = q["uplift"] / 100 if "uplift" in q else None
        try:
            flt = report.make_filter(q.get("start"), q.get("end"), experiment, uplift)
        except ValueError as exc:
            raise ValidationError({"end": [str(exc)]}) from exc
        return Response(ReportOut(report.report(flt)).data)
