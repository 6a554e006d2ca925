"""A kind's training data and held-out cases, from the run's behaviour log.

:func:`prepare` takes the rows a kind learns from (:func:`kind_rows`), holds out the
``HOLDOUT_DAYS`` up to the kind's last recorded activity and makes every held-out event a
full-ranking test case (:class:`KindData`). With too few cases there, a kind with a live version
keeps it, one without is judged on the most recent ``CARVED_SHARE`` of its history instead, and
with still too few it raises :class:`SkipKind` ("not enough data yet").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from django.apps import apps
from django.utils import timezone
from oscar.core.loading import get_model

from recommender import exporters
from recommender.abstract_models import ModelKind
from recommender.conf import app_settings
from recommender.ml.data import EVENT_PURCHASE, EVENT_VIEW, SessionData
from recommender.ml.datasets import NextItemCases, TimeSplit, chunk_sessions, time_split

#: share of a kind's most recent history held out when its last ``HOLDOUT_DAYS`` hold too few cases
#: and there is no live version to keep
CARVED_SHARE = 0.2


class SkipKind(ValueError):
    """This kind cannot be trained now (no data of its type, no segments...); not an error."""


@dataclass
class KindData:
    """A kind's rows as sequences, split at the holdout start."""

    frame: pd.DataFrame
    split: TimeSplit
    train: SessionData  # split.train with long sequences cut into windows of MAX_HISTORY_LENGTH
    cases: NextItemCases
    last_activity: float  # unix time of the kind's last row
    segments: list[str] | None = None
    note: str = ""  # how the held-out cases were chosen, when not the usual way


def local_datetime(ts: float) -> datetime:
    """Unix time ``ts`` as an aware datetime in the current time zone."""
    return datetime.fromtimestamp(float(ts), tz=timezone.get_current_timezone())


def kind_rows(kind: str, log: exporters.BehaviourLog) -> tuple[pd.DataFrame, str]:
    """The log rows a kind learns from, with a ``key`` column, and the split mode."""
    frame = log.frame
    if kind == ModelKind.ALSO_BOUGHT:
        rows = log.of_types(EVENT_PURCHASE).assign(key=lambda d: d["person"])
        return rows, "event"
    if kind == ModelKind.ALSO_VIEWED:
        rows = log.of_types(EVENT_VIEW)
        return rows.assign(key=exporters.sessions_key(rows, app_settings.SESSION_GAP_MINUTES)), "event"
    if kind == ModelKind.BOUGHT_TOGETHER:
        return log.of_types(EVENT_PURCHASE).assign(key=lambda d: d["order"]), "session"
    if kind == ModelKind.NEXT_ITEM:
        return frame.assign(key=exporters.sessions_key(frame, app_settings.SESSION_GAP_MINUTES)), "event"
    return frame.assign(key=frame["person"]), "event"  # trending kinds


def current_segments(people: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each person's segment index in the current segmentation run (-1: none), and the segment names."""
    if not apps.is_installed("segmentation"):
        raise SkipKind("the segmentation app is not installed")
    from segmentation import services as segmentation_services

    run = segmentation_services.current_run()
    if run is None:
        raise SkipKind("no current segmentation run")
    CustomerSegment = get_model("segmentation", "CustomerSegment")
    rows = CustomerSegment.objects.filter(run_id=run.pk, user__isnull=False).values_list("user_id", "segment")
    by_user = dict(rows)
    names = sorted(set(by_user.values()))
    code = {name: i for i, name in enumerate(names)}
    segs = np.fromiter((code.get(by_user.get(int(p)), -1) for p in people), dtype=np.int64, count=len(people))
    return segs, names


def prepare(kind: str, log: exporters.BehaviourLog, has_live: bool = False) -> KindData:
    """The kind's rows split into training data and held-out cases (see the module doc, step 2);
    :class:`SkipKind` when the kind cannot be judged now."""
    rows, mode = kind_rows(kind, log)
    if rows.empty:
        what = {ModelKind.ALSO_VIEWED: "product views", ModelKind.NEXT_ITEM: "behaviour"}.get(kind, "purchases")
        raise SkipKind(f"no {what} recorded yet")
    names = None
    if kind == ModelKind.TRENDING_SEGMENT:
        segs, names = current_segments(rows["person"].to_numpy())
        if not (segs >= 0).any():
            raise SkipKind("nobody in this data is in a segment of the current run")
        rows = rows.assign(segment=segs)
    times = rows["timestamp"].to_numpy(dtype=np.float64)
    last = float(times.max())
    days, least = float(app_settings.HOLDOUT_DAYS), app_settings.MIN_HOLDOUT_CASES
    data = _split(rows, mode, last - days * 86400.0, last, names)
    if len(data.cases) >= least and len(data.train):
        return data
    n = len(data.cases)
    window = f"the {days:g} days to its last activity ({local_datetime(last):%Y-%m-%d})"
    if n < least:
        problem = f"{n} held-out case{'s' * (n != 1)} in {window}, fewer than MIN_HOLDOUT_CASES = {least}"
    else:
        problem = f"all of its history lies in {window}, nothing before them to train on"
    if has_live:
        raise SkipKind(f"{problem}: the live version stays")
    carved = float(np.quantile(times, 1.0 - CARVED_SHARE))
    if (times < carved).any():
        data = _split(rows, mode, carved, last, names)
        if len(data.cases) >= least and len(data.train):
            since = local_datetime(carved)
            data.note = f"{problem}; judged on the last {CARVED_SHARE:.0%} of its history (from {since:%Y-%m-%d})"
            return data
    raise SkipKind(f"not enough data yet: {problem}")


def _split(rows: pd.DataFrame, mode: str, cutoff: float, last: float, segments: list[str] | None) -> KindData:
    split = time_split(
        rows,
        cutoff=cutoff,
        mode=mode,
        key="key",
        item="item",
        timestamp="timestamp",
        event_type="event_type",
        segment="segment" if segments is not None else None,
    )
    max_len = app_settings.MAX_HISTORY_LENGTH
    train = chunk_sessions(split.train, max_len)
    return KindData(rows, split, train, split.test_cases(max_len), last, segments)
