"""Where blocks go: each placement names its title and its fallback ladder of rungs.

A shop adds or changes placements by forking this module (Oscar's ``get_class``): subclass
:class:`Placements` and extend :attr:`Placements.placements` (see the README, "Change what a
block shows").
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Placement:
    """A block: its name (the template tag's and the API's argument), its title, its rungs in
    order (the names of :class:`recommender.serving.rungs.Rungs`)."""

    name: str
    title: str
    rungs: tuple[str, ...]
    #: already-bought products are left out (not in "buy it again" or "recently viewed")
    exclude_purchased: bool = True
    #: the products in the basket are anchors beside the page's product ("bought together");
    #: otherwise the basket anchors a block only on a page without a product
    basket_anchors: bool = False
    #: the rungs of the experiment's control arm (same block, non-personalised products); None: the
    #: block is the same in both arms (a visitor's own history is not what an experiment tests)
    control_rungs: tuple[str, ...] | None = ("best_sellers",)


class UnknownPlacement(ValueError):
    """A template tag or an API call named a placement that is not defined."""


class Placements:
    """The shop's placements, by name."""

    placements: tuple[Placement, ...] = (
        Placement(
            "for_you",
            _("Recommended for you"),
            ("model", "item_to_item", "trending_segment", "trending", "best_sellers"),
        ),
        Placement(
            "also_bought",
            _("Customers who bought this also bought"),
            ("curated", "also_bought", "also_viewed", "trending", "best_sellers"),
        ),
        Placement(
            "also_viewed",
            _("Customers who viewed this also viewed"),
            ("also_viewed", "also_bought", "trending", "best_sellers"),
        ),
        Placement(
            "bought_together",
            _("Frequently bought together"),
            ("bought_together", "also_bought", "trending", "best_sellers"),
            basket_anchors=True,
        ),
        Placement("trending", _("Trending now"), ("trending_segment", "trending", "best_sellers")),
        Placement("buy_again", _("Buy it again"), ("buy_again",), exclude_purchased=False, control_rungs=None),
        Placement(
            "recently_viewed", _("Recently viewed"), ("recently_viewed",), exclude_purchased=False, control_rungs=None
        ),
    )

    def __init__(self) -> None:
        self.by_name = {p.name: p for p in self.placements}

    def names(self) -> list[str]:
        return list(self.by_name)

    def get(self, name: str) -> Placement:
        try:
            return self.by_name[name]
        except KeyError:
            raise UnknownPlacement(f"unknown placement {name!r}; choose from {', '.join(self.by_name)}") from None
