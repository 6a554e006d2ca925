"""One training run: the shop's behaviour -> candidate models -> honest evaluation -> gate -> promote.

For each kind of model (:class:`~recommender.abstract_models.ModelKind`):

1. its rows of the behaviour log (:mod:`recommender.exporters`) become sequences: per person
   (sessions cut by ``SESSION_GAP_MINUTES``), or per order for "bought together";
2. the ``HOLDOUT_DAYS`` up to the kind's last recorded activity are held out (a shop quiet for
   weeks, or an imported history, is judged on its most recent real days); the candidate and
   popularity are fitted on the rest, and every held-out event is a full-ranking test case (its
   history: everything the person did before it). Too few cases there: with a live version the
   kind keeps it; without one the most recent ``CARVED_SHARE`` of its history is held out
   instead; with still too few the kind says "not enough data yet"
   (:mod:`recommender.services.kind_data`);
3. the live version's configuration is trained on the same data and scored on the same cases
   (when it is the candidate's configuration, the candidate is that refit;
   :mod:`recommender.services.evaluation`);
4. the promotion gate (:mod:`recommender.services.gate`, a class a shop can replace) decides;
   a rejected candidate's row stays, with the reason and the test's figures;
5. a promoted candidate is refitted on all data (holdout included), written to storage,
   verified by loading it back, and only then made live (one transaction).

The purchase-intent kind (``next_action``) follows the same steps with its own data, metrics
and gate (:mod:`recommender.services.intent`).

A failure in one kind fails that version and the run, never the live versions. The whole run
is bounded by ``TRAINING_TIME_BUDGET_MINUTES``: cheap kinds first, the next-item model gets the
time that is left.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import inspect
import json
import logging
import resource
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone
from oscar.core.loading import get_model

from recommender import artifacts, exporters
from recommender.abstract_models import ModelKind, TrainingStatus, VersionStatus
from recommender.conf import app_settings
from recommender.loading import get_class
from recommender.ml import progress as fit_progress
from recommender.ml.base import Recommender
from recommender.ml.datasets import chunk_sessions, sessions_from_events
from recommender.ml.registry import get_model_class
from recommender.services import versions
from recommender.services.evaluation import evaluate
from recommender.services.gate import Decision
from recommender.services.kind_data import KindData, SkipKind, local_datetime, prepare

logger = logging.getLogger(__name__)

#: kinds in the order a run trains them (cheap first; the next-item model gets the time left)
KIND_ORDER = (
    ModelKind.TRENDING,
    ModelKind.TRENDING_SEGMENT,
    ModelKind.ALSO_BOUGHT,
    ModelKind.ALSO_VIEWED,
    ModelKind.BOUGHT_TOGETHER,
    ModelKind.NEXT_ACTION,
    ModelKind.NEXT_ITEM,
)

ProgressCallback = Callable[[str, dict[str, Any]], None]


class NothingToLearn(ValueError):
    """The shop has no orders and no captured events before the as-of time."""


# -- choosing models -------------------------------------------------------------------------


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def next_item_model_name() -> str:
    """The configured next-item model, or the best one this installation can train.

    Without torch the default is ``hybrid`` (no network; :func:`build_model` logs why); a
    configured neural model without torch is a system check error (``recommender.E008``).
    """
    return app_settings.NEXT_ITEM_MODEL or ("blend" if torch_available() else "hybrid")


def build_model(kind: str, *, event_types: int = 1, time_budget: float | None = None) -> tuple[str, Recommender]:
    """A fresh, unfitted candidate for ``kind`` (registry name, model)."""
    if kind == ModelKind.NEXT_ITEM:
        name = next_item_model_name()
        if not app_settings.NEXT_ITEM_MODEL and name == "hybrid":
            logger.warning(
                "torch is not installed: the next-item model is 'hybrid' instead of 'blend' "
                "(pip install 'django-oscar-personalization[torch]' for the neural models)"
            )
        cls = get_model_class(name)
        params: dict[str, Any] = {}
        if name == "blend":
            # time and event-type inputs: +0.35 HR@20 on Online Retail with time (benchmarks/README.md)
            net = {"use_time": True, "use_event_types": event_types > 1}
            # weights chosen on 3,000 validation cases (10,000 by default): the weight search scores every
            # case with every component, which dominates the blend's fit on a large shop
            params = {
                "network": app_settings.RNN_CELL,
                "component_params": {app_settings.RNN_CELL: net},
                "seed": 0,
                "max_validation_cases": 3000,
            }
        elif name in ("gru", "lstm"):
            params = {"use_time": True, "use_event_types": event_types > 1, "seed": 0}
        overrides = dict(app_settings.NEXT_ITEM_PARAMS)
        for model_name, extra in (overrides.pop("component_params", None) or {}).items():  # merged, not replaced
            params.setdefault("component_params", {}).setdefault(model_name, {}).update(extra)
        params.update(overrides)
        if time_budget is not None and "time_budget" in inspect.signature(cls.__init__).parameters:
            params["time_budget"] = time_budget
        return name, cls(**params)
    if kind in (ModelKind.ALSO_BOUGHT, ModelKind.ALSO_VIEWED, ModelKind.BOUGHT_TOGETHER):
        return "itemknn", get_model_class("itemknn")()
    if kind == ModelKind.TRENDING:
        return "trending", get_model_class("trending")(half_life_days=float(app_settings.TRENDING_HALF_LIFE_DAYS))
    if kind == ModelKind.TRENDING_SEGMENT:
        cls = get_model_class("segment_pop")
        return "segment_pop", cls(half_life_days=float(app_settings.TRENDING_HALF_LIFE_DAYS))
    raise ValueError(f"unknown model kind {kind!r}")


# -- the gate -------------------------------------------------------------------------------


def promotion_gate() -> Any:
    """The shop's promotion policy (:class:`recommender.services.gate.PromotionGate` unless forked)."""
    return get_class("recommender_training.gate", "PromotionGate")()


# -- the run ---------------------------------------------------------------------------------


def _load_libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None  # glibc only
    except OSError:
        return None


_LIBC = _load_libc() if sys.platform.startswith("linux") else None


def release_memory() -> None:
    """Collect garbage and hand the C heap's free pages back to the system (glibc ``malloc_trim``).

    The steps of a run free hundreds of megabytes of arrays of every size; glibc keeps the freed
    pages of its heaps resident (between live blocks), so without this each step starts higher and
    the run's peak grows step by step (about 300 MB on a shop of 1.5 million events)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def as_of_datetime(day: Any | None) -> datetime:
    """Data strictly before this instant is used: the start of the day after ``day`` is not;
    ``as_of`` as a date means "up to the start of that day" (the demo passes the day after the
    last order)."""
    if day is None:
        return timezone.now()
    if isinstance(day, datetime):
        return day if timezone.is_aware(day) else timezone.make_aware(day)
    return timezone.make_aware(datetime(day.year, day.month, day.day))


def settings_snapshot() -> dict[str, Any]:
    """The values of the settings declared with ``training=True`` (``recommender.conf``), as JSON."""
    values = app_settings.as_dict()
    snap = {s.name: values[s.name] for s in app_settings.declared.values() if s.training}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in snap.items()}


def mark_interrupted_runs() -> int:
    """Runs and versions left ``running``/``training`` by a killed worker are failed (we hold the lock)."""
    TrainingRun = get_model("recommender", "TrainingRun")
    ModelVersion = get_model("recommender", "ModelVersion")
    now = timezone.now()
    n = TrainingRun.objects.filter(status=TrainingStatus.RUNNING).update(
        status=TrainingStatus.FAILED, error="interrupted (the worker stopped before the run finished)", finished=now
    )
    ModelVersion.objects.filter(status=VersionStatus.TRAINING).update(
        status=VersionStatus.FAILED, reason="interrupted (the worker stopped before training finished)"
    )
    return n


def train_recommenders(
    as_of: Any | None = None,
    kinds: list[str] | None = None,
    *,
    trigger: str = "",
    progress: ProgressCallback | None = None,
) -> Any:
    """Run one training (see the module doc); returns the :class:`TrainingRun` row.

    Raises nothing for data problems: a shop with nothing to learn gets a run marked
    "nothing to learn yet", and a kind that fails marks its version and the run failed.
    """
    TrainingRun = get_model("recommender", "TrainingRun")
    wanted = [ModelKind(k) for k in (kinds or KIND_ORDER)]
    wanted = [k for k in KIND_ORDER if k in wanted]
    when = as_of_datetime(as_of)
    mark_interrupted_runs()
    params = settings_snapshot() | {"kinds": [str(k) for k in wanted], "next_item_model": next_item_model_name()}
    run = TrainingRun.objects.create(as_of=when, status=TrainingStatus.RUNNING, trigger=trigger, parameters=params)
    started = time.monotonic()
    deadline = started + 60.0 * float(app_settings.TRAINING_TIME_BUDGET_MINUTES)
    timings: dict[str, Any] = {}
    counts: dict[str, Any] = {}
    report = progress or (lambda step, info: None)
    try:
        t = time.perf_counter()
        log = exporters.export_behaviour(when)
        timings["export"] = round(time.perf_counter() - t, 3)
        timings["export_steps"] = log.timings
        counts["log"] = log.counts
        counts["peak_rss_mb"] = {"export": peak_rss_mb()}  # where the run's memory grows, step by step
        report("export", log.counts)
        if log.empty:
            raise NothingToLearn(
                f"nothing to learn yet: no orders and no product views or basket additions of recommendable "
                f"products before {when:%Y-%m-%d %H:%M}"
            )
        failures: list[str] = []
        counts["kinds"] = {}
        for kind in wanted:
            t = time.perf_counter()
            outcome = _train_kind(run, kind, log, deadline, report)
            release_memory()  # what the kind's data and models held, before the next kind builds its own
            timings[str(kind)] = round(time.perf_counter() - t, 3)
            counts["kinds"][str(kind)] = outcome
            counts["peak_rss_mb"][str(kind)] = peak_rss_mb()
            if outcome.get("status") == VersionStatus.FAILED:
                failures.append(f"{kind}: {outcome.get('reason', '')}")
        run.status = TrainingStatus.FAILED if failures else TrainingStatus.SUCCEEDED
        run.error = "\n".join(failures)
    except NothingToLearn as exc:
        run.status = TrainingStatus.NOTHING_TO_LEARN
        run.error = str(exc)
        logger.info("training run %s: %s", run.pk, exc)
    except Exception as exc:
        run.status = TrainingStatus.FAILED
        run.error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}"
        logger.exception("training run %s failed", run.pk)
    timings["total"] = round(time.monotonic() - started, 3)
    run.timings = timings
    run.counts = counts
    run.peak_rss_mb = peak_rss_mb()
    run.finished = timezone.now()
    run.save()
    return run


def _train_kind(
    run: Any, kind: str, log: exporters.BehaviourLog, deadline: float, report: ProgressCallback
) -> dict[str, Any]:
    """Train, evaluate, gate and maybe promote one kind; returns a summary for the run's counts."""
    if time.monotonic() >= deadline:
        return {"status": "skipped", "reason": "the run's time budget was spent before this kind"}
    if kind == ModelKind.NEXT_ACTION:  # a classifier of actions, not a ranking of products
        return get_class("recommender_training.intent", "train_kind")(run, log, deadline, report)
    live_row = versions.live_version(kind)
    try:
        data = prepare(kind, log, has_live=live_row is not None)
    except SkipKind as exc:
        report(str(kind), {"skipped": str(exc)})
        return {"status": "skipped", "reason": str(exc)}
    n_types = int(data.frame["event_type"].nunique())
    name, candidate = build_model(kind, event_types=n_types)
    reference, live_note = _live_configuration(live_row, name, candidate)
    budget = _share_time_budget(kind, deadline, candidate, reference)
    version = _create_version(run, kind, name, candidate, data)
    timings: dict[str, float] = {}
    try:
        live = (live_row, reference) if reference is not None else None
        decision = _fit_and_decide(kind, data, version, candidate, live, live_note, timings, report)
        if not decision.promote:
            version.status, version.reason, version.timings = VersionStatus.REJECTED, decision.reason, timings
            version.save()
            report(str(kind), {"rejected": decision.reason})
            return {"status": VersionStatus.REJECTED, "version": version.pk, "reason": decision.reason}
        model, product_ids = candidate, list(data.split.item_index.ids[: data.train.n_items])
        if app_settings.REFIT_AFTER_EVALUATION:
            # the evaluated models are not needed any more: free them before the refit builds the same
            # model again (two large models at once would double the peak memory)
            model = candidate = reference = live = None
            release_memory()
            t = time.perf_counter()
            with _fit_progress(kind, report):
                model, product_ids = _refit(kind, data, n_types, budget)
            timings["refit"] = round(time.perf_counter() - t, 3)
            report(str(kind), {"refitted": name, "seconds": timings["refit"]})
        _store_and_promote(version, kind, model, product_ids, data, decision.reason, timings)
        report(str(kind), {"promoted": version.pk})
        return {"status": VersionStatus.LIVE, "version": version.pk, "reason": decision.reason}
    except Exception as exc:
        logger.exception("training %s failed (run %s)", kind, run.pk)
        return _fail_version(version, kind, exc, timings, report)


def _share_time_budget(
    kind: str, deadline: float, candidate: Recommender, reference: Recommender | None
) -> float | None:
    """Seconds for each fit of the next-item model (``None`` for the other kinds), set as the
    ``time_budget`` of the models that take one.

    The fits of the kind share what is left of the run's budget equally: the candidate, the live
    configuration when it differs, and the refit on all data (so the served model trains as long).
    """
    if kind != ModelKind.NEXT_ITEM:
        return None
    fits = 1 + (reference is not None and reference is not candidate) + bool(app_settings.REFIT_AFTER_EVALUATION)
    budget = max(1.0, (deadline - time.monotonic()) / fits)
    for model in (candidate, reference):
        if model is not None and hasattr(model, "time_budget"):
            model.time_budget = budget
    return budget


def _create_version(run: Any, kind: str, name: str, candidate: Recommender, data: KindData) -> Any:
    """The kind's new version row, ``training``, with its parameters, data span and counts."""
    ModelVersion = get_model("recommender", "ModelVersion")
    train = data.train
    return ModelVersion.objects.create(
        run=run,
        kind=kind,
        model_name=name,
        status=VersionStatus.TRAINING,
        parameters=_json_params(candidate),
        data_start=local_datetime(data.frame["timestamp"].min()),
        data_end=local_datetime(data.last_activity),
        holdout_start=local_datetime(data.split.cutoff),
        counts={
            "sequences": len(train),
            "events": train.n_events,
            "items": train.n_items,
            "held_out_sequences": len(data.split.test),
            "held_out_cases": len(data.cases),
            "unknown_labels": data.cases.n_unknown_labels,
            "people": int(data.frame["person"].nunique()),
        },
    )


def _fit_and_decide(
    kind: str,
    data: KindData,
    version: Any,
    candidate: Recommender,
    live: tuple[Any, Recommender] | None,
    live_note: str,
    timings: dict[str, float],
    report: ProgressCallback,
) -> Decision:
    """Fit the candidate (and the live configuration ``live[1]`` when it is another model) on the
    training split, evaluate them on the held-out cases and return the promotion gate's decision.
    The version gets the metrics (not saved yet), ``timings`` the seconds of each step."""
    with _fit_progress(kind, report):
        t = time.perf_counter()
        candidate.fit(data.train)
        timings["fit"] = round(time.perf_counter() - t, 3)
        report(str(kind), {"fitted": version.model_name, "seconds": timings["fit"]})
        if live is not None and live[1] is not candidate:
            t = time.perf_counter()
            live[1].fit(data.train)
            timings["fit_live_configuration"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    evaluation = evaluate(kind, data, candidate, live)
    timings["evaluate"] = round(time.perf_counter() - t, 3)
    decision = promotion_gate().decide(evaluation)
    metrics = evaluation.metrics | {"gate_metric": app_settings.GATE_METRIC, "gate": decision.figures}
    if live_note:
        metrics["live_note"] = live_note
    version.metrics = metrics
    return decision


def _store_and_promote(
    version: Any,
    kind: str,
    model: Recommender,
    product_ids: list[int],
    data: KindData,
    reason: str,
    timings: dict[str, float],
) -> None:
    """Write the model to storage, verify it by loading it back, make the version live and prune
    the kind's old versions."""
    ModelVersion = get_model("recommender", "ModelVersion")
    t = time.perf_counter()
    meta = {"segments": data.segments} if data.segments is not None else {}
    version.artifact_path, version.files = artifacts.write(model, product_ids, kind, version.pk, meta)
    version.counts["items_served"] = len(product_ids)
    version.timings = timings
    version.save()
    versions.promote(version, reason=reason)
    timings["save_verify_promote"] = round(time.perf_counter() - t, 3)
    ModelVersion.objects.filter(pk=version.pk).update(timings=timings)
    versions.prune(kind)


def _fail_version(
    version: Any, kind: str, exc: Exception, timings: dict[str, float], report: ProgressCallback
) -> dict[str, Any]:
    """Mark the version failed with the error, its files (if any were written) deleted."""
    ModelVersion = get_model("recommender", "ModelVersion")
    if version.artifact_path:
        artifacts.delete(version.artifact_path, version.files)
    reason = f"{type(exc).__name__}: {exc}"
    ModelVersion.objects.filter(pk=version.pk).update(
        status=VersionStatus.FAILED, reason=reason, artifact_path="", files={}, timings=timings
    )
    report(str(kind), {"failed": reason})
    return {"status": VersionStatus.FAILED, "version": version.pk, "reason": reason}


def _fit_progress(kind: str, report: ProgressCallback) -> Any:
    """Pass the epochs a fit reports on to the run's progress callback, with the time left."""

    def epoch(info: dict[str, Any]) -> None:
        shown = {"epoch": f"{info['epoch']}/{info['epochs']}", "cell": info.get("cell")}
        if info.get("seconds_left") is not None:
            shown["left"] = f"{info['seconds_left']:.0f}s"
        report(str(kind), shown)

    return fit_progress.listening(epoch)


def configuration(model_name: str, parameters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What makes two versions "the same model": the registry name and the stored constructor
    parameters, without the time budget (each run's own)."""
    return model_name, {k: v for k, v in parameters.items() if k != "time_budget"}


def _live_configuration(live_row: Any, name: str, candidate: Recommender) -> tuple[Recommender | None, str]:
    """An unfitted model of the live version's configuration (``candidate`` itself when they are the
    same), or None with a note when there is no live version or its configuration cannot be built."""
    if live_row is None:
        return None, ""
    live_name, params = configuration(live_row.model_name, live_row.parameters or {})
    if (live_name, params) == configuration(name, _json_params(candidate)):
        return candidate, ""
    try:
        return get_model_class(live_name)(**params), ""
    except Exception as exc:  # a model no longer registered, parameters it no longer takes
        note = (
            f"the live version {live_row.pk}'s configuration ({live_name}) cannot be trained "
            f"({type(exc).__name__}: {exc}); compared with popularity only"
        )
        return None, note


def _refit(kind: str, data: KindData, n_types: int, budget: float | None) -> tuple[Recommender, list[int]]:
    """The same kind of model fitted on every row, holdout included, over all items seen."""
    seg = "segment" if "segment" in data.frame else None
    full, index = sessions_from_events(
        data.frame, key="key", item="item", timestamp="timestamp", event_type="event_type", segment=seg
    )
    _, model = build_model(kind, event_types=n_types, time_budget=budget)
    return model.fit(chunk_sessions(full, app_settings.MAX_HISTORY_LENGTH)), [int(i) for i in index.ids]


def _json_params(model: Recommender) -> dict[str, Any]:
    """The model's constructor parameters (scikit-learn style: ``__init__`` stores each as is)."""
    names = [p for p in inspect.signature(type(model).__init__).parameters if p != "self"]
    params = {name: getattr(model, name) for name in names if hasattr(model, name)}
    return json.loads(json.dumps(params, default=str))
