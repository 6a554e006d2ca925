"""The rules every block obeys: only products a shopper can buy now, spread over categories.

:class:`Rules` judges candidates on cached product facts ("can be recommended and bought now",
"first category"): public, browsable, not excluded or buried, and available to buy with a price
by the request's strategy (Oscar's live stock and price), fetched in bulk with their stock
records. A shop with its own rules (a minimum margin, an age check) forks this module and
overrides :meth:`Rules.buyable` or :meth:`Rules.choose`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from oscar.core.loading import get_model

from recommender.conf import app_settings
from recommender.queries import recommendable_products
from recommender.serving.blocks import Candidate
from recommender.serving.generations import catalogue_generation
from recommender.serving.stores import shared_get_many, shared_set_many

#: (can be recommended and bought now, first category id or None)
Fact = tuple[bool, int | None]


def strategy_key(strategy: Any) -> str:
    """Cached facts and cards are per strategy class (the same prices and stock for everyone who
    gets that class); a shop whose prices differ per customer sets ``CARD_CACHE_SECONDS`` to 0."""
    return f"{type(strategy).__module__}.{type(strategy).__qualname__}"


def fetch_products(ids: list[int], memo: dict[str, Any] | None = None, buried: bool = False) -> dict[int, Any]:
    """Recommendable products by id (not buried, when asked), with what the strategy and the card
    need prefetched; remembered for the rest of the request."""
    memo = {} if memo is None else memo
    products: dict[int, Any] = memo.setdefault("products", {})
    todo = [pid for pid in ids if pid not in products]
    if todo:
        qs = recommendable_products().filter(pk__in=todo).select_related("product_class", "parent")
        if buried:
            qs = qs.exclude(_buried())
        qs = qs.prefetch_related("stockrecords", "categories", "images", "children__stockrecords")
        products.update({p.pk: p for p in qs})
    return {pid: products[pid] for pid in ids if pid in products}


def _buried() -> Q:
    Bury = get_model("recommender", "Bury")
    rows = list(Bury.objects.values_list("product_id", "category_id"))
    products = [p for p, _cat in rows if p]
    categories = [c for _prod, c in rows if c]
    q = Q(pk__in=products) if products else Q(pk__in=[])
    if categories:
        q |= Q(categories__in=categories)
    return q


class Rules:
    """Which candidates a block shows, in which order."""

    def buyable(self, product: Any, strategy: Any) -> bool:
        """Available to buy with a price, by the request's strategy."""
        try:
            info = strategy.fetch_for_parent(product) if product.is_parent else strategy.fetch_for_product(product)
        except Exception:
            return False
        return bool(info.availability.is_available_to_buy and info.price.exists)

    def facts(self, ids: list[int], strategy: Any, memo: dict[str, Any]) -> dict[int, Fact]:
        """``{id: (can be recommended and bought now, first category id)}``, cached for
        ``CARD_CACHE_SECONDS`` under the catalogue generation (any product, stock, image, category or
        bury change makes new keys); misses are fetched in bulk with their stock records."""
        seconds = app_settings.CARD_CACHE_SECONDS
        prefix = f"recommender:fact:{catalogue_generation(memo)}:{strategy_key(strategy)}:"
        known: dict[int, Any] = memo.setdefault("facts", {})
        todo = [pid for pid in dict.fromkeys(ids) if pid not in known]
        if todo and seconds:
            hits = shared_get_many([f"{prefix}{pid}" for pid in todo])
            for pid in todo:
                if (hit := hits.get(f"{prefix}{pid}")) is not None:
                    known[pid] = tuple(hit)
            todo = [pid for pid in todo if pid not in known]
        if todo:
            products = fetch_products(todo, memo, buried=True)
            fresh: dict[int, Fact] = {}
            for pid in todo:
                product = products.get(pid)
                ok = product is not None and self.buyable(product, strategy)
                categories = [c.pk for c in product.categories.all()][:1] if ok else []
                fresh[pid] = (ok, categories[0] if categories else None)
            known.update(fresh)
            if seconds:
                shared_set_many({f"{prefix}{p}": list(f) for p, f in fresh.items()}, seconds)
        return {pid: known[pid] for pid in ids if pid in known}

    def choose(
        self, candidates: list[Candidate], limit: int, strategy: Any, exclude: set[int], memo: dict[str, Any]
    ) -> list[Candidate]:
        """The first ``limit`` candidates that pass the rules. Facts are looked up a chunk at a time
        (the candidates are over-fetched for the rules' sake, and most of them usually pass: a
        product never judged before costs a database fetch).

        ``MAX_PER_CATEGORY`` spreads a block over categories while the candidates allow it; when they
        cannot fill the block that way (a catalogue of one category), the products the cap held back
        fill it, in their rank order, so a block is never short while there are buyable candidates."""
        wanted = [c for c in candidates if c.product_id not in exclude]
        per_category: dict[int, int] = {}
        cap = app_settings.MAX_PER_CATEGORY
        chosen: list[int] = []  # positions in ``wanted``
        held_back: list[int] = []
        facts: dict[int, Fact] = {}
        judged = 0
        for n, cand in enumerate(wanted):
            if n == judged:  # the next chunk: 1.5 times the limit first, then twice what is missing
                judged += max(2 * (limit - len(chosen)), 4) if n else limit + limit // 2 + 1
                facts.update(self.facts([c.product_id for c in wanted[n:judged]], strategy, memo))
            fact = facts.get(cand.product_id)
            if not fact or not fact[0]:
                continue
            category = fact[1]
            if cap and category is not None:
                if per_category.get(category, 0) >= cap:
                    held_back.append(n)
                    continue
                per_category[category] = per_category.get(category, 0) + 1
            chosen.append(n)
            if len(chosen) >= limit:
                break
        if len(chosen) < limit:
            chosen = sorted(chosen + held_back[: limit - len(chosen)])
        return [wanted[n] for n in chosen]
