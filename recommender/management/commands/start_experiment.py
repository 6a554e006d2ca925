"""``python manage.py start_experiment NAME [--control-share 0.1]``: end the running experiment (if
any) and start a new one; every shopper is drawn again (a new salt)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from oscar.core.loading import get_model

from recommender.conf import app_settings
from recommender.measurement.assignment import start_experiment


class Command(BaseCommand):
    help = (
        "Start an A/B experiment: a share of shoppers (the control) sees the blocks filled with best sellers, "
        "the others personalised recommendations. Ends the running experiment."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="a name not used by an earlier experiment")
        parser.add_argument(
            "--control-share",
            type=float,
            default=None,
            help=f"share of shoppers in the control group, 0.01-0.5 (default EXPERIMENT_CONTROL_SHARE, "
            f"now {app_settings.EXPERIMENT_CONTROL_SHARE})",
        )

    def handle(self, *args: Any, name: str, control_share: float | None, **options: Any) -> None:
        Experiment = get_model("recommender", "Experiment")
        name = name.strip()
        if not name:
            raise CommandError("give the experiment a name")
        if Experiment.objects.filter(name=name).exists():
            raise CommandError(f"an experiment named {name!r} exists already; choose another name")
        try:
            experiment = start_experiment(name, control_share)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Experiment {experiment.name!r} (id {experiment.pk}) started at {experiment.started:%Y-%m-%d %H:%M}: "
            f"{experiment.control_share:.0%} of shoppers see best sellers in the blocks."
        )
