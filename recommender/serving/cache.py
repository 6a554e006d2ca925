"""The block cache: a block's candidates are computed once and kept under a key that names
everything they depend on.

A block whose rungs read nothing of the visitor's own ("also bought" on a product page) is
shared by every visitor (the visitor's own exclusions are applied afterwards); its key holds
the placement, the page's product, the basket where the basket anchors it, the limit, the live
versions and the catalogue generation. A visitor's own block ("for you") is kept per visitor,
under their generation, which every event of theirs changes. A shop with another policy forks
this module and overrides :class:`BlockCache`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from recommender.conf import app_settings
from recommender.services import versions
from recommender.serving.blocks import Visitor
from recommender.serving.generations import catalogue_generation, visitor_prefix, visitor_state
from recommender.serving.placements import Placement
from recommender.serving.safety import safe
from recommender.serving.stores import shared_get_many, shared_set_many


def live_version_ids(memo: dict[str, Any]) -> dict[str, int]:
    """The live version id of each kind, once per request."""
    if "live" not in memo:
        memo["live"] = safe(lambda: versions.live_version_ids(), {}, "live versions")
    return memo["live"]


class BlockCache:
    """Where computed candidate lists are kept (the process copy, then the shared cache)."""

    @property
    def seconds(self) -> int:
        return app_settings.BLOCK_CACHE_SECONDS

    def key(
        self,
        visitor: Visitor,
        placement: Placement,
        product_id: int | None,
        basket: set[int],
        limit: int,
        memo: dict[str, Any],
        personal: bool,
        arm: str = "",
    ) -> str:
        """The key of this block's candidates (``arm``: the experiment's, where the arm changes the
        block); ``""``: not cached (a visitor nobody knows yet)."""
        live = ",".join(f"{k}{v}" for k, v in sorted(live_version_ids(memo).items()))
        catalogue = catalogue_generation(memo)
        basket_part = hashlib.blake2s(repr(sorted(basket)).encode(), digest_size=6).hexdigest() if basket else ""
        tail = f"{placement.name}:{arm}:{product_id}:{basket_part}:{limit}:{live}:{catalogue}"
        if not personal:
            return f"recommender:shared:{tail}"
        if not visitor.key:
            return ""
        generation, _rows = visitor_state(visitor.key, memo)
        # while the cache does not answer the generation reads 0: the process copy then keeps the
        # visitor's blocks for at most LOCAL_SECONDS instead of computing them on every page
        return f"{visitor_prefix(visitor.key)}{generation}:{tail}"

    def get(self, key: str) -> list[tuple] | None:
        return shared_get_many([key]).get(key) if key else None

    def set(self, key: str, rows: list[tuple]) -> None:
        if key:
            shared_set_many({key: rows}, self.seconds)
