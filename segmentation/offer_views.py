"""Oscar's ``/offers/`` pages without segment names: segment offers are listed only to members.

:func:`install` (called from ``SegmentationConfig.ready``, which runs after Oscar's offer app
is ready) wraps the offer app's ``list_view`` and ``detail_view`` (Oscar's, or a fork's) in
the mixins below before its URLs are built, so a shop needs no fork and no URL of its own.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404

from segmentation.offers import for_shopper


class SegmentOfferListMixin:
    """The offer list without other people's segment offers; members see theirs renamed for them."""

    request: Any

    def get_queryset(self) -> Any:
        return for_shopper(super().get_queryset().select_related("condition"), self.request.user)  # type: ignore[misc]


class SegmentOfferDetailMixin:
    """A segment offer's page is a 404 for anyone outside its segments."""

    request: Any
    offer: Any

    def get_queryset(self) -> Any:
        if not for_shopper([self.offer], self.request.user):
            raise Http404("No such offer")
        return super().get_queryset()  # type: ignore[misc]


def install() -> None:
    """Wrap the offer app's views in the mixins (once; a no-op without Oscar's offer app)."""
    from django.apps import apps

    try:
        config = apps.get_app_config("offer")
    except LookupError:
        return
    for attr, mixin in (("list_view", SegmentOfferListMixin), ("detail_view", SegmentOfferDetailMixin)):
        view = getattr(config, attr, None)
        if view is not None and not issubclass(view, mixin):
            setattr(config, attr, type(f"Segment{view.__name__}", (mixin, view), {"__module__": __name__}))
