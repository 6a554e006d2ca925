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

Privacy: segment names are internal. A segment offer is listed (Oscar's ``/offers/`` pages,
the ``segment_promotions`` tag) only to a signed-in member of one of its segments, under that
target's ``shopper_name`` and ``shopper_description`` (:func:`for_shopper`); everyone else
does not see it at all (the offer's detail page is a 404 for them). Oscar itself shows the
offer's own ``name`` in the basket and on the order, so :func:`create_segment_offer` gives the
offer a shopper-facing name and description too, never the segment's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.html import escape
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from oscar.apps.offer.custom import create_condition
from oscar.core.loading import get_model

from segmentation.services.lookups import current_segment

Benefit = get_model("offer", "Benefit")
Condition = get_model("offer", "Condition")
ConditionalOffer = get_model("offer", "ConditionalOffer")
Range = get_model("offer", "Range")
# segmentation.models imports this module after defining its models (to register SegmentCondition),
# so these lookups find them registered; this module is not imported before segmentation.models
SegmentTarget = get_model("segmentation", "SegmentTarget")


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


def default_shopper_texts(percent: Decimal) -> tuple[str, str]:
    """The shopper-facing name and description of a new segment offer (no segment name in them)."""
    text = f"{percent.normalize():f}"
    return f"{text}% off, just for you", f"A thank-you for shopping with us: {text}% off."


@transaction.atomic
def create_segment_offer(
    segments: Iterable[str],
    *,
    percent: Decimal | int | str = 10,
    name: str | None = None,
    offer_range: Any = None,
    shopper_name: str | None = None,
    shopper_description: str | None = None,
) -> Any:
    """Create a Site offer of ``percent``% off for customers in ``segments`` and return it.

    Creates (or reuses) an all-products Range, a percentage Benefit, a
    :class:`SegmentCondition` with its :class:`SegmentTarget` rows and the
    ``ConditionalOffer``. Members see ``shopper_name`` and ``shopper_description``
    (defaults: :func:`default_shopper_texts`); the offer's own name (``name``, default the
    shopper name, made unique) is what Oscar shows in the basket and on the order, so it must
    not name the segment either. Staff see the segments in the condition ("Customer is in
    segment ..."). The offer is open at once; staff can edit it in the Oscar dashboard's
    offer pages like any other.
    """
    names = sorted({s.strip() for s in segments if s and s.strip()})
    if not names:
        raise ValueError("choose at least one segment")
    percent = Decimal(str(percent))
    if not Decimal(0) < percent <= Decimal(100):
        raise ValueError("percent must be within (0, 100]")
    default_name, default_description = default_shopper_texts(percent)
    shopper_name = (shopper_name or default_name).strip()[:128]
    shopper_description = (shopper_description or default_description).strip()[:500]
    if offer_range is None:
        offer_range, _created = Range.objects.get_or_create(
            name="All products (segment offers)", defaults={"includes_all_products": True}
        )
    condition = create_condition(SegmentCondition, range=offer_range)
    SegmentTarget.objects.bulk_create(
        [
            SegmentTarget(
                condition=condition, segment=n, shopper_name=shopper_name, shopper_description=shopper_description
            )
            for n in names
        ]
    )
    benefit = Benefit.objects.create(range=offer_range, type=Benefit.PERCENTAGE, value=percent)
    base = name or shopper_name
    offer_name, i = base[:120], 2
    while ConditionalOffer.objects.filter(name=offer_name).exists():
        offer_name, i = f"{base[:115]} ({i})", i + 1
    return ConditionalOffer.objects.create(
        name=offer_name,
        description=shopper_description,
        offer_type=ConditionalOffer.SITE,
        condition=condition,
        benefit=benefit,
        exclusive=True,
    )


def offers_for_segment(segment: str | None) -> list[Any]:
    """Open, currently available Site offers whose segment condition targets ``segment``, each
    under the shopper-facing name and description of that target (see :func:`for_shopper`)."""
    if not segment:
        return []
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
    return _present([o for o in qs if o.is_available()], segment)


def is_segment_offer(offer: Any) -> bool:
    return getattr(offer.condition, "proxy_class", None) == segment_condition_path()


def for_shopper(offers: Iterable[Any], user: Any) -> list[Any]:
    """What a shopper may see of ``offers``: other offers as they are; segment offers only when
    ``user`` is a signed-in member of one of their segments, renamed for that member.

    The renaming changes the in-memory instances only (``name`` and ``description`` become the
    target's shopper texts); they must not be saved.
    """
    offers = list(offers)
    segment = None
    if any(is_segment_offer(o) for o in offers) and user is not None and getattr(user, "is_authenticated", False):
        segment = current_segment(user)
    visible = {id(o) for o in _present([o for o in offers if is_segment_offer(o)], segment)}
    return [o for o in offers if not is_segment_offer(o) or id(o) in visible]


def _present(offers: list[Any], segment: str | None) -> list[Any]:
    """The segment offers targeting ``segment``, renamed with that target's shopper texts."""
    if not offers or not segment:
        return []
    targets = {
        t.condition_id: t
        for t in SegmentTarget.objects.filter(condition_id__in={o.condition_id for o in offers}, segment=segment)
    }
    shown = []
    for offer in offers:
        target = targets.get(offer.condition_id)
        if target is None:
            continue
        offer.name = target.shopper_name or gettext("A special offer for you")
        offer.description = escape(target.shopper_description)  # plain text (Oscar renders it |safe)
        shown.append(offer)
    return shown
