"""Loaders that turn public data sets into :class:`SessionData` plus honest test cases.

Two families:

* SR-GNN format folders (``yoochoose1_64``, ``retailrocket``): training sessions
  and ready-made ``prefix -> label`` test cases. :func:`load_srgnn_folder`.
* Raw event logs (YooChoose clicks, DIGINETICA, Taobao, Online Retail): a
  DataFrame of ``(key, item, timestamp[, event_type])`` rows goes through
  :func:`sessions_from_events` and is split by time with :func:`time_split`.

Items are indexed on the *training* data only. A test item that never occurs in
training cannot be predicted by any model: labels like that are kept as ``-1``
(a miss for every model, still in the denominator) and prefix items like that
are dropped from the history. Both counts are reported in ``meta``.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.ml.data import EVENT_BASKET, EVENT_PURCHASE, EVENT_VIEW, ItemIndex, SessionData

__all__ = [
    "NextItemCases",
    "SRGNNData",
    "TimeSplit",
    "chunk_sessions",
    "expand_cases",
    "load_diginetica",
    "load_online_retail",
    "load_srgnn_folder",
    "load_taobao",
    "load_yoochoose_clicks",
    "sessions_from_events",
    "time_split",
    "validation_split",
]


@dataclass
class NextItemCases:
    """Next-item test cases: predict ``labels[i]`` from ``prefixes[i]`` (item indices, oldest first).

    ``labels[i] == -1`` marks a label unknown to the training data: a miss for every model.
    ``context`` holds optional per-case side information in the shape models expect
    (``"event_types"``/``"timestamps"``: lists aligned with prefixes, ``"segments"``: array).
    """

    prefixes: list[np.ndarray]
    labels: np.ndarray
    context: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> NextItemCases:
        """The cases at positions ``idx`` (context sliced alike)."""
        idx = np.asarray(idx, dtype=np.int64)
        ctx: dict = {}
        for key, val in self.context.items():
            ctx[key] = np.asarray(val)[idx] if isinstance(val, np.ndarray) else [val[i] for i in idx]
        return NextItemCases([self.prefixes[i] for i in idx], self.labels[idx], ctx, dict(self.meta))

    @property
    def n_unknown_labels(self) -> int:
        return int((self.labels < 0).sum())

    def remap(self, mapping: np.ndarray) -> NextItemCases:
        """The same cases over another model's item index: ``mapping[i]`` is item ``i``'s index
        there, or -1 where that model does not know it (prefix items dropped, labels a miss)."""
        mapping = np.asarray(mapping, dtype=np.int64)
        keeps = [mapping[p] >= 0 for p in self.prefixes]
        prefixes = [mapping[p][k] for p, k in zip(self.prefixes, keeps, strict=True)]
        labels = np.where(self.labels >= 0, mapping[self.labels.clip(0)], -1)
        ctx: dict = {}
        for key, val in self.context.items():
            ctx[key] = val if isinstance(val, np.ndarray) else [v[k] for v, k in zip(val, keeps, strict=True)]
        return NextItemCases(prefixes, labels, ctx, dict(self.meta))


def expand_cases(
    data: SessionData,
    n_known: int | None = None,
    start: np.ndarray | None = None,
    min_prefix: int = 1,
    max_prefix: int | None = None,
) -> NextItemCases:
    """Every ``(prefix, next item)`` pair of every sequence in ``data``.

    ``n_known``: item indices ``>= n_known`` are unknown to the model (labels become
    ``-1``, prefix items are dropped). ``start[i]``: first position of sequence ``i``
    that is a target (earlier items are history only, e.g. purchases before the
    test period); defaults to ``min_prefix``. ``max_prefix``: a prefix is at most the last
    ``max_prefix`` events before the target (unknown ones then dropped), as a shop serving
    the last N events of a history sees it; memory stays linear in the number of cases.
    """
    n_known = data.n_items if n_known is None else n_known
    prefixes: list[np.ndarray] = []
    labels: list[int] = []
    ctx_types: list[np.ndarray] = []
    ctx_times: list[np.ndarray] = []
    segs: list[int] = []
    dropped = 0
    for i, seq in enumerate(data.sessions):
        first = max(min_prefix, int(start[i]) if start is not None else min_prefix)
        known = seq < n_known
        for pos in range(first, len(seq)):
            lo = 0 if max_prefix is None else max(0, pos - max_prefix)
            keep = known[lo:pos]
            dropped += int((~keep).sum())
            prefixes.append(seq[lo:pos][keep])
            labels.append(int(seq[pos]) if seq[pos] < n_known else -1)
            if data.event_types is not None:
                ctx_types.append(data.event_types[i][lo:pos][keep])
            if data.timestamps is not None:
                ctx_times.append(data.timestamps[i][lo:pos][keep])
            if data.segments is not None:
                segs.append(int(data.segments[i]))
    context: dict = {}
    if data.event_types is not None:
        context["event_types"] = ctx_types
    if data.timestamps is not None:
        context["timestamps"] = ctx_times
    if data.segments is not None:
        context["segments"] = np.asarray(segs, dtype=np.int64)
    lab = np.asarray(labels, dtype=np.int64)
    meta = {"unknown_labels": int((lab < 0).sum()), "dropped_prefix_items": dropped}
    return NextItemCases(prefixes, lab, context, meta)


# -- SR-GNN format ---------------------------------------------------------------------------


@dataclass
class SRGNNData:
    """A SR-GNN format folder: training sessions and the published test cases."""

    train: SessionData
    test: NextItemCases
    item_index: ItemIndex
    stats: dict


def _read_int_lines(path: Path) -> list[list[int]]:
    with gzip.open(path, "rt") as fh:
        return [[int(tok) for tok in line.split()] for line in fh if line.strip()]


def load_srgnn_folder(folder: str | Path) -> SRGNNData:
    """Load ``all_train_seq.txt.gz`` (one space-separated session a line, in time order)
    and ``test.tsv.gz`` (header, then ``prefix<TAB>label``) from ``folder``.

    Items are indexed in order of first appearance in training. ``meta`` of the result
    reports test labels and prefix items unknown to training.
    """
    folder = Path(folder)
    raw_train = _read_int_lines(folder / "all_train_seq.txt.gz")
    index = ItemIndex()
    sessions = [index.encode(s, add=True) for s in raw_train]
    train = SessionData(sessions, len(index), meta={"source": str(folder)})

    prefixes: list[np.ndarray] = []
    labels: list[int] = []
    dropped = empty = 0
    with gzip.open(folder / "test.tsv.gz", "rt") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if header != ["prefix", "label"]:
            raise ValueError(f"{folder}/test.tsv.gz: unexpected header {header}")
        for line in fh:
            if not line.strip():
                continue
            prefix_txt, label_txt = line.rstrip("\n").split("\t")
            raw_prefix = [int(t) for t in prefix_txt.split()]
            enc = index.encode(raw_prefix)
            dropped += len(raw_prefix) - len(enc)
            empty += int(len(enc) == 0)
            prefixes.append(enc)
            lab = index.index(int(label_txt))
            labels.append(-1 if lab is None else lab)
    lab_arr = np.asarray(labels, dtype=np.int64)
    test = NextItemCases(
        prefixes,
        lab_arr,
        meta={
            "unknown_labels": int((lab_arr < 0).sum()),
            "dropped_prefix_items": dropped,
            "empty_prefixes": empty,
        },
    )
    stats_path = folder / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return SRGNNData(train, test, index, stats)


# -- raw event logs -------------------------------------------------------------------------


@dataclass
class TimeSplit:
    """A time-based train/test split of an event log.

    ``test`` uses the same item index; indices ``>= train.n_items`` are items never seen in
    training. ``test_start[i]`` is the first target position of ``test.sessions[i]``
    (0 for session data; the first post-cutoff event for customer histories).
    """

    train: SessionData
    test: SessionData
    test_start: np.ndarray
    item_index: ItemIndex
    cutoff: float

    def test_cases(self, max_prefix: int | None = None) -> NextItemCases:
        """Every test prediction, with unknown items handled as described in the module doc
        (histories cut to the last ``max_prefix`` events when given)."""
        return expand_cases(self.test, n_known=self.train.n_items, start=self.test_start, max_prefix=max_prefix)


def sessions_from_events(
    df: pd.DataFrame,
    key: str = "key",
    item: str = "item",
    timestamp: str = "timestamp",
    event_type: str | None = None,
    segment: str | None = None,
    item_index: ItemIndex | None = None,
    add_items: bool = True,
) -> tuple[SessionData, ItemIndex]:
    """Group event rows into sequences (one per ``key``), ordered by ``timestamp`` then row order.

    Sequences are ordered by their first event's time. ``item_index`` is extended with new
    items when ``add_items`` (otherwise unknown items are dropped).
    """
    index = item_index if item_index is not None else ItemIndex()
    d = df.reset_index(drop=True)
    d = d.assign(_row=np.arange(len(d))).sort_values([key, timestamp, "_row"], kind="stable")
    enc = np.fromiter(
        ((index.add(v) if add_items else (index.index(v) if index.index(v) is not None else -1)) for v in d[item]),
        dtype=np.int64,
        count=len(d),
    )
    ts = d[timestamp].to_numpy(dtype=np.float64)
    keys = d[key].to_numpy()
    types = d[event_type].to_numpy(dtype=np.int64) if event_type else None
    segs = d[segment].to_numpy(dtype=np.int64) if segment else None
    keep = enc >= 0
    enc, ts, keys = enc[keep], ts[keep], keys[keep]
    types = types[keep] if types is not None else None
    segs = segs[keep] if segs is not None else None
    if len(keys) == 0:  # no rows: the same side information as a non-empty result, with no sequences
        empty = SessionData(
            [],
            len(index),
            event_types=[] if types is not None else None,
            timestamps=[],
            segments=np.empty(0, dtype=np.int64) if segs is not None else None,
            meta={"keys": []},
        )
        return empty, index
    # boundaries between keys (rows are sorted by key)
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    bounds = np.concatenate([[0], change, [len(keys)]])
    starts = ts[bounds[:-1]]
    order = np.argsort(starts, kind="stable")
    sessions, times, etypes, seg_out, key_out = [], [], [], [], []
    for o in order:
        a, b = bounds[o], bounds[o + 1]
        sessions.append(enc[a:b])
        times.append(ts[a:b])
        key_out.append(keys[a])
        if types is not None:
            etypes.append(types[a:b])
        if segs is not None:
            seg_out.append(segs[a])
    data = SessionData(
        sessions,
        len(index),
        event_types=etypes if types is not None else None,
        timestamps=times,
        segments=np.asarray(seg_out, dtype=np.int64) if segs is not None else None,
        meta={"keys": key_out},
    )
    return data, index


def time_split(
    df: pd.DataFrame,
    cutoff: float | None = None,
    test_days: float = 1.0,
    mode: str = "session",
    key: str = "key",
    item: str = "item",
    timestamp: str = "timestamp",
    event_type: str | None = None,
    segment: str | None = None,
    min_train_count: int = 1,
) -> TimeSplit:
    """Split an event log at ``cutoff`` (unix seconds; default: ``test_days`` before the last event).

    ``mode="session"``: sequences whose *last* event is at or after the cutoff are test
    sessions, the rest train (GRU4Rec protocol). ``mode="event"`` (customer histories):
    events before the cutoff train, and every post-cutoff event of a customer is a target
    with all of that customer's earlier events as history.
    Items occurring fewer than ``min_train_count`` times in train are treated as unknown.
    """
    if mode not in ("session", "event"):
        raise ValueError("mode must be 'session' or 'event'")
    ts = df[timestamp].to_numpy(dtype=np.float64)
    cutoff = float(ts.max() - test_days * 86400.0) if cutoff is None else float(cutoff)
    if mode == "session":
        last = df.groupby(key)[timestamp].transform("max").to_numpy(dtype=np.float64)
        is_train = last < cutoff
    else:
        is_train = ts < cutoff
    train_df = df[is_train]
    if min_train_count > 1:
        counts = train_df[item].value_counts()
        train_df = train_df[train_df[item].isin(counts.index[counts >= min_train_count])]
    cols = {"key": key, "item": item, "timestamp": timestamp, "event_type": event_type, "segment": segment}
    train, index = sessions_from_events(train_df, **cols)
    n_train_items = len(index)
    if mode == "session":
        test_df = df[~is_train]
    else:
        test_keys = df.loc[~is_train, key].unique()
        test_df = df[df[key].isin(test_keys)]
    test, index = sessions_from_events(test_df, item_index=index, **cols)
    train.n_items = n_train_items
    if mode == "session":
        start = np.zeros(len(test), dtype=np.int64)
    else:
        start = np.asarray([int(np.searchsorted(t, cutoff, side="left")) for t in test.timestamps], dtype=np.int64)
    test.meta["cutoff"] = cutoff
    return TimeSplit(train, test, start, index, cutoff)


def chunk_sessions(data: SessionData, max_len: int) -> SessionData:
    """Long sequences cut into consecutive windows of at most ``max_len`` items (side information
    alike; a window keeps its sequence's segment). Short sequences are unchanged."""
    if max_len < 2:
        raise ValueError("max_len must be at least 2")
    sessions, types, times, segs = [], [], [], []
    for i, seq in enumerate(data.sessions):
        for a in range(0, max(len(seq), 1), max_len):
            sessions.append(seq[a : a + max_len])
            if data.event_types is not None:
                types.append(data.event_types[i][a : a + max_len])
            if data.timestamps is not None:
                times.append(data.timestamps[i][a : a + max_len])
            if data.segments is not None:
                segs.append(int(data.segments[i]))
    meta = {k: v for k, v in data.meta.items() if k != "keys"}
    return SessionData(
        sessions,
        data.n_items,
        event_types=types if data.event_types is not None else None,
        timestamps=times if data.timestamps is not None else None,
        segments=np.asarray(segs, dtype=np.int64) if data.segments is not None else None,
        meta=meta,
    )


def validation_split(train: SessionData, fraction: float = 0.1) -> tuple[SessionData, SessionData]:
    """Carve the most recent ``fraction`` of ``train`` sequences as a validation set.

    Recency is the sequence's last timestamp when timestamps exist, else the order of the
    sequences (SR-GNN files are in time order). Both parts keep ``n_items`` so indices agree;
    tune on the second part, never on test.
    """
    if not 0 < fraction < 1:
        raise ValueError("fraction must be in (0, 1)")
    n = len(train)
    if train.timestamps is not None:
        last = np.asarray([t[-1] if len(t) else -np.inf for t in train.timestamps])
        order = np.argsort(last, kind="stable")
    else:
        order = np.arange(n)
    n_valid = max(1, round(n * fraction))
    parts = []
    for idx in (np.sort(order[: n - n_valid]), np.sort(order[n - n_valid :])):
        parts.append(
            SessionData(
                [train.sessions[i] for i in idx],
                train.n_items,
                event_types=[train.event_types[i] for i in idx] if train.event_types is not None else None,
                timestamps=[train.timestamps[i] for i in idx] if train.timestamps is not None else None,
                segments=train.segments[idx] if train.segments is not None else None,
                meta={**train.meta, "validation_fraction": fraction},
            )
        )
    parts[0].meta.pop("keys", None)
    parts[1].meta.pop("keys", None)
    return parts[0], parts[1]


# -- concrete raw data sets -------------------------------------------------------------------


def load_yoochoose_clicks(folder: str | Path, test_days: float = 1.0) -> TimeSplit:
    """YooChoose clicks (``SessionId<TAB>ItemId<TAB>Time``). Uses the folder's ready-made
    ``*_train_full`` / ``*_test`` files when present, otherwise splits ``*clicks*`` by session end."""
    folder = Path(folder)
    full = sorted(folder.glob("*_train_full.txt*"))
    test = sorted(folder.glob("*_test.txt*"))
    if full and test:
        tr = pd.read_csv(full[0], sep="\t")
        te = pd.read_csv(test[0], sep="\t")
        cutoff = float(te["Time"].min())
        df = pd.concat([tr.assign(_test=False), te.assign(_test=True)], ignore_index=True)
        # sessions of the two files are disjoint by construction; key on (file, session)
        df["key"] = df["_test"].astype(str) + ":" + df["SessionId"].astype(str)
        cols = {"key": "key", "item": "ItemId", "timestamp": "Time"}
        train, index = sessions_from_events(df[~df["_test"]], **cols)
        n_train = len(index)
        test_data, index = sessions_from_events(df[df["_test"]], item_index=index, **cols)
        train.n_items = n_train
        return TimeSplit(train, test_data, np.zeros(len(test_data), dtype=np.int64), index, cutoff)
    files = sorted(folder.glob("*clicks*"))
    df = pd.read_csv(files[0], sep="\t" if "\t" in files[0].read_text()[:200] else ",")
    return time_split(df, test_days=test_days, key="SessionId", item="ItemId", timestamp="Time")


def load_diginetica(path: str | Path, test_days: float = 7.0) -> TimeSplit:
    """DIGINETICA item views (``session_id;user_id;item_id;timeframe;eventdate``).

    Timestamp = event date (midnight UTC) + ``timeframe`` milliseconds, which orders the
    views inside a session. Sessions ending in the last ``test_days`` days are test.
    """
    path = Path(path)
    if path.is_dir():
        path = sorted(path.glob("*.csv*"))[0]
    df = pd.read_csv(path, sep=";", na_values=["NA"])
    day = pd.to_datetime(df["eventdate"]).astype("datetime64[s]").astype("int64")
    df = df.assign(timestamp=day.to_numpy(dtype=np.float64) + df["timeframe"].to_numpy(dtype=np.float64) / 1000.0)
    return time_split(df, test_days=test_days, key="session_id", item="item_id", timestamp="timestamp")


#: Taobao behaviour -> event type. ``fav`` (add to favourites) signals intent to buy like a
#: basket add, without its commitment; it is mapped to basket by default (``fav_as="view"`` to change).
TAOBAO_BEHAVIOURS = {"pv": EVENT_VIEW, "cart": EVENT_BASKET, "buy": EVENT_PURCHASE}


def load_taobao(path: str | Path, test_days: float = 1.0, fav_as: str = "basket") -> TimeSplit:
    """Taobao UserBehavior (``user_id,item_id,category_id,behavior,unix_ts``, no header).

    One sequence per user (with event types); split by event time: the last ``test_days``
    are targets, each with the user's whole earlier history.
    """
    path = Path(path)
    if path.is_dir():
        path = sorted(path.glob("*.csv*"))[0]
    df = pd.read_csv(path, header=None, names=["user_id", "item_id", "category_id", "behavior", "timestamp"])
    mapping = {**TAOBAO_BEHAVIOURS, "fav": EVENT_BASKET if fav_as == "basket" else EVENT_VIEW}
    df["event_type"] = df["behavior"].map(mapping)
    if df["event_type"].isna().any():
        raise ValueError(f"unknown behaviours: {sorted(set(df['behavior']) - set(mapping))}")
    return time_split(
        df,
        test_days=test_days,
        mode="event",
        key="user_id",
        item="item_id",
        timestamp="timestamp",
        event_type="event_type",
    )


def load_online_retail(path: str | Path, test_days: float = 30.0) -> TimeSplit:
    """UCI Online Retail as per-customer purchase sequences (event type purchase).

    Cancellations (``InvoiceNo`` starting with ``C``), non-positive quantities and rows without
    ``CustomerID`` are dropped. Lines of one invoice keep their file order. The test period is
    the last month (``test_days`` = 30 days before the last invoice); each test purchase is
    predicted from the customer's whole earlier history.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "online_retail.parquet"
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, parse_dates=["InvoiceDate"])
    df = df[df["CustomerID"].notna() & ~df["InvoiceNo"].astype(str).str.startswith("C") & (df["Quantity"] > 0)]
    df = df.assign(
        timestamp=df["InvoiceDate"].astype("datetime64[s]").astype("int64").astype(np.float64),
        customer=df["CustomerID"].astype("int64"),
        event_type=EVENT_PURCHASE,
    )
    return time_split(
        df,
        test_days=test_days,
        mode="event",
        key="customer",
        item="StockCode",
        timestamp="timestamp",
        event_type="event_type",
    )
