"""Offline replay: what the live models would have recommended before each of the last days' purchases.

A cheap estimate before an experiment. Every purchase placed in the ``days`` before ``as_of`` is a
case: an order line, read by :func:`recommender.exporters.export_behaviour` (so with its rules:
erased customers' orders, excluded order statuses and products that cannot be recommended are
left out, a child counts as its parent), one case per product of an order. The buyer's history
is what they did strictly before that order (views, basket additions, earlier purchases), its
last ``MAX_HISTORY_LENGTH`` events, as serving reads it; it stops where the buyer's run-up to the
purchase began, their first view or basket addition of the bought product since their previous
order: a block can only have sold the product before the shopper found it (with those events
the serving leaves the product out; ``keep_run_up`` keeps them, the strict "everything before the
order"). The live version of each kind is asked the way serving asks it
(:mod:`recommender.serving.rungs`):

* ``next_item`` (the "model" rung): the history's products the model knows, with their times and
  event types; the products of the history and those bought before are left out;
* ``also_bought``, ``also_viewed``, ``bought_together``: item-to-item from the last item: the
  similar items of the most recent of the history's last three products that the model knows
  (the "item_to_item" rung); what the buyer bought before is left out;
* ``trending``: the live ranking; what the buyer bought before is left out.

The bought product's conservative rank in that list (:mod:`recommender.ml.evaluation`) gives
hit rate@K, MRR@K and NDCG@K, beside popularity (:class:`~recommender.ml.popularity.PopularityRecommender`,
the training gate's baseline) fitted on the purchases before the window, i.e. the best sellers as
they were, ranked on the same purchases with the same exclusions. Nothing is hidden:

* purchases a kind cannot score are counted by reason: ``no_history`` (no earlier product the
  model knows, checked first) and ``unknown_product`` (the model does not know the bought product);
  the metrics are given over the scored purchases and over all purchases (an unscorable one a miss);
* ``bought_from_history``: scored purchases of a product the serving would leave out (already in
  the history or bought before): a miss for the model and for popularity alike;
* ``seen_in_training``: scored purchases placed before the end of the data the live version
  learnt from (it may have learnt them): the metrics of the purchases after it are given apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Self

import numpy as np
import pandas as pd

from recommender import artifacts, exporters
from recommender.abstract_models import ModelKind
from recommender.conf import app_settings
from recommender.ml.base import Recommender
from recommender.ml.data import EVENT_PURCHASE, SessionData
from recommender.ml.datasets import NextItemCases, sessions_from_events
from recommender.ml.evaluation import MISS_RANK, metrics_from_ranks, rank_cases
from recommender.ml.popularity import PopularityRecommender
from recommender.services import versions
from recommender.services.training import as_of_datetime

#: kinds a replay can ask, and those it asks by default
REPLAY_KINDS = (
    ModelKind.NEXT_ITEM,
    ModelKind.ALSO_BOUGHT,
    ModelKind.ALSO_VIEWED,
    ModelKind.BOUGHT_TOGETHER,
    ModelKind.TRENDING,
)
DEFAULT_KINDS = (ModelKind.NEXT_ITEM, ModelKind.ALSO_BOUGHT, ModelKind.ALSO_VIEWED)
ITEM_TO_ITEM = (ModelKind.ALSO_BOUGHT, ModelKind.ALSO_VIEWED, ModelKind.BOUGHT_TOGETHER)
#: the item-to-item rung anchors on the history's last three products
ANCHORS = 3
#: purchases ranked per scoring call (and per step of the progress callback)
CHUNK = 256

#: ``progress(kind, done, total)``: ``done`` of ``total`` purchases replayed for ``kind``
Progress = Callable[[str, int, int], None]


@dataclass
class Purchases:
    """The window's purchases over every product of the log (index ``i`` is ``product_ids[i]``)."""

    cases: NextItemCases  # prefix: the history before the order; label: the bought product
    bought_before: list[np.ndarray]  # per case, the products the buyer bought before the order
    times: np.ndarray  # per case, when the order was placed (unix seconds)
    orders: np.ndarray
    people: np.ndarray
    product_ids: list[int]
    run_up_cut: np.ndarray  # per case, whether the history stops at the start of its run-up


@dataclass
class Replay:
    """What a replay measured; :meth:`as_dict` is its JSON."""

    as_of: datetime
    start: datetime
    days: float
    k: int
    keep_run_up: bool = False
    orders: int = 0
    purchases: int = 0
    buyers: int = 0
    #: purchases whose history was cut at the start of the run-up to them
    run_up_cut: int = 0
    #: popularity over every purchase, leaving out what the buyer bought before (the best-sellers rung)
    popularity: dict[str, float] = field(default_factory=dict)
    kinds: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    message: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "start": self.start.isoformat(),
            "days": self.days,
            "k": self.k,
            "max_history_length": app_settings.MAX_HISTORY_LENGTH,
            "keep_run_up": self.keep_run_up,
            "orders": self.orders,
            "purchases": self.purchases,
            "buyers": self.buyers,
            "run_up_cut": self.run_up_cut,
            "popularity": self.popularity,
            "kinds": self.kinds,
            "skipped": self.skipped,
            "message": self.message,
            "timings": self.timings,
        }


def replay_orders(
    days: float = 14,
    k: int = 20,
    kinds: Sequence[str] | None = None,
    as_of: Any | None = None,
    progress: Progress | None = None,
    keep_run_up: bool = False,
) -> Replay:
    """Replay the purchases of the ``days`` before ``as_of`` (default now) against the live version of
    each of ``kinds`` (default :data:`DEFAULT_KINDS`); see the module doc. A kind without a live
    version (or whose files do not load) is skipped with the reason; a window without purchases
    gives a :class:`Replay` that says so."""
    if days <= 0 or k < 1:
        raise ValueError("days must be positive and k at least 1")
    wanted = [ModelKind(kind) for kind in (kinds or DEFAULT_KINDS)]
    unsupported = [str(kind) for kind in wanted if kind not in REPLAY_KINDS]
    if unsupported:
        raise ValueError(f"cannot replay {', '.join(unsupported)}; choose from {', '.join(REPLAY_KINDS)}")
    when = as_of_datetime(as_of)
    start = when - timedelta(days=days)
    report = Replay(when, start, days, k, keep_run_up)
    t = time.perf_counter()
    log = exporters.export_behaviour(when)
    report.timings["export"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    max_len = app_settings.MAX_HISTORY_LENGTH
    purchases, popularity = window_purchases(log, start.timestamp(), max_len, keep_run_up)
    report.timings["histories"] = round(time.perf_counter() - t, 3)
    if purchases is None:
        report.message = f"no orders in the {days:g} days before {when:%Y-%m-%d %H:%M} (from {start:%Y-%m-%d %H:%M})"
        return report
    n = len(purchases.cases)
    report.purchases, report.orders = n, len(np.unique(purchases.orders))
    report.buyers = len(np.unique(purchases.people))
    report.run_up_cut = int(purchases.run_up_cut.sum())
    t = time.perf_counter()
    history = [np.union1d(p, b) for p, b in zip(purchases.cases.prefixes, purchases.bought_before, strict=True)]
    pop_ranks = {
        "bought": _ranks(popularity, purchases.cases, purchases.bought_before),
        "history": _ranks(popularity, purchases.cases, history),
    }
    report.popularity = _metrics(pop_ranks["bought"], k)
    report.timings["popularity"] = round(time.perf_counter() - t, 3)
    for kind in wanted:
        t = time.perf_counter()
        try:
            live = versions.live_model(kind)
        except artifacts.ArtifactError as exc:
            report.skipped[str(kind)] = f"the live version's files do not load ({exc})"
            continue
        if live is None:
            report.skipped[str(kind)] = "no live version (train one: manage.py train_recommenders)"
            continue
        ranks, scorable, excluded = _replay_kind(kind, live[1], purchases, k, progress)
        baseline = pop_ranks["history" if kind == ModelKind.NEXT_ITEM else "bought"]
        report.kinds[str(kind)] = _kind_summary(live[0], purchases, ranks, scorable, excluded, baseline, k)
        report.timings[str(kind)] = round(time.perf_counter() - t, 3)
    return report


# -- the purchases and their histories ------------------------------------------------------


def window_purchases(
    log: exporters.BehaviourLog, start: float, max_len: int, keep_run_up: bool = False
) -> tuple[Purchases | None, PopularityRecommender]:
    """The purchases at or after ``start`` as cases (None: there are none), each with the buyer's last
    ``max_len`` events strictly before the order, and before the run-up to it unless ``keep_run_up``
    (see the module doc); and popularity fitted on the purchases before ``start``."""
    frame = log.frame
    is_purchase = (frame["event_type"] == EVENT_PURCHASE).to_numpy()
    in_window = is_purchase & (frame["timestamp"] >= start).to_numpy()
    if not in_window.any():
        return None, PopularityRecommender()
    data, index = sessions_from_events(
        frame.assign(key=frame["person"]), key="key", item="item", timestamp="timestamp", event_type="event_type"
    )
    before = index.encode(frame.loc[is_purchase & ~in_window, "item"].tolist())
    popularity = PopularityRecommender().fit(SessionData([before], len(index)))
    bought = (
        frame[in_window]
        .drop_duplicates(["order", "item"])  # two lines of one product (or of its children): one purchase
        .sort_values(["timestamp", "order", "item"], kind="stable")
    )
    sequence_of = {key: i for i, key in enumerate(data.meta["keys"])}
    labels = pd.Index(index.ids).get_indexer(bought["item"]).astype(np.int64)
    prefixes, types, stamps, bought_before = [], [], [], []
    people, times = bought["person"].to_numpy(np.int64), bought["timestamp"].to_numpy(np.float64)
    cut = np.zeros(len(bought), dtype=bool)
    for n, (person, when, label) in enumerate(zip(people, times, labels, strict=True)):
        i = sequence_of[person]
        items, kinds, seconds = data.sessions[i], data.event_types[i], data.timestamps[i]
        end = int(np.searchsorted(seconds, when, side="left"))  # strictly before the order
        if not keep_run_up:  # the first event of the product since the previous order starts the run-up
            ordered = np.flatnonzero(kinds[:end] == EVENT_PURCHASE)
            since = int(ordered[-1]) + 1 if len(ordered) else 0
            found = np.flatnonzero(items[since:end] == label)
            if len(found):
                end, cut[n] = since + int(found[0]), True
        lo = max(0, end - max_len)
        prefixes.append(items[lo:end])
        types.append(kinds[lo:end])
        stamps.append(seconds[lo:end])
        bought_before.append(np.unique(items[:end][kinds[:end] == EVENT_PURCHASE]))
    cases = NextItemCases(prefixes, labels, {"timestamps": stamps, "event_types": types})
    orders = bought["order"].to_numpy(np.int64)
    product_ids = [int(p) for p in index.ids]
    return Purchases(cases, bought_before, times, orders, people, product_ids, cut), popularity


# -- asking one kind ------------------------------------------------------------------------


def _replay_kind(
    kind: str, loaded: artifacts.LoadedModel, purchases: Purchases, k: int, progress: Progress | None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Each purchase's rank in the ``kind`` model's list (``MISS_RANK`` when unscorable), which ones it
    could score, and the reasons of those it could not (boolean masks)."""
    full = purchases.cases
    mapping = pd.Index(loaded.product_ids).get_indexer(purchases.product_ids).astype(np.int64)
    labels = np.where(full.labels >= 0, mapping[full.labels.clip(0)], -1)
    before = [_known(mapping[b]) for b in purchases.bought_before]
    n = len(full)
    if kind == ModelKind.NEXT_ITEM:
        cases = full.remap(mapping)  # the history's products the model knows, as the model rung asks
        has_history = np.fromiter((len(p) > 0 for p in cases.prefixes), dtype=bool, count=n)
        exclude = [np.union1d(p, b) for p, b in zip(cases.prefixes, before, strict=True)]
        model: Recommender = loaded.model
    elif kind in ITEM_TO_ITEM:
        anchors = np.fromiter((_anchor(p, mapping) for p in full.prefixes), dtype=np.int64, count=n)
        has_history = anchors >= 0
        cases = NextItemCases([anchors[i : i + 1] for i in range(n)], labels)
        exclude = before
        model = SimilarItems(loaded.model)
    else:  # trending: the same list for everybody
        has_history = np.ones(n, dtype=bool)
        cases = NextItemCases([np.empty(0, dtype=np.int64)] * n, labels)
        exclude = before
        model = loaded.model
    scorable = has_history & (labels >= 0)
    reasons = {"no_history": ~has_history, "unknown_product": has_history & (labels < 0)}
    ranks = np.full(n, MISS_RANK, dtype=np.int64)
    rows = np.flatnonzero(scorable)
    for a in range(0, len(rows), CHUNK):
        part = rows[a : a + CHUNK]
        ranks[part] = _ranks(model, cases.subset(part), [exclude[i] for i in part])
        if progress is not None:
            progress(str(kind), a + len(part), len(rows))
    excluded = np.fromiter((labels[i] in exclude[i] for i in range(n)), dtype=bool, count=n) & scorable
    return ranks, scorable, reasons | {"bought_from_history": excluded}


def _ranks(model: Recommender, cases: NextItemCases, exclude: list[np.ndarray]) -> np.ndarray:
    return rank_cases(model, cases, batch_size=CHUNK, top_k=1, exclude=exclude)[0]


def _known(indices: np.ndarray) -> np.ndarray:
    return indices[indices >= 0]


def _anchor(prefix: np.ndarray, mapping: np.ndarray) -> int:
    """The item-to-item rung's anchor: of the history's last :data:`ANCHORS` distinct products, the most
    recent one the model knows (-1: none)."""
    recent = list(dict.fromkeys(int(i) for i in prefix[::-1]))[:ANCHORS]
    return next((int(mapping[i]) for i in recent if mapping[i] >= 0), -1)


class SimilarItems(Recommender):
    """An item-to-item model's ``similar_items`` list of each history's one product as scores (its
    similarity; ``-inf`` outside the list, as serving never shows those), so that it ranks through
    :func:`~recommender.ml.evaluation.rank_cases` like any model. Not a model of its own: nothing
    to fit or save."""

    name = "replay_similar_items"

    def __init__(self, model: Recommender) -> None:
        self.model = model
        self.n_items_ = model.n_items_
        self._rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def fit(self, data: SessionData, validation: SessionData | None = None) -> Self:
        raise NotImplementedError("SimilarItems wraps a fitted model")

    def score_batch(self, histories: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> np.ndarray:
        out = np.full((len(histories), self.n_items_), -np.inf, dtype=np.float32)
        for r, history in enumerate(histories):
            anchor = int(history[-1])
            if anchor not in self._rows:
                self._rows[anchor] = self.model.similar_items(anchor, k=self.n_items_)
            items, scores = self._rows[anchor]
            out[r, items] = scores
        return out


# -- the figures ----------------------------------------------------------------------------


def _metrics(ranks: np.ndarray, k: int) -> dict[str, float]:
    out = metrics_from_ranks(ranks, (k,))
    out["n_cases"] = len(ranks)
    return out


def trained_until(version: Any) -> datetime | None:
    """The end of the data the version learnt from: its data's end when promoted models are refitted
    on everything (the default), else the start of its held-out days."""
    params = version.run.parameters if version.run_id else {}
    refit = (params or {}).get("REFIT_AFTER_EVALUATION", True)
    return version.data_end if refit else version.holdout_start


def _kind_summary(
    version: Any,
    purchases: Purchases,
    ranks: np.ndarray,
    scorable: np.ndarray,
    masks: dict[str, np.ndarray],
    baseline: np.ndarray,
    k: int,
) -> dict[str, Any]:
    until = trained_until(version)
    seen = scorable & (purchases.times <= until.timestamp()) if until is not None else np.zeros_like(scorable)
    after = scorable & ~seen
    return {
        "version": version.pk,
        "model": version.model_name,
        "trained_until": until.isoformat() if until is not None else None,
        "purchases": len(ranks),
        "scored": int(scorable.sum()),
        "unscorable": {reason: int(masks[reason].sum()) for reason in ("no_history", "unknown_product")},
        "bought_from_history": int(masks["bought_from_history"].sum()),
        "seen_in_training": int(seen.sum()),
        "metrics": _metrics(ranks[scorable], k),
        "popularity": _metrics(baseline[scorable], k),
        "metrics_all_purchases": _metrics(ranks, k),
        "after_training": {
            "scored": int(after.sum()),
            "metrics": _metrics(ranks[after], k),
            "popularity": _metrics(baseline[after], k),
        },
    }
