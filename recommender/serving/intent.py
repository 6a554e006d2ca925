"""The current visitor's purchase intent: the live ``next_action`` model over their own history.

:func:`visitor_intent` scores the visitor of a request: their history (the one the blocks read,
cached under their generation) becomes an action stream and the live version's NumPy scorer gives
the probability that their next action is a basket addition or a purchase; the version's cut
points name its band (``"low"``, ``"medium"``, ``"high"``). The score is cached under the
visitor's generation and the version, so a page after a new event scores again and other pages
read it in the round trip that fetches the history. Nothing is computed until something asks
(the ``purchase_intent`` tag, the API, an intent offer's condition).

No score for a request that is not tracked (``Sec-GPC: 1``, missing consent, a bot), for nobody
known yet, for a person without history, or without a live model; any failure is logged once and
gives no score, never an error on the page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from recommender.abstract_models import ModelKind
from recommender.conf import app_settings
from recommender.ml.intent import actions_of, band_of
from recommender.serving.blocks import visitor_of
from recommender.serving.generations import intent_key, visitor_state
from recommender.serving.history import cached_history
from recommender.serving.safety import safe
from recommender.serving.stores import request_memo
from recommender.tracking import should_track


@dataclass(frozen=True)
class Intent:
    """A visitor's purchase intent: its band, the probability, the model version that gave it."""

    band: str
    score: float
    version_id: int


def visitor_intent(request: Any) -> Intent | None:
    """The purchase intent of the request's visitor, or None (see the module doc); once per request."""
    if request is None or not should_track(request):
        return None
    memo = request_memo(request)
    if "intent" not in memo:
        memo["intent"] = safe(lambda: _score(request, memo), None, "purchase intent")
    return memo["intent"]


def _score(request: Any, memo: dict[str, Any]) -> Intent | None:
    from recommender.services import versions

    live = versions.live_model(ModelKind.NEXT_ACTION)
    visitor = visitor_of(request)
    if live is None or not visitor.key:
        return None
    version, loaded = live
    bands = loaded.meta.get("bands") or {}
    generation, _rows = visitor_state(visitor.key, memo)
    cached = memo.get(("intent", visitor.key))
    if (
        generation
        and isinstance(cached, dict)
        and (cached.get("g"), cached.get("v")) == (generation, version.pk)
        and time.time() - cached.get("t", 0) < app_settings.BLOCK_CACHE_SECONDS
    ):
        return Intent(band_of(float(cached["s"]), bands), float(cached["s"]), version.pk)
    rows = cached_history(visitor, memo)
    if not rows:
        return None
    score = float(loaded.model.intent(*actions_of(rows)))
    if generation:
        entry = {"g": generation, "v": version.pk, "t": time.time(), "s": score}
        safe(lambda: cache.set(intent_key(visitor.key), entry, app_settings.BLOCK_CACHE_SECONDS * 10), None, "cache")
    return Intent(band_of(score, bands), score, version.pk)


def intent_for(visitor: Any) -> Intent | None:
    """A person's purchase intent now, read from the database (no cache, no request): the personal
    data export."""
    from recommender.services import versions
    from recommender.serving.history import history_for

    live = versions.live_model(ModelKind.NEXT_ACTION)
    if live is None or not visitor.key:
        return None
    version, loaded = live
    rows = history_for(visitor.user, visitor.visitor_id)
    if not rows:
        return None
    score = float(loaded.model.intent(*actions_of(rows)))
    return Intent(band_of(score, loaded.meta.get("bands") or {}), score, version.pk)
