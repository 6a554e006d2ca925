"""Recommendations for the current visitor (and a staff preview for any customer).

``GET /api/recommendations/<placement>/?product=ID&limit=N``: the same service as the template
tags, for the visitor of this request (session user, else the visitor cookie); no parameter
names another person. ``GET /api/recommendations/preview/<user_id>/<placement>/`` is staff only.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import get_object_or_404
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


def _block(request: Request, placement: str, visitor: Visitor, basket_ids: set[int] | None = None) -> Response:
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
    strategy = service.strategy_for(django_request, visitor)
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
        return _block(request, placement, visitor_of(request._request))


class PreviewView(APIView):
    """Staff only: what a customer would see (their history, their segment, their open basket)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(parameters=PARAMETERS, responses=BlockSerializer, operation_id="recommendations_preview")
    def get(self, request: Request, user_id: int, placement: str) -> Any:
        user = get_object_or_404(get_user_model(), pk=user_id)
        return _block(request, placement, Visitor(user, ""), open_basket_product_ids(user))
