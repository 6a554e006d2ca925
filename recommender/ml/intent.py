"""Purchase intent: what a shopper does next (view, basket addition, purchase, or leave), torch-free.

A person's behaviour is one stream of actions in time order (views, basket additions, one
purchase per order). Each action's *target* is the next action of the same visit, or ``LEAVE``
when the visit ended there: the next action came more than ``gap_seconds`` later, or nothing came
and ``gap_seconds`` have passed by ``as_of``. While a visit may still go on, the target is unknown
(``-1``). Each target also has the time it became known (``outcome_times``: the next action's time,
or the action's time plus the gap for ``LEAVE``), so a cut at any instant hides exactly what was
not known then (:meth:`ActionStreams.before`, :meth:`ActionStreams.held_out`).

The *intent* of a shopper is the probability that their next action is a basket addition or a
purchase. :class:`IntentScorer` computes it from the network that
:class:`recommender.ml.nextaction.NextActionModel` trains and saves, in NumPy (no torch in a web
request, none needed at all to serve). Its baselines and metrics are here too: the majority class,
"repeat the last action", macro-F1, the Brier score and a reliability table.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from recommender.ml.base import ModelFileError, read_model_files
from recommender.ml.evaluation import macro_f1, per_class_f1
from recommender.ml.numpy_rnn import RecurrentLayer, row_softmax

VIEW, BASKET, PURCHASE, LEAVE = 0, 1, 2, 3
ACTIONS = ("view", "basket", "purchase", "leave")
#: the next actions that count as intent to buy
INTENT_ACTIONS = (BASKET, PURCHASE)
N_HOUR, N_GAP = 24, 20
#: the saved model's registry name (``config.json``)
MODEL_NAME = "next_action"


def features(types: np.ndarray, ts: np.ndarray | None, items: np.ndarray | None, cats: np.ndarray | None) -> np.ndarray:
    """Per-event int features ``(n, 5)``: type+1, hour+1, gap bucket+1 (log2 seconds since the
    previous event; the first event its own bucket), item seen before (1 no / 2 yes), category seen
    before (1 / 2); 0 where the input is absent."""
    n = len(types)
    f = np.zeros((n, 5), dtype=np.int64)
    f[:, 0] = np.asarray(types, dtype=np.int64) + 1
    if ts is not None and n:
        ts = np.asarray(ts, dtype=np.int64)
        f[:, 1] = ts % 86400 // 3600
        f[:, 1] += 1
        gaps = np.subtract(ts[1:], ts[:-1])
        np.maximum(gaps, 0, out=gaps)
        # floor(log2(gap + 1)) + 1 is the binary exponent of gap + 1 (exact, where a log2 rounds)
        f[1:, 2] = np.minimum(np.frexp(gaps + 1.0)[1], N_GAP - 1)
        f[0, 2] = N_GAP
    for col, ids in ((3, items), (4, cats)):
        if ids is not None and n:
            _values, first = np.unique(np.asarray(ids), return_index=True)
            f[:, col] = 2
            f[first, col] = 1  # each id's first appearance
    return f


# -- streams ------------------------------------------------------------------------------


@dataclass
class ActionStreams:
    """One stream per person: their actions (``types`` 0-2, ``times`` unix seconds, ``items``) and
    each action's ``targets`` (0-3, ``-1`` unknown) with the time it became known."""

    people: np.ndarray
    types: list[np.ndarray]
    times: list[np.ndarray]
    items: list[np.ndarray]
    targets: list[np.ndarray]
    outcome_times: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.types)

    @property
    def n_events(self) -> int:
        return int(sum(len(t) for t in self.types))

    def before(self, cutoff: float) -> ActionStreams:
        """What was known at ``cutoff``: the actions before it, targets known by then (others -1)."""
        keep = [np.flatnonzero(t < cutoff) for t in self.times]
        rows = [i for i, k in enumerate(keep) if len(k)]

        def cut(arrays: list[np.ndarray]) -> list[np.ndarray]:
            return [arrays[i][keep[i]] for i in rows]

        targets = [np.where(o < cutoff, t, -1) for t, o in zip(cut(self.targets), cut(self.outcome_times), strict=True)]
        return ActionStreams(
            self.people[rows], cut(self.types), cut(self.times), cut(self.items), targets, cut(self.outcome_times)
        )

    def held_out(self, cutoff: float) -> list[np.ndarray]:
        """The targets that became known at or after ``cutoff`` (the others -1)."""
        return [np.where(o >= cutoff, t, -1) for t, o in zip(self.targets, self.outcome_times, strict=True)]


def action_streams(
    person: np.ndarray,
    item: np.ndarray,
    timestamp: np.ndarray,
    event_type: np.ndarray,
    order: np.ndarray,
    gap_seconds: float,
    as_of: float,
) -> ActionStreams:
    """Streams from behaviour rows (one per view, basket addition or order line; purchase rows of one
    order become one purchase). Rows at the same instant keep the order view, basket, purchase."""
    person, item, order = np.asarray(person), np.asarray(item), np.asarray(order)
    ts, ev = np.asarray(timestamp, dtype=np.float64), np.asarray(event_type, dtype=np.int64)
    # one purchase per order: drop the order's later lines
    key = np.where(ev == PURCHASE, order, -1 - np.arange(len(ev)))
    sort = np.lexsort((item, ev, ts, person))
    _, first = np.unique(np.stack([person[sort], key[sort]]), axis=1, return_index=True)
    sort = sort[np.sort(first)]
    person, item, ts, ev = person[sort], item[sort], ts[sort], ev[sort]
    n = len(ev)
    same_person = np.zeros(n, dtype=bool)
    same_person[:-1] = person[1:] == person[:-1]
    nxt_ts = np.r_[ts[1:], np.inf]
    same_visit = same_person & (nxt_ts - ts <= gap_seconds)
    target = np.where(same_visit, np.r_[ev[1:], -1], LEAVE)
    ended = same_person | (as_of - ts > gap_seconds)
    target = np.where(same_visit | ended, target, -1)
    outcome = np.where(same_visit, nxt_ts, ts + gap_seconds)
    starts = np.r_[0, np.flatnonzero(~same_person[:-1]) + 1] if n else np.zeros(0, dtype=np.int64)
    bounds = np.r_[starts, n]

    def split(a: np.ndarray) -> list[np.ndarray]:
        return [a[s:e] for s, e in itertools.pairwise(bounds)]

    return ActionStreams(person[starts], split(ev), split(ts), split(item), split(target), split(outcome))


# -- baselines and metrics -----------------------------------------------------------------------


def majority_class(targets: Sequence[np.ndarray]) -> int:
    """The most frequent known target (ties: the smallest class)."""
    y = np.concatenate([t[t >= 0] for t in targets]) if len(targets) else np.zeros(0, dtype=np.int64)
    return int(np.argmax(np.bincount(y, minlength=len(ACTIONS)))) if len(y) else VIEW


def baseline_predictions(streams: ActionStreams, targets: Sequence[np.ndarray], majority: int) -> dict[str, Any]:
    """The known ``targets``, and what the majority class and "repeat the last action" predict for them."""
    y = np.concatenate([t[t >= 0] for t in targets]) if len(targets) else np.zeros(0, dtype=np.int64)
    last = np.concatenate([ty[t >= 0] for ty, t in zip(streams.types, targets, strict=True)]) if len(targets) else y
    return {"y": y, "majority": np.full_like(y, majority), "repeat_last": last}


def classification_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Macro-F1 over the actions that occur or are predicted (scikit-learn's default), each
    action's F1 and the accuracy."""
    labels = range(len(ACTIONS))
    return {
        "macro_f1": macro_f1(y, pred) if len(y) else float("nan"),
        "per_class_f1": dict(zip(ACTIONS, per_class_f1(y, pred, labels), strict=True)),
        "accuracy": float((y == pred).mean()) if len(y) else float("nan"),
    }


def intent_of(probs: np.ndarray) -> np.ndarray:
    """The intent (probability of a basket addition or a purchase next) of each row of ``probs``."""
    return np.asarray(probs)[..., list(INTENT_ACTIONS)].sum(axis=-1)


BANDS = ("low", "medium", "high")


def band_of(score: float, bands: dict[str, float]) -> str:
    """``"low"``, ``"medium"`` or ``"high"`` for an intent, by a version's cut points
    (``{"medium": lower bound, "high": lower bound}``)."""
    if score >= bands.get("high", np.inf):
        return "high"
    return "medium" if score >= bands.get("medium", np.inf) else "low"


def actions_of(
    rows: Sequence[tuple[int, float, int]], limit: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A person's ``(product, unix time, event type)`` history rows, oldest first, as the action
    stream the network reads: the lines of one order (same time) are one purchase. ``limit``: only
    the last so many actions (a scorer's ``max_len``)."""
    kept = []
    for i in range(len(rows) - 1, -1, -1):
        r = rows[i]
        if r[2] == PURCHASE and i and rows[i - 1][2] == PURCHASE and rows[i - 1][1] == r[1]:
            continue
        kept.append(r)
        if len(kept) == limit:
            break
    kept.reverse()
    types = np.fromiter((r[2] for r in kept), dtype=np.int64, count=len(kept))
    times = np.fromiter((r[1] for r in kept), dtype=np.float64, count=len(kept))
    items = np.fromiter((r[0] for r in kept), dtype=np.int64, count=len(kept))
    return types, times, items


def calibration(intent: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """The Brier score of ``intent`` against "the next action was a basket addition or a purchase",
    the Brier score of always predicting the base rate, and a reliability table over equal-width bins
    (mean predicted, observed share, count; empty bins left out)."""
    hit = np.isin(y, INTENT_ACTIONS).astype(np.float64)
    p = np.asarray(intent, dtype=np.float64)
    if not len(p):
        return {"brier": None, "base_rate": None, "brier_base_rate": None, "reliability": []}
    rate = float(hit.mean())
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    table = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            table.append({"predicted": float(p[sel].mean()), "observed": float(hit[sel].mean()), "n": int(sel.sum())})
    return {
        "brier": float(np.mean((p - hit) ** 2)),
        "base_rate": rate,
        "brier_base_rate": float(np.mean((rate - hit) ** 2)),
        "reliability": table,
    }


# -- serving ---------------------------------------------------------------------------------------


class IntentScorer:
    """A saved next-action network in NumPy: the next action's probabilities after a stream."""

    name = MODEL_NAME
    n_items_ = 0  # it ranks no products (a version's files name none)

    def __init__(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        params = config["params"]
        self.n_classes = int(params["n_classes"])
        self.max_len = int(params["max_len"])
        self.params = params
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        self.rnn = RecurrentLayer.from_arrays(params["cell"], [[tensors[f"net.rnn.{n}"] for n in names]])
        # the network adds the five features' embeddings and projects the sum into its gates: each
        # embedding table is projected once here, so a visitor's gates are a sum of table rows
        tables = [np.asarray(tensors[f"net.embs.{k}.weight"], dtype=np.float32) @ self.rnn.w_in[0] for k in range(5)]
        tables[0] += self.rnn.b_in[0, 0]
        sizes = [len(t) for t in tables]
        if sizes != [self.n_classes + 1, N_HOUR + 1, N_GAP + 1, 3, 3]:
            raise ValueError(f"embedding tables of {sizes} rows do not fit {self.n_classes} classes")
        self.table_offsets = np.cumsum([0, *sizes[:-1]])
        self.gate_table = np.ascontiguousarray(np.concatenate(tables))
        self.out_w = np.ascontiguousarray(np.asarray(tensors["net.out.weight"], dtype=np.float32).T)
        self.out_b = np.asarray(tensors["net.out.bias"], dtype=np.float32)
        self.offsets = np.asarray(tensors["offsets"], dtype=np.float32)
        if self.out_w.shape[1] != self.n_classes or len(self.offsets) != self.n_classes:
            raise ValueError(f"the output layer has {self.out_w.shape[1]} classes, the config {self.n_classes}")

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        config, tensors = read_model_files(directory, MODEL_NAME)
        try:
            scorer = cls(config, tensors)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFileError(f"{directory}: saved next-action model is inconsistent: {exc}") from exc
        probe = scorer.proba(np.array([VIEW, BASKET]), np.array([0.0, 60.0]), np.array([1, 1]))
        if not np.isfinite(probe).all():
            raise ModelFileError(f"{directory}: the next-action model's probabilities are not finite")
        return scorer

    def proba(self, types: np.ndarray, times: np.ndarray | None = None, items: np.ndarray | None = None) -> np.ndarray:
        """Probabilities of the next action ``(n_classes,)`` after a person's stream (oldest first)."""
        types = np.asarray(types, dtype=np.int64)[-self.max_len :]
        if not len(types):
            return np.full(self.n_classes, 1.0 / self.n_classes, dtype=np.float32)
        if types.min() < 0 or types.max() >= self.n_classes:  # a row of the next embedding table otherwise
            raise ValueError(f"event types must be 0 to {self.n_classes - 1}")
        n = len(types)
        f = features(
            types,
            None if times is None else np.asarray(times)[-n:],
            None if items is None else np.asarray(items)[-n:],
            None,
        )
        f += self.table_offsets
        # no single_threaded_blas() here: at the default size (hidden 32, 20 steps) every product is a
        # vector by a small matrix, below OpenBLAS's threshold for using threads
        h = self.rnn.last_hidden(np.add.reduce(self.gate_table[f], axis=1))
        logits = h @ self.out_w
        logits += self.out_b
        return row_softmax(logits[None])[0]

    def intent(self, types: np.ndarray, times: np.ndarray | None = None, items: np.ndarray | None = None) -> float:
        """The probability that the next action is a basket addition or a purchase."""
        return float(intent_of(self.proba(types, times, items)))
