"""Oscar's ``/offers/`` pages without other people's intent offers (see :mod:`recommender.offers`).

:func:`install` (called from ``RecommenderConfig.ready``) wraps the offer app's ``list_view`` and
``detail_view`` (Oscar's, or a fork's) in the mixins below before its URLs are built, so a shop
needs no fork and no URL of its own.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from oscar.core.loading import get_model

from recommender.offers import hidden_from


class IntentOfferListMixin:
    """The offer list with intent offers only for the visitors they apply to now."""

    request: Any

    def get_queryset(self) -> Any:
        offers = super().get_queryset()  # type: ignore[misc]
        return offers.exclude(pk__in=hidden_from(offers, self.request))


class IntentOfferDetailMixin:
    """An intent offer's page is a 404 for a visitor it does not apply to."""

    request: Any
    offer: Any

    def get_queryset(self) -> Any:
        ConditionalOffer = get_model("offer", "ConditionalOffer")
        if hidden_from(ConditionalOffer.objects.filter(pk=self.offer.pk), self.request):
            raise Http404("No such offer")
        return super().get_queryset()  # type: ignore[misc]


def install() -> None:
    """Wrap the offer app's views in the mixins (once; a no-op without Oscar's offer app)."""
    from django.apps import apps

    try:
        config = apps.get_app_config("offer")
    except LookupError:
        return
    for attr, mixin in (("list_view", IntentOfferListMixin), ("detail_view", IntentOfferDetailMixin)):
        view = getattr(config, attr, None)
        if view is not None and not issubclass(view, mixin):
            setattr(config, attr, type(f"Intent{view.__name__}", (mixin, view), {"__module__": __name__}))
