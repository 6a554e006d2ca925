"""``python manage.py erase_personal_data --user ID | --email ADDRESS | --visitor ID``: GDPR Art. 17.

Deletes the person's events, segment memberships and cached recommendations and stops the models
learning from their orders (Oscar keeps the orders), in one transaction; prints what it did.
See :mod:`recommender.services.personal_data`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from recommender.management.commands._person import add_person_arguments, person_from_options
from recommender.services.personal_data import erase

ROWS = (
    ("events", "events deleted"),
    ("segment_memberships", "segment memberships deleted (every run)"),
    ("orders_excluded", "orders no longer learnt from (Oscar keeps them)"),
    ("orders_already_excluded", "orders left out by an earlier erasure"),
    ("visitor_ids", "visitor ids whose cached blocks were dropped"),
    ("accounts", "accounts"),
)


class Command(BaseCommand):
    help = (
        "Erase one person's personal data from the recommender and segmentation apps (events, segment "
        "memberships, cached recommendations; their orders stop counting for the models)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_person_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        person = person_from_options(options)
        counts = erase(person)
        self.stdout.write(f"Erased the personal data of {person.label}:")
        width = max(len(label) for _key, label in ROWS)
        for key, label in ROWS:
            self.stdout.write(f"  {label:<{width}}  {counts.get(key, 0):>8,}")
        self.stdout.write("Trained models forget them at their next training (train_recommenders, or nightly).")
