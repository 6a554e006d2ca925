"""The running experiment and each person's arm.

A person is ``u<user id>`` when signed in, else ``v<visitor id>``. Their arm is a hash of the
experiment's salt and that key: the same on every request and in every process, with nothing
stored. At login the visitor's arm carries over to the account (:func:`carry_over`), so a shopper
who signs in mid-visit stays in their arm; an account keeps its arm on every device.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from oscar.core.loading import get_model

from recommender.abstract_models import Arm
from recommender.conf import app_settings
from recommender.serving.blocks import Visitor
from recommender.serving.safety import safe

EXPERIMENT_KEY = "recommender:experiment"
#: how long a process trusts the running experiment it read (starting or ending one applies at once here)
EXPERIMENT_SECONDS = 10.0
_seen: tuple[Any, float] = (None, -1e9)


def running_experiment(memo: dict[str, Any] | None = None) -> Any | None:
    """The experiment running now (None: none; everyone sees the shop's recommendations)."""
    global _seen
    memo = {} if memo is None else memo
    if "experiment" not in memo:
        experiment, when = _seen
        if time.monotonic() - when > EXPERIMENT_SECONDS:
            experiment = safe(_read_running, None, "experiment")
            _seen = (experiment, time.monotonic())
        memo["experiment"] = experiment
    return memo["experiment"]


def _read_running() -> Any | None:
    Experiment = get_model("recommender", "Experiment")
    now = timezone.now()
    running = Experiment.objects.filter(started__lte=now).exclude(ended__lte=now)
    return running.order_by("-started", "-pk").first()


def forget_running() -> None:
    """Read the running experiment again on the next request (after starting or ending one)."""
    global _seen
    _seen = (None, -1e9)


def hashed_arm(salt: str, person: str, control_share: float) -> str:
    """The arm a hash of ``salt`` and ``person`` draws: control with probability ``control_share``."""
    digest = hashlib.blake2b(f"{salt}:{person}".encode(), digest_size=8).digest()
    draw = int.from_bytes(digest, "big") / 2**64
    return Arm.CONTROL if draw < control_share else Arm.TREATMENT


def carried_key(experiment_id: int, person: str) -> str:
    return f"recommender:arm:{experiment_id}:{person}"


def arm_of(visitor: Visitor, memo: dict[str, Any] | None = None) -> tuple[Any | None, str]:
    """``(experiment, arm)`` of this person now; ``(None, "")`` outside any experiment (no
    experiment running, or a visitor nobody knows yet)."""
    memo = {} if memo is None else memo
    experiment = running_experiment(memo)
    if experiment is None or not visitor.key:
        return None, ""
    key = ("arm", visitor.key)
    if key not in memo:
        arm = hashed_arm(experiment.salt, visitor.key, experiment.control_share)
        if visitor.user is not None:  # an account may have carried over its visitor's arm at login
            carried = safe(lambda: _carried(experiment.pk, visitor.key), None, "experiment")
            arm = carried or arm
        memo[key] = arm
    return experiment, memo[key]


def _carried(experiment_id: int, person: str) -> str | None:
    key = carried_key(experiment_id, person)
    arm = cache.get(key)
    if arm is None:
        Exposure = get_model("recommender", "Exposure")
        arm = Exposure.objects.filter(experiment_id=experiment_id, person=person).values_list("arm", flat=True).first()
        cache.set(key, arm or "", 3600)
    return arm or None


def carry_over(visitor_key: str, user_key: str) -> None:
    """At login: the account takes the arm (and the exposure) of the visitor who signed in, unless it
    is in the experiment already."""
    experiment = running_experiment()
    if experiment is None or not visitor_key:
        return
    Exposure = get_model("recommender", "Exposure")
    try:
        with transaction.atomic():
            if not Exposure.objects.filter(experiment=experiment, person=user_key).exists():
                Exposure.objects.filter(experiment=experiment, person=visitor_key).update(person=user_key)
    except (DatabaseError, IntegrityError):
        return
    safe(lambda: cache.delete(carried_key(experiment.pk, user_key)), None, "cache")


def start_experiment(name: str, control_share: float | None = None) -> Any:
    """End the running experiment (if any) and start a new one, with a new salt (a new draw)."""
    Experiment = get_model("recommender", "Experiment")
    share = app_settings.EXPERIMENT_CONTROL_SHARE if control_share is None else control_share
    if not 0.01 <= float(share) <= 0.5:
        raise ValueError(f"the control share must be between 0.01 and 0.5, not {share}")
    now = timezone.now()
    with transaction.atomic():
        Experiment.objects.filter(ended__isnull=True).update(ended=now)
        experiment = Experiment.objects.create(name=name, control_share=float(share), started=now)
    forget_running()
    return experiment


def end_experiment() -> Any | None:
    """End the running experiment; everyone sees the shop's recommendations again."""
    experiment = running_experiment()
    if experiment is None:
        return None
    experiment.ended = timezone.now()
    experiment.save(update_fields=["ended"])
    forget_running()
    return experiment
