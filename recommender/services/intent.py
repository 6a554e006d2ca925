"""The purchase-intent kind (``next_action``) of a training run: behaviour -> next-action network -> gate.

1. The run's behaviour log becomes one stream of actions per person (views, basket additions, one
   purchase per order) with each action's next action in the same visit, or "leave" when the
   visit ended (``INTENT_VISIT_GAP_MINUTES``; :func:`recommender.ml.intent.action_streams`).
2. The ``HOLDOUT_DAYS`` up to the last activity are held out as for the other kinds: the networks
   learn from what was known before them, and every next action that became known in them is a
   test case (with too few and no live version, the most recent ``CARVED_SHARE`` instead).
3. The ``INTENT_CELL`` network (LSTM by default) is the candidate; the other cell is trained on the
   same data and stored beside it, with the two baselines: the majority action of the training
   days and "repeat the last action".
4. :class:`~recommender.services.gate.NextActionGate` decides; a promoted candidate is refitted on
   every action (``REFIT_AFTER_EVALUATION``), written (safetensors + JSON) with its intent bands
   (``INTENT_BAND_QUANTILES`` of the held-out intents), verified by loading it back with the NumPy
   scorer that serves it, and made live.

The kind gets at most a quarter of the run's time left when it starts (the fits share it), so the
next-item model after it keeps most of the budget.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from oscar.core.loading import get_model

from recommender import artifacts, exporters
from recommender.abstract_models import ModelKind, VersionStatus
from recommender.conf import app_settings
from recommender.loading import get_class
from recommender.ml import intent as ml_intent
from recommender.services import versions
from recommender.services.kind_data import CARVED_SHARE, local_datetime

logger = logging.getLogger(__name__)

KIND = ModelKind.NEXT_ACTION
#: share of the run's time left that the kind may use
TIME_SHARE = 0.25


class SkipIntent(ValueError):
    """The kind cannot be trained now (no torch, too little behaviour); not an error."""


def intent_gate() -> Any:
    return get_class("recommender_training.gate", "NextActionGate")()


def streams_from_log(log: exporters.BehaviourLog, as_of: float) -> ml_intent.ActionStreams:
    f = log.frame
    return ml_intent.action_streams(
        f["person"].to_numpy(),
        f["item"].to_numpy(),
        f["timestamp"].to_numpy(dtype=np.float64),
        f["event_type"].to_numpy(),
        f["order"].to_numpy(),
        60.0 * float(app_settings.INTENT_VISIT_GAP_MINUTES),
        as_of,
    )


def holdout_cutoff(streams: ml_intent.ActionStreams, has_live: bool) -> tuple[float, str]:
    """The start of the held-out days, and a note when they are not the usual ``HOLDOUT_DAYS``."""
    times = np.concatenate(streams.times)
    last, least = float(times.max()), app_settings.MIN_HOLDOUT_CASES
    cutoff = last - 86400.0 * float(app_settings.HOLDOUT_DAYS)
    n = _known(streams.held_out(cutoff))
    if n >= least and _known(streams.before(cutoff).targets):
        return cutoff, ""
    problem = f"{n} held-out next actions in the {app_settings.HOLDOUT_DAYS:g} days to {local_datetime(last):%Y-%m-%d}"
    if has_live:
        raise SkipIntent(f"{problem}, fewer than MIN_HOLDOUT_CASES = {least}: the live version stays")
    carved = float(np.quantile(times, 1.0 - CARVED_SHARE))
    if _known(streams.held_out(carved)) >= least and _known(streams.before(carved).targets):
        return carved, f"{problem}; judged on the last {CARVED_SHARE:.0%} of its history"
    raise SkipIntent(f"not enough data yet: {problem}, fewer than MIN_HOLDOUT_CASES = {least}")


def _known(targets: list[np.ndarray]) -> int:
    return int(sum(int((t >= 0).sum()) for t in targets))


def build_model(cell: str, time_budget: float | None) -> Any:
    """A fresh next-action network: probabilities trained unweighted (calibrated intents), the
    decision tuned for macro-F1 on the validation tail, windows of ``INTENT_HISTORY_LENGTH`` actions
    (what serving reads)."""
    from recommender.ml.nextaction import NextActionModel

    params: dict[str, Any] = {
        "n_classes": len(ml_intent.ACTIONS),
        "cell": cell,
        "class_weight_power": 0.0,
        "select_by": "log_loss",
        "max_len": app_settings.INTENT_HISTORY_LENGTH,
        "epochs": 20,
        "seed": 0,
    }
    params.update(app_settings.INTENT_PARAMS)
    params["cell"] = cell
    params["time_budget"] = time_budget
    return NextActionModel(**params)


def train_kind(run: Any, log: exporters.BehaviourLog, deadline: float, report: Any) -> dict[str, Any]:
    """Train, judge and maybe promote the purchase-intent model; a summary for the run's counts."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"status": "skipped", "reason": "torch is not installed (the purchase-intent network needs it)"}
    live_row = versions.live_version(KIND)
    streams = streams_from_log(log, run.as_of.timestamp())
    try:
        if not _known(streams.targets):
            raise SkipIntent("no behaviour with a known next action yet")
        cutoff, note = holdout_cutoff(streams, has_live=live_row is not None)
    except SkipIntent as exc:
        report(str(KIND), {"skipped": str(exc)})
        return {"status": "skipped", "reason": str(exc)}
    budget = max(1.0, TIME_SHARE * (deadline - time.monotonic()))
    fits = 2 + bool(app_settings.REFIT_AFTER_EVALUATION)
    version = _create_version(run, streams, cutoff)
    timings: dict[str, float] = {}
    try:
        model, metrics = _fit_and_measure(streams, cutoff, budget / fits, timings, report)
        if note:
            metrics["holdout_note"] = note
        decision = intent_gate().decide(metrics)
        version.metrics = metrics | {"gate_metric": "macro_f1", "gate": decision.figures}
        if not decision.promote:
            version.status, version.reason, version.timings = VersionStatus.REJECTED, decision.reason, timings
            version.save()
            report(str(KIND), {"rejected": decision.reason})
            return {"status": VersionStatus.REJECTED, "version": version.pk, "reason": decision.reason}
        if app_settings.REFIT_AFTER_EVALUATION:
            t = time.perf_counter()
            model = build_model(app_settings.INTENT_CELL, budget / fits)
            model.fit(streams.types, streams.times, streams.items, targets=streams.targets)
            timings["refit"] = round(time.perf_counter() - t, 3)
        version.metrics["intent"]["visitors_by_band"] = visitors_by_band(model, streams, version.metrics["intent"])
        _store_and_promote(version, model, decision.reason, timings)
        report(str(KIND), {"promoted": version.pk})
        return {"status": VersionStatus.LIVE, "version": version.pk, "reason": decision.reason}
    except Exception as exc:
        logger.exception("training %s failed (run %s)", KIND, run.pk)
        from recommender.services.training import _fail_version

        return _fail_version(version, KIND, exc, timings, report)


def _create_version(run: Any, streams: ml_intent.ActionStreams, cutoff: float) -> Any:
    ModelVersion = get_model("recommender", "ModelVersion")
    times = np.concatenate(streams.times)
    return ModelVersion.objects.create(
        run=run,
        kind=KIND,
        model_name="next_action",
        status=VersionStatus.TRAINING,
        parameters={k: v for k, v in build_model(app_settings.INTENT_CELL, None).get_params().items()},
        data_start=local_datetime(times.min()),
        data_end=local_datetime(times.max()),
        holdout_start=local_datetime(cutoff),
        counts={
            "people": len(streams),
            "events": streams.n_events,
            "known_next_actions": _known(streams.targets),
            "held_out_cases": _known(streams.held_out(cutoff)),
        },
    )


def _fit_and_measure(
    streams: ml_intent.ActionStreams, cutoff: float, budget: float, timings: dict[str, float], report: Any
) -> tuple[Any, dict[str, Any]]:
    """Both cells fitted on what was known at ``cutoff`` and scored on the held-out next actions,
    beside the baselines; the candidate and the metrics."""
    train, held = streams.before(cutoff), streams.held_out(cutoff)
    cells = [app_settings.INTENT_CELL, "gru" if app_settings.INTENT_CELL == "lstm" else "lstm"]
    fitted: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {}
    for cell in cells:
        t = time.perf_counter()
        model = build_model(cell, budget).fit(train.types, train.times, train.items, targets=train.targets)
        timings[f"fit_{cell}"] = round(time.perf_counter() - t, 3)
        report(str(KIND), {"fitted": cell, "seconds": timings[f"fit_{cell}"]})
        probs, y = model.predict_targets(streams.types, streams.times, streams.items, targets=held)
        fitted[cell] = (model, probs, y)
    model, probs, y = fitted[cells[0]]
    base = ml_intent.baseline_predictions(streams, held, ml_intent.majority_class(train.targets))
    intents = ml_intent.intent_of(probs)
    other_model, other_probs, _ = fitted[cells[1]]
    metrics = {
        "n_cases": len(y),
        "class_counts": dict(zip(ml_intent.ACTIONS, np.bincount(y, minlength=4).tolist(), strict=True)),
        "candidate": ml_intent.classification_metrics(y, model.decide(probs)) | {"cell": cells[0]},
        "other_cell": ml_intent.classification_metrics(y, other_model.decide(other_probs))
        | {"cell": cells[1], "brier": ml_intent.calibration(ml_intent.intent_of(other_probs), y)["brier"]},
        "majority": ml_intent.classification_metrics(base["y"], base["majority"]),
        "repeat_last": ml_intent.classification_metrics(base["y"], base["repeat_last"]),
        "calibration": ml_intent.calibration(intents, y),
        "intent": intent_summary(intents),
        "epochs": {cell: len(m.history_) for cell, (m, _, _) in fitted.items()},
    }
    return model, metrics


def intent_summary(intents: np.ndarray) -> dict[str, Any]:
    """The bands' cut points (``INTENT_BAND_QUANTILES`` of the held-out intents) and the intents'
    distribution over 20 equal bins of 0-1."""
    q = [float(v) for v in app_settings.INTENT_BAND_QUANTILES]
    cuts = np.quantile(intents, q) if len(intents) else np.array([0.0, 0.0])
    counts, edges = np.histogram(intents, bins=20, range=(0.0, 1.0))
    return {
        "quantiles": q,
        "bands": {"medium": float(cuts[0]), "high": float(cuts[1])},
        "distribution": {"edges": [round(float(e), 3) for e in edges], "counts": counts.tolist()},
    }


def visitors_by_band(model: Any, streams: ml_intent.ActionStreams, summary: dict[str, Any]) -> dict[str, Any]:
    """How many people active in the last ``INTENT_ACTIVE_DAYS`` days of the data are in each band,
    scored after their last ``INTENT_HISTORY_LENGTH`` actions (what serving reads)."""
    days = float(app_settings.INTENT_ACTIVE_DAYS)
    lasts = np.array([t[-1] for t in streams.times])
    active = np.flatnonzero(lasts >= lasts.max() - 86400.0 * days) if len(lasts) else np.zeros(0, dtype=np.int64)
    n = model.max_len
    types = [streams.types[i][-n:] for i in active]
    marks = [np.r_[np.full(len(t) - 1, -1), 0] for t in types]
    probs, _ = model.predict_targets(
        types, [streams.times[i][-n:] for i in active], [streams.items[i][-n:] for i in active], targets=marks
    )
    found = [ml_intent.band_of(float(s), summary["bands"]) for s in ml_intent.intent_of(probs)]
    return {"days": days, "counts": {band: found.count(band) for band in ml_intent.BANDS}}


def _store_and_promote(version: Any, model: Any, reason: str, timings: dict[str, float]) -> None:
    ModelVersion = get_model("recommender", "ModelVersion")
    t = time.perf_counter()
    meta = {"bands": version.metrics["intent"]["bands"]}
    version.artifact_path, version.files = artifacts.write(model, [], KIND, version.pk, meta)
    version.timings = timings
    version.save()
    versions.promote(version, reason=reason)
    timings["save_verify_promote"] = round(time.perf_counter() - t, 3)
    ModelVersion.objects.filter(pk=version.pk).update(timings=timings)
    versions.prune(KIND)
