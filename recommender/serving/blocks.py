"""What serving passes around: who asks (:class:`Visitor`), what one request knows
(:class:`Context`), what a rung proposes (:class:`Candidate`) and what a page shows
(:class:`Block` of :class:`Item`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

#: one history row: (product id, unix time, event type of :mod:`recommender.ml.data`)
HistoryRow = tuple[int, float, int]


@dataclass
class Visitor:
    """Who is asking: a user, or an anonymous browser's visitor id (or nobody known yet)."""

    user: Any | None
    visitor_id: str

    @property
    def key(self) -> str:
        """``u<user id>``, ``v<visitor id>``, or ``""`` for nobody known yet."""
        if self.user is not None:
            return f"u{self.user.pk}"
        return f"v{self.visitor_id}" if self.visitor_id else ""

    @property
    def digest(self) -> str:
        """A short hash of :attr:`key`: what a click token is bound to."""
        return hashlib.blake2s(self.key.encode(), digest_size=6).hexdigest()


def visitor_of(request: Any) -> Visitor:
    """The signed-in user, else the browser's visitor id (never creating one)."""
    from recommender.tracking import visitor_id

    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return Visitor(user, "")
    return Visitor(None, visitor_id(request, create=False))


@dataclass
class Candidate:
    """A product a rung proposes, with the rung's name, the reason shown and the model version."""

    product_id: int
    rung: str
    reason: str
    version_id: int | None = None


@dataclass
class Context:
    """What one request knows: the visitor, their history, the page's product, the basket."""

    visitor: Visitor
    history: list[HistoryRow]  # oldest first
    product_id: int | None
    basket_ids: set[int]
    purchased_ids: set[int]
    segment: str | None
    titles: dict[int, str] = field(default_factory=dict)

    @property
    def anchors(self) -> list[int]:
        """The page's product, then up to five products of the basket (where the context holds them)."""
        first = [self.product_id] if self.product_id else []
        return first + sorted(self.basket_ids - set(first))[:5]


@dataclass
class Item:
    """One recommended product. ``product`` is loaded by ``recommend`` (``load_products``);
    the template tag renders cached cards from ``product_id`` instead (see ``recommender_tags``)."""

    product_id: int
    reason: str
    rung: str
    position: int
    version_id: int | None
    token: str = ""
    product: Any = None
    card: str = ""  # the rendered product card (template tag)

    @property
    def url(self) -> str:
        url = self.product.get_absolute_url()
        return f"{url}?rec={self.token}" if self.token else url


@dataclass
class Block:
    """The items of one placement on one page, with the placement's (translated) title."""

    placement: str
    title: str
    items: list[Item] = field(default_factory=list)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
