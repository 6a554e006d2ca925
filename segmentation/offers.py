"""Segment-targeted promotions as ordinary Oscar offers (no fork of Oscar's offer app).

Design
------
``SegmentCondition`` is a *proxy* of ``offer.Condition`` (``Condition.proxy_class``
points at it, which is how Oscar's :func:`oscar.apps.offer.custom.create_condition`
registers custom conditions). The segments it targets are rows of
:class:`segmentation.models.SegmentTarget` (``condition`` FK + ``segment`` name), not
an encoding in ``value`` or ``range``: a condition may target several segments and the
names stay readable in Django admin. The condition's ``range`` says which products the
discount may touch (an all-products range by default), so Oscar benefits work as usual.

``is_satisfied(offer, basket)`` is true when the basket's owner is a signed-in customer
whose *current* segment (``segmentation.services.current_segment``) is one of the targets
and the basket has at least one line in the range not yet consumed by this offer. The
condition itself requires no items, so ``consume_items`` consumes nothing (the benefit
consumes what it discounts); once every line is discounted the condition is no longer
satisfied and Oscar stops re-applying the offer. Guests and anonymous visitors never
satisfy it (their segment is not known at basket time).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from oscar.core.loading import get_model

Condition = get_model("offer", "Condition")


class SegmentCondition(Condition):
    class Meta:
        app_label = "segmentation"
        proxy = True
        verbose_name = _("Customer segment condition")
        verbose_name_plural = _("Customer segment conditions")

    # -- what the targets are
    def target_segments(self) -> list[str]:
        if not self.pk:
            return []
        cached = getattr(self, "_segment_names", None)
        if cached is None:
            from segmentation.models import SegmentTarget

            cached = sorted(SegmentTarget.objects.filter(condition_id=self.pk).values_list("segment", flat=True))
            self._segment_names = cached
        return cached

    @property
    def name(self) -> str:
        names = self.target_segments()
        return "Customer is in segment " + (" or ".join(f"'{n}'" for n in names) if names else "(none chosen)")

    @property
    def description(self) -> str:
        return self.name

    # -- Oscar's condition protocol
    def can_apply_condition(self, line: Any) -> bool:
        if not line.stockrecord_id:
            return False
        product = line.product
        if self.range_id is None:
            return bool(product.is_discountable)
        return self.range.contains_product(product) and product.is_discountable

    def owner_in_segment(self, basket: Any) -> bool:
        owner = getattr(basket, "owner", None)
        if owner is None or not getattr(owner, "is_authenticated", False):
            return False
        from segmentation.services import current_segment

        return current_segment(owner) in set(self.target_segments())

    def is_satisfied(self, offer: Any, basket: Any) -> bool:
        if not self.owner_in_segment(basket):
            return False
        return any(
            self.can_apply_condition(line) and line.quantity_without_offer_discount(offer) > 0
            for line in basket.all_lines()
        )

    def is_partially_satisfied(self, offer: Any, basket: Any) -> bool:
        return False  # nothing to upsell: membership is not something one can buy

    def get_upsell_message(self, offer: Any, basket: Any) -> None:
        return None

    def consume_items(self, offer: Any, basket: Any, affected_lines: Any) -> None:
        return None  # the condition needs no items; the benefit consumes what it discounts


def segment_condition_path() -> str:
    return f"{SegmentCondition.__module__}.{SegmentCondition.__name__}"


@transaction.atomic
def create_segment_offer(
    segments: Iterable[str],
    *,
    percent: Decimal | int | str = 10,
    name: str | None = None,
    offer_range: Any = None,
) -> Any:
    """Create a Site offer "``percent``% off for customers in ``segments``" and return it.

    Creates (or reuses) an all-products Range, a percentage Benefit, a
    :class:`SegmentCondition` with its :class:`SegmentTarget` rows and the
    ``ConditionalOffer``. The offer is open at once; staff can edit it in the
    Oscar dashboard's offer pages like any other.
    """
    from oscar.apps.offer.custom import create_condition

    from segmentation.models import SegmentTarget

    Benefit = get_model("offer", "Benefit")
    ConditionalOffer = get_model("offer", "ConditionalOffer")
    Range = get_model("offer", "Range")

    names = sorted({s.strip() for s in segments if s and s.strip()})
    if not names:
        raise ValueError("choose at least one segment")
    percent = Decimal(str(percent))
    if not Decimal(0) < percent <= Decimal(100):
        raise ValueError("percent must be within (0, 100]")
    if offer_range is None:
        offer_range, _created = Range.objects.get_or_create(
            name="All products (segment offers)", defaults={"includes_all_products": True}
        )
    condition = create_condition(SegmentCondition, range=offer_range)
    SegmentTarget.objects.bulk_create([SegmentTarget(condition=condition, segment=n) for n in names])
    benefit = Benefit.objects.create(range=offer_range, type=Benefit.PERCENTAGE, value=percent)
    base = name or f"{percent.normalize():f}% off for {', '.join(names)}"
    offer_name, i = base[:120], 2
    while ConditionalOffer.objects.filter(name=offer_name).exists():
        offer_name, i = f"{base[:115]} ({i})", i + 1
    return ConditionalOffer.objects.create(
        name=offer_name,
        description=f"A thank-you for our {', '.join(names)} customers: {percent.normalize():f}% off.",
        offer_type=ConditionalOffer.SITE,
        condition=condition,
        benefit=benefit,
        exclusive=True,
    )


def offers_for_segment(segment: str | None) -> list[Any]:
    """Open, currently available Site offers whose segment condition targets ``segment``."""
    if not segment:
        return []
    ConditionalOffer = get_model("offer", "ConditionalOffer")
    qs = (
        ConditionalOffer.active.filter(
            offer_type=ConditionalOffer.SITE,
            condition__proxy_class=segment_condition_path(),
            condition__segment_targets__segment=segment,
        )
        .select_related("condition", "benefit")
        .distinct()
        .order_by("-priority", "pk")
    )
    return [o for o in qs if o.is_available()]
