"""Segmentation runs: make one (:func:`run_segmentation`), store its memberships, keep the history short.

:func:`run_segmentation` is the whole batch: aggregate the orders
(:mod:`segmentation.services.aggregation`), compute with :class:`~segmentation.services.pipeline.Segmenter`,
write one membership row per customer (:func:`write_memberships`: ``COPY`` on PostgreSQL) and make
the run current, in one transaction, only when it succeeded. The Celery task and the management
command are thin wrappers around it. :func:`prune_runs` keeps ``KEEP_RUNS`` runs;
:func:`find_equivalent_run` lets a retried task skip a run already done.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.db import connections, transaction
from django.utils import timezone
from oscar.core.loading import get_model

from personalization_core.pgcopy import copy_frame_to_table
from segmentation.abstract_models import PREDICTION_FIELDS, RFM_FIELDS, RunStatus
from segmentation.conf import app_settings
from segmentation.services.aggregation import aggregate_customers, as_of_bounds, order_day_log
from segmentation.services.lookups import CURRENT_RUN_CACHE_KEY
from segmentation.services.pipeline import Segmenter, current_parameters, summarise

logger = logging.getLogger(__name__)

CustomerSegment = get_model("segmentation", "CustomerSegment")
SegmentationRun = get_model("segmentation", "SegmentationRun")

STAGES = ("aggregate", "score", "cluster", "predict", "write", "publish")
ProgressCallback = Callable[[str], None]


class NoCustomersError(ValueError):
    """No customer has a counted order on or before the as-of date."""


MEMBERSHIP_FIELDS = ("user_id", "guest_email", *RFM_FIELDS, "segment", "cluster", *PREDICTION_FIELDS)


def _membership_frame(df: pd.DataFrame, run_id: int) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "run_id": run_id,
            "user_id": pd.array(np.where(np.isfinite(df["user_id"]), df["user_id"], np.nan)).astype("Int64"),
            "guest_email": df["guest"].to_numpy(),
            "recency_days": df["recency_days"].to_numpy(dtype=np.int64),
            "frequency": df["frequency"].to_numpy(dtype=np.int64),
            "monetary": df["monetary"].to_numpy(dtype=float),
            "r_score": df["r_score"].to_numpy(dtype=np.int64),
            "f_score": df["f_score"].to_numpy(dtype=np.int64),
            "m_score": df["m_score"].to_numpy(dtype=np.int64),
            "segment": df["segment"].to_numpy(),
            "cluster": df["cluster"].to_numpy(dtype=np.int64),
            "p_alive": df["p_alive"].to_numpy(dtype=float),
            "expected_purchases_90d": df["expected_purchases_90d"].to_numpy(dtype=float),
            "predicted_value": df["predicted_value"].to_numpy(dtype=float),
            "overdue_gaps": df["overdue_gaps"].to_numpy(dtype=float),
            "churn_probability": df["churn_probability"].to_numpy(dtype=float),
            "churn_p_alive": df["churn_p_alive"].to_numpy(dtype=bool),
            "churn_overdue": df["churn_overdue"].to_numpy(dtype=bool),
            "churn_risk": df["churn_risk"].to_numpy(dtype=bool),
        }
    )
    return out


def write_memberships(
    run: Any, df: pd.DataFrame, using: str = "default", progress: ProgressCallback | None = None
) -> int:
    """Store one membership row per customer: COPY on PostgreSQL, batched bulk_create elsewhere."""
    rows = _membership_frame(df, run.pk)
    if not len(rows):
        return 0
    if connections[using].vendor == "postgresql":
        return copy_frame_to_table(rows, CustomerSegment._meta.db_table, ["run_id", *MEMBERSHIP_FIELDS], using)
    batch = app_settings.BATCH_SIZE
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    objs = []
    for rec in records:
        for key in ("monetary", "predicted_value"):
            if rec[key] is not None:
                rec[key] = Decimal(str(round(rec[key], 2)))
        objs.append(CustomerSegment(**rec))
    for start in range(0, len(objs), batch):
        CustomerSegment.objects.using(using).bulk_create(objs[start : start + batch], batch_size=batch)
    return len(objs)


def _mark_stale_runs(using: str) -> None:
    stale = timezone.now() - timedelta(seconds=app_settings.TASK_LOCK_TIMEOUT)
    SegmentationRun.objects.using(using).filter(status=RunStatus.RUNNING, created__lt=stale).update(
        status=RunStatus.FAILED, error="interrupted (worker lost before the run finished)", finished=timezone.now()
    )


def find_equivalent_run(as_of: date, using: str = "default") -> Any | None:
    """The current run if it is for ``as_of`` with today's parameters (so a retry can skip work)."""
    run = SegmentationRun.objects.using(using).filter(is_current=True).first()
    if run and run.as_of == as_of and run.parameters.get("settings") == _json_roundtrip(current_parameters()):
        return run
    return None


def _json_roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class _StageClock:
    """The seconds each stage of a run took (``timings``), each finished stage reported to the
    progress callback (the callback's own time is not counted)."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.started = self.last = time.perf_counter()

    def since_last(self) -> float:
        return round(time.perf_counter() - self.last, 3)

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    def done(self, name: str) -> None:
        self.timings[name] = self.since_last()
        if self.progress:
            self.progress(name)
        self.last = time.perf_counter()


def run_segmentation(
    as_of: date | None = None,
    *,
    using: str = "default",
    progress: ProgressCallback | None = None,
    skip_if_done: bool = False,
) -> Any:
    """Segment every customer as of ``as_of`` (default: today) and make the run current on success.

    Returns the :class:`SegmentationRun`. On any error the run is stored as
    ``failed`` with the error and the previous current run stays current;
    the exception is re-raised for the caller (task retry, command exit code).
    """
    as_of = as_of or timezone.localdate()
    if skip_if_done:
        done = find_equivalent_run(as_of, using)
        if done is not None:
            return done
    _mark_stale_runs(using)
    params = current_parameters()
    run = SegmentationRun.objects.using(using).create(
        as_of=as_of, status=RunStatus.RUNNING, parameters={"settings": _json_roundtrip(params)}
    )
    clock = _StageClock(progress)
    try:
        df, summary, k, silhouette = _segment(run, as_of, params, using, clock)
        counts = summarise(df, summary)
        written = write_memberships(run, df, using)
        clock.done("write")
        _publish(run, written, k, silhouette, counts, summary, clock, using)
        clock.done("publish")
        prune_runs(using)
        clock.timings["prune"] = clock.since_last()
        SegmentationRun.objects.using(using).filter(pk=run.pk).update(timings=clock.timings)
        logger.info("segmentation run %s as of %s: %d customers, k=%s", run.pk, as_of, written, k)
        return run
    except Exception as exc:
        _record_failure(run, exc, clock, using)
        raise


def _segment(
    run: Any, as_of: date, params: dict[str, Any], using: str, clock: _StageClock
) -> tuple[pd.DataFrame, dict[str, Any], int | None, float | None]:
    """Aggregate, score, cluster and predict: the customers' frame, the run's summary so far, the
    number of clusters and their silhouette. What aggregation reports goes to ``run.parameters``.
    Raises :class:`NoCustomersError` when no customer has a counted order."""
    df, info = aggregate_customers(as_of, using)
    run.parameters.update(info)
    clock.done("aggregate")
    if df.empty:
        raise NoCustomersError(
            f"no customer has a counted order on or before {as_of:%Y-%m-%d} "
            f"({info['excluded_orders_currency']} orders excluded for their currency)"
        )
    summary: dict[str, Any] = {}
    seg = Segmenter(params)
    seg.score(df)
    clock.done("score")
    k, silhouette = seg.cluster(df, summary)
    clock.done("cluster")
    log = order_day_log(as_of, using) if params["clv_enabled"] else None
    seg.predict(df, summary, log, end_day=int(as_of_bounds(as_of)[0].timestamp() // 86400))
    clock.done("predict")
    return df, summary, k, silhouette


def _publish(
    run: Any,
    written: int,
    k: int | None,
    silhouette: float | None,
    counts: dict[str, int],
    summary: dict[str, Any],
    clock: _StageClock,
    using: str,
) -> None:
    """Make ``run`` the one current run, succeeded, with its figures (one transaction); the cached
    current run is dropped once it commits."""
    with transaction.atomic(using=using):
        SegmentationRun.objects.using(using).filter(is_current=True).exclude(pk=run.pk).update(is_current=False)
        run.status = RunStatus.SUCCEEDED
        run.is_current = True
        run.finished = timezone.now()
        run.n_customers = written
        run.k = k
        run.silhouette = silhouette
        run.segment_counts = counts
        run.summary = summary
        clock.timings["publish"] = 0.0
        clock.timings["total"] = clock.total()
        run.timings = clock.timings
        run.save(using=using)
        transaction.on_commit(lambda: cache.delete(CURRENT_RUN_CACHE_KEY), using=using)


def _record_failure(run: Any, exc: Exception, clock: _StageClock, using: str) -> None:
    """Store ``run`` as failed with the error (and, unless there were no customers, where it
    happened), its memberships deleted. Called while ``exc`` is being handled."""
    delete_memberships([run.pk], using)
    run.status = RunStatus.FAILED
    run.is_current = False
    run.finished = timezone.now()
    run.error = f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, NoCustomersError):
        run.error += "\n\n" + traceback.format_exc(limit=8)
    clock.timings["total"] = clock.total()
    run.timings = clock.timings
    run.save(using=using)
    logger.warning("segmentation run %s failed: %s", run.pk, exc)


def prune_runs(using: str = "default") -> int:
    """Delete runs beyond ``KEEP_RUNS`` (never the current one); one DELETE per table."""
    keep = app_settings.KEEP_RUNS
    if keep is None:
        return 0
    ids = list(SegmentationRun.objects.using(using).order_by("-created", "-pk").values_list("pk", flat=True))
    old = [pk for pk in ids[keep:]]
    old = list(SegmentationRun.objects.using(using).filter(pk__in=old, is_current=False).values_list("pk", flat=True))
    if old:
        delete_memberships(old, using)
        SegmentationRun.objects.using(using).filter(pk__in=old).delete()
    return len(old)


def delete_memberships(run_ids: list[int], using: str = "default") -> int:
    """One SQL DELETE for the memberships of ``run_ids``.

    ``QuerySet.delete()`` would load every row into memory whenever any app
    listens to ``pre_delete``/``post_delete`` (gigabytes for a million rows);
    memberships have no dependants and no signals of their own, so a plain
    DELETE is equivalent.
    """
    if not run_ids:
        return 0
    conn = connections[using]
    table = conn.ops.quote_name(CustomerSegment._meta.db_table)
    placeholders = ", ".join(["%s"] * len(run_ids))
    with conn.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE run_id IN ({placeholders})", list(run_ids))
        return cursor.rowcount
