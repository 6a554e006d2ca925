from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class RecommendationSerializer(serializers.Serializer):
    """One recommended product, priced and stocked live for the requesting visitor."""

    id = serializers.IntegerField(source="product.pk")
    title = serializers.CharField(source="product.get_title")
    url = serializers.SerializerMethodField(help_text="product page; carries the signed attribution (?rec=)")
    price = serializers.SerializerMethodField()
    currency = serializers.SerializerMethodField()
    availability = serializers.SerializerMethodField()
    image = serializers.SerializerMethodField()
    reason = serializers.CharField(help_text="why it is shown, for the shopper")
    source = serializers.CharField(source="rung", help_text="the fallback rung it came from")
    position = serializers.IntegerField()
    model_version = serializers.IntegerField(source="version_id", allow_null=True)
    attribution = serializers.CharField(source="token", help_text="signed: placement, version, position, visitor")

    def _info(self, item: Any) -> Any:
        strategy = self.context["strategy"]
        product = item.product
        return strategy.fetch_for_parent(product) if product.is_parent else strategy.fetch_for_product(product)

    def get_url(self, item: Any) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(item.url) if request is not None else item.url

    @extend_schema_field(serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True))
    def get_price(self, item: Any) -> str | None:
        price = self._info(item).price
        if not price.exists:
            return None
        value = price.incl_tax if price.is_tax_known else price.excl_tax
        return f"{value:.2f}"

    def get_currency(self, item: Any) -> str:
        return str(self._info(item).price.currency or "")

    def get_availability(self, item: Any) -> str:
        return str(self._info(item).availability.short_message)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_image(self, item: Any) -> str | None:
        image = item.product.primary_image()
        original = getattr(image, "original", None)
        if not original:
            return None
        request = self.context.get("request")
        try:
            url = original.url
        except ValueError:
            return None
        return request.build_absolute_uri(url) if request is not None else url


class BlockSerializer(serializers.Serializer):
    placement = serializers.CharField()
    title = serializers.CharField()
    results = RecommendationSerializer(many=True, source="items")
