"""``python manage.py end_experiment``: end the running experiment; every shopper sees personalised
recommendations again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from recommender.measurement.assignment import end_experiment


class Command(BaseCommand):
    help = "End the running A/B experiment: every shopper sees personalised recommendations again."

    def handle(self, *args: Any, **options: Any) -> None:
        experiment = end_experiment()
        if experiment is None:
            self.stdout.write("No experiment is running.")
            return
        self.stdout.write(
            f"Experiment {experiment.name!r} (id {experiment.pk}) ended at {experiment.ended:%Y-%m-%d %H:%M}; "
            f"its report: /dashboard/recommendations/report/?experiment={experiment.pk}"
        )
