"""The one ORM -> ml bridge: the shop's orders and captured events as one behaviour log.

:func:`export_behaviour` reads, in bulk, Oscar's order lines (the source of truth for
purchases, imported history included) and captured product views and basket additions, and
returns a :class:`BehaviourLog`: one row per thing a person did to a recommendable product,
with integer person codes, product ids, unix timestamps and event type codes of
:mod:`recommender.ml.data`. Nothing else in the app reads orders or events for training.

* A person is the user when known, else the browser's visitor id (events) or the lower-cased
  guest e-mail (guest orders); codes are integers, never names or e-mails.
* Orders of persons whose personal data was erased are left out
  (:func:`recommender.queries.without_erased_orders`).
* A child product counts as its parent (the product a shopper sees in listings).
* Recommendable products are public, not of an excluded class or UPC, and not a child; events
  on other products are left out (they could never be recommended).
* On PostgreSQL the rows leave the database through ``COPY ... TO STDOUT`` (about a million
  rows a second); other databases read them with the ORM.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from django.db import connections
from django.db.models import F, Q, QuerySet
from oscar.core.loading import get_model

from personalization_core.pgcopy import copy_query_to_frame
from recommender.conf import app_settings
from recommender.ml.data import EVENT_BASKET, EVENT_PURCHASE, EVENT_VIEW
from recommender.queries import EVENT_TYPES, recommendable_products, without_erased_orders

__all__ = ["BehaviourLog", "export_behaviour"]

COLUMNS = ("person", "item", "timestamp", "event_type", "order")


@dataclass
class BehaviourLog:
    """Rows of ``frame``: ``person`` (int64 code), ``item`` (product id), ``timestamp`` (unix seconds,
    float64), ``event_type`` (0 view, 1 basket, 2 purchase), ``order`` (order id of a purchase, -1 else)."""

    frame: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def empty(self) -> bool:
        return self.frame.empty

    def of_types(self, *types: int) -> pd.DataFrame:
        return self.frame[self.frame["event_type"].isin(types)]


def export_behaviour(as_of: datetime, since: datetime | None = None, using: str = "default") -> BehaviourLog:
    """Every purchase, view and basket addition before ``as_of`` (and at or after ``since``)."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    Product = get_model("catalogue", "Product")
    allowed = set(recommendable_products(using).values_list("pk", flat=True))
    parent_of = dict(Product.objects.using(using).filter(parent__isnull=False).values_list("pk", "parent_id"))
    timings["products"] = time.perf_counter() - t

    t = time.perf_counter()
    lines = _order_lines(as_of, since, using)
    timings["orders"] = time.perf_counter() - t
    t = time.perf_counter()
    events = _events(as_of, since, using)
    timings["events"] = time.perf_counter() - t

    t = time.perf_counter()
    frame, counts = _combine(lines, events, allowed, parent_of)
    timings["combine"] = time.perf_counter() - t
    counts["recommendable_products"] = len(allowed)
    return BehaviourLog(frame, counts, {k: round(v, 3) for k, v in timings.items()})


# -- reading --------------------------------------------------------------------------------


def _order_lines(as_of: datetime, since: datetime | None, using: str) -> pd.DataFrame:
    Line = get_model("order", "Line")
    qs = Line.objects.using(using).filter(order__date_placed__lt=as_of, product__isnull=False, quantity__gt=0)
    if since is not None:
        qs = qs.filter(order__date_placed__gte=since)
    if app_settings.EXCLUDED_ORDER_STATUSES:
        qs = qs.exclude(order__status__in=list(app_settings.EXCLUDED_ORDER_STATUSES))
    qs = without_erased_orders(qs, "order", using)
    qs = qs.order_by().values(
        pid=F("product_id"),
        uid=F("order__user_id"),
        guest=F("order__guest_email"),
        oid=F("order_id"),
        ts=F("order__date_placed"),
    )
    return _read(qs, ("pid", "uid", "guest", "oid", "ts"), using)


def _events(as_of: datetime, since: datetime | None, using: str) -> pd.DataFrame:
    Event = get_model("recommender", "Event")
    qs = Event.objects.using(using).filter(created__lt=as_of, kind__in=list(EVENT_TYPES), product__isnull=False)
    if since is not None:
        qs = qs.filter(created__gte=since)
    qs = qs.exclude(Q(user__isnull=True) & Q(visitor_id=""))
    qs = qs.order_by().values(
        pid=F("product_id"), uid=F("user_id"), visitor=F("visitor_id"), kind_=F("kind"), ts=F("created")
    )
    return _read(qs, ("pid", "uid", "visitor", "kind_", "ts"), using)


def _read(qs: QuerySet, columns: tuple[str, ...], using: str) -> pd.DataFrame:
    """The ``values()`` query as a DataFrame with ``ts`` in unix seconds (float64)."""
    conn = connections[using]
    if conn.vendor == "postgresql":
        return _read_copy(qs, columns, using)
    rows = list(qs.values_list(*columns))
    df = pd.DataFrame.from_records(rows, columns=list(columns))
    if df.empty:
        return _typed(df)
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    df["ts"] = (pd.to_datetime(df["ts"], utc=True) - epoch) / pd.Timedelta(seconds=1)
    return _typed(df)


def _read_copy(qs: QuerySet, columns: tuple[str, ...], using: str) -> pd.DataFrame:
    select = ["extract(epoch from s.ts)::float8" if c == "ts" else f's."{c}"' for c in columns]
    text_cols = {c: "object" for c in ("guest", "visitor", "kind_") if c in columns}
    df = copy_query_to_frame(qs, select, columns, using, dtype={**text_cols, "uid": "float64"}, na_values={"uid": [""]})
    return _typed(df)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    if "uid" in df:
        df["uid"] = pd.to_numeric(df["uid"], errors="coerce").astype("float64")
    for col in ("pid", "oid"):
        if col in df:
            df[col] = df[col].astype("int64")
    if "ts" in df:
        df["ts"] = df["ts"].astype("float64")
    for col in ("guest", "visitor", "kind_"):
        if col in df:
            df[col] = df[col].fillna("").astype(str)
    return df


# -- combining ------------------------------------------------------------------------------


def _combine(
    lines: pd.DataFrame, events: pd.DataFrame, allowed: set[int], parent_of: dict[int, int]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One frame over both sources with integer person codes and parent product ids."""
    counts = {"order_lines": len(lines), "events": len(events)}
    # person codes: users keep their id; guests and visitors get codes above every user id
    user_ids = pd.concat([lines["uid"], events["uid"]]).dropna()
    offset = int(user_ids.max()) + 1 if len(user_ids) else 1
    guest_email = lines["guest"].str.strip().str.lower()
    guest_codes, guests = pd.factorize(guest_email)
    visitor_codes, _ = pd.factorize(events["visitor"])
    line_user, event_user = lines["uid"].notna().to_numpy(), events["uid"].notna().to_numpy()
    line_person = np.where(line_user, lines["uid"].fillna(0).to_numpy(np.int64), offset + guest_codes)
    event_person = np.where(
        event_user, events["uid"].fillna(0).to_numpy(np.int64), offset + len(guests) + visitor_codes
    )
    # a guest order without an e-mail has no person: left out
    line_ok = line_user | (guest_email != "").to_numpy()
    kinds = events["kind_"].map(EVENT_TYPES).fillna(-1).to_numpy(np.int64)
    frame = pd.DataFrame(
        {
            "person": np.concatenate([line_person[line_ok], event_person]).astype(np.int64),
            "item": np.concatenate([lines["pid"].to_numpy(np.int64)[line_ok], events["pid"].to_numpy(np.int64)]),
            "timestamp": np.concatenate([lines["ts"].to_numpy(np.float64)[line_ok], events["ts"].to_numpy(np.float64)]),
            "event_type": np.concatenate([np.full(int(line_ok.sum()), EVENT_PURCHASE, dtype=np.int64), kinds]),
            "order": np.concatenate([lines["oid"].to_numpy(np.int64)[line_ok], np.full(len(events), -1, np.int64)]),
        }
    )
    if parent_of:
        parents = frame["item"].map(parent_of)
        frame["item"] = parents.fillna(frame["item"]).astype(np.int64)
    keep = frame["item"].isin(allowed).to_numpy() & (frame["event_type"].to_numpy() >= 0)
    counts["left_out_not_recommendable"] = int((~keep).sum())
    frame = frame[keep].reset_index(drop=True)
    counts.update(
        rows=len(frame),
        purchases=int((frame["event_type"] == EVENT_PURCHASE).sum()),
        views=int((frame["event_type"] == EVENT_VIEW).sum()),
        basket_additions=int((frame["event_type"] == EVENT_BASKET).sum()),
        people=int(frame["person"].nunique()),
        products=int(frame["item"].nunique()),
    )
    return frame, counts


def sessions_key(frame: pd.DataFrame, gap_minutes: float | None) -> np.ndarray:
    """A sequence key per row: the person, or (person, session) when a gap in minutes cuts sessions.

    Sessions end after ``gap_minutes`` of inactivity; the key of the ``n``-th session of a
    person is unique across people (a running session number over the time-sorted log).
    """
    person = frame["person"].to_numpy(np.int64)
    if gap_minutes is None or len(frame) == 0:
        return person
    order = np.lexsort((frame["timestamp"].to_numpy(), person))
    p, ts = person[order], frame["timestamp"].to_numpy(np.float64)[order]
    new = np.ones(len(p), dtype=bool)
    new[1:] = (p[1:] != p[:-1]) | (np.diff(ts) > gap_minutes * 60.0)
    keys = np.empty(len(p), dtype=np.int64)
    keys[order] = np.cumsum(new)
    return keys


def summarise_window(frame: pd.DataFrame) -> dict[str, Any]:
    if frame.empty:
        return {"start": None, "end": None}
    return {"start": float(frame["timestamp"].min()), "end": float(frame["timestamp"].max())}
