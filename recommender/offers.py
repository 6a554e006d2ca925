"""Offers for the hesitating shopper: "purchase intent between X and Y, with items in the basket".

``IntentCondition`` is a *proxy* of ``offer.Condition`` (how Oscar registers custom conditions,
like :class:`segmentation.offers.SegmentCondition`); its range of intent lives in an
:class:`~recommender.models.IntentTarget` row. It is satisfied when the visitor of the request
that applies the offers (Oscar's basket middleware and checkout give the basket the request's
pricing strategy, which holds the request) has a purchase intent in the range
(:func:`recommender.serving.intent.visitor_intent`: none for untracked visitors) and the basket
has a line in the condition's range not yet discounted by this offer. The condition consumes
nothing (the benefit consumes what it discounts), so once every line is discounted Oscar stops
applying it again.

Privacy: an intent offer is listed on Oscar's ``/offers/`` pages only to a visitor it applies to
now; its detail page is a 404 for everyone else (:mod:`recommender.offer_views`). Its own name and
description, which Oscar shows in the basket, on the order and on those pages, are the
shopper-facing ones (they name neither intent nor hesitation).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from oscar.apps.offer.custom import create_condition
from oscar.core.loading import get_model

Benefit = get_model("offer", "Benefit")
Condition = get_model("offer", "Condition")
ConditionalOffer = get_model("offer", "ConditionalOffer")
Range = get_model("offer", "Range")
# recommender.models imports this module after defining its models
IntentTarget = get_model("recommender", "IntentTarget")


class IntentCondition(Condition):
    class Meta:
        app_label = "recommender"
        proxy = True
        verbose_name = _("Purchase intent condition")
        verbose_name_plural = _("Purchase intent conditions")

    def target(self) -> Any | None:
        if not self.pk:
            return None
        if not hasattr(self, "_intent_target"):
            self._intent_target = IntentTarget.objects.filter(condition_id=self.pk).first()
        return self._intent_target

    @property
    def name(self) -> str:
        t = self.target()
        if t is None:
            return "Purchase intent (no range chosen)"
        return f"Purchase intent from {t.min_intent:.0%} to below {t.max_intent:.0%}, with items in the basket"

    @property
    def description(self) -> str:
        return self.name

    def can_apply_condition(self, line: Any) -> bool:
        if not line.stockrecord_id:
            return False
        product = line.product
        if self.range_id is None:
            return bool(product.is_discountable)
        return self.range.contains_product(product) and product.is_discountable

    def applies_to_request(self, request: Any) -> bool:
        """Whether the request's visitor has a purchase intent in this condition's range."""
        from recommender.serving.intent import visitor_intent

        target = self.target()
        found = visitor_intent(request) if target is not None else None
        return found is not None and target.contains(found.score)

    def is_satisfied(self, offer: Any, basket: Any) -> bool:
        request = getattr(getattr(basket, "strategy", None), "request", None)
        if request is None or not self.applies_to_request(request):
            return False
        return any(
            self.can_apply_condition(line) and line.quantity_without_offer_discount(offer) > 0
            for line in basket.all_lines()
        )

    def is_partially_satisfied(self, offer: Any, basket: Any) -> bool:
        return False  # nothing to upsell: intent is not something one can buy

    def get_upsell_message(self, offer: Any, basket: Any) -> None:
        return None

    def consume_items(self, offer: Any, basket: Any, affected_lines: Any) -> None:
        return None  # the condition needs no items; the benefit consumes what it discounts


def intent_condition_path() -> str:
    return f"{IntentCondition.__module__}.{IntentCondition.__name__}"


def is_intent_offer(offer: Any) -> bool:
    return getattr(offer.condition, "proxy_class", None) == intent_condition_path()


@transaction.atomic
def create_intent_offer(
    min_intent: float,
    max_intent: float,
    *,
    percent: Decimal | int | str = 5,
    shopper_name: str | None = None,
    shopper_description: str | None = None,
    offer_range: Any = None,
) -> Any:
    """Create a Site offer of ``percent``% off for visitors whose purchase intent is in
    ``[min_intent, max_intent)`` with items in the basket, and return it. Shoppers see
    ``shopper_name`` and ``shopper_description`` (defaults name neither intent nor hesitation);
    staff see the range in the condition. Open at once; editable in Oscar's offer pages."""
    low, high = float(min_intent), float(max_intent)
    if not 0.0 <= low < high <= 1.0:
        raise ValueError("the intent range must satisfy 0 <= from < below <= 1")
    percent = Decimal(str(percent))
    if not Decimal(0) < percent <= Decimal(100):
        raise ValueError("percent must be within (0, 100]")
    text = f"{percent.normalize():f}"
    shopper_name = (shopper_name or f"{text}% off your basket today").strip()[:128]
    shopper_description = (shopper_description or f"{text}% off the items in your basket.").strip()[:500]
    if offer_range is None:
        offer_range, _created = Range.objects.get_or_create(
            name="All products (intent offers)", defaults={"includes_all_products": True}
        )
    condition = create_condition(IntentCondition, range=offer_range)
    IntentTarget.objects.create(condition=condition, min_intent=low, max_intent=high)
    benefit = Benefit.objects.create(range=offer_range, type=Benefit.PERCENTAGE, value=percent)
    offer_name, i = shopper_name[:120], 2
    while ConditionalOffer.objects.filter(name=offer_name).exists():
        offer_name, i = f"{shopper_name[:115]} ({i})", i + 1
    return ConditionalOffer.objects.create(
        name=offer_name,
        description=shopper_description,
        offer_type=ConditionalOffer.SITE,
        condition=condition,
        benefit=benefit,
        exclusive=True,
    )


def hidden_from(offers: Any, request: Any) -> list[int]:
    """The ids of the intent offers among ``offers`` (a queryset) that do not apply to the request's
    visitor now: what a shopper must not see listed."""
    hidden = []
    for offer in offers.filter(condition__proxy_class=intent_condition_path()).select_related("condition"):
        condition = offer.condition.proxy()
        if not (isinstance(condition, IntentCondition) and condition.applies_to_request(request)):
            hidden.append(offer.pk)
    return hidden
