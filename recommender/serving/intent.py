"""The current visitor's purchase intent: the live ``next_action`` model over their own history.

:func:`visitor_intent` scores the visitor of a request: their history (the one the blocks read,
cached under their generation) becomes an action stream and the live version's NumPy scorer gives
the probability that their next action is a basket addition or a purchase; the version's cut
points name its band (``"low"``, ``"medium"``, ``"high"``). The score is kept in this process's
copy (:mod:`recommender.serving.stores`, no round trip to the shared cache) under the visitor's
generation and the version: a page after a new event scores again, other pages read it, and
another process scores once for itself (a forward pass costs less than a cache write). Nothing is
computed until something asks (the ``purchase_intent`` tag, the API, an intent offer's condition).

No score for a request that is not tracked (``Sec-GPC: 1``, missing consent, a bot), for nobody
known yet, for a person without history, or without a live model; any failure is logged once and
gives no score, never an error on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recommender.abstract_models import ModelKind
from recommender.ml.intent import actions_of, band_of
from recommender.serving.blocks import visitor_of
from recommender.serving.generations import visitor_prefix, visitor_state
from recommender.serving.history import cached_history
from recommender.serving.safety import safe
from recommender.serving.stores import local_get, local_set, request_memo
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
    key = score_key(visitor.key, generation, version.pk) if generation else ""
    score = local_get(key) if key else None
    if score is None:
        rows = cached_history(visitor, memo)
        if not rows:
            return None
        score = float(loaded.model.intent(*actions_of(rows, loaded.model.max_len)))
        if key:
            local_set(key, score)
    return Intent(band_of(score, bands), score, version.pk)


def score_key(visitor_key: str, generation: int, version_id: int) -> str:
    """Where this process keeps a visitor's score: under their generation (a new event, or an
    erasure, makes a new key) and the model version."""
    return f"{visitor_prefix(visitor_key)}intent:{generation}:{version_id}"


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
    score = float(loaded.model.intent(*actions_of(rows, loaded.model.max_len)))
    return Intent(band_of(score, loaded.meta.get("bands") or {}), score, version.pk)
