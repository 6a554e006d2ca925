"""``python manage.py export_personal_data --user ID | --email ADDRESS | --visitor ID [--output FILE]``.

Writes the person's events, orders, segments (with their dates) and current recommendations (with
their reasons) as JSON (GDPR Art. 15 and 20); standard output without ``--output``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from recommender.management.commands._person import add_person_arguments, person_from_options
from recommender.services.personal_data import export


class Command(BaseCommand):
    help = "Export one person's events, orders, segments and current recommendations as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        add_person_arguments(parser)
        parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here (default: standard output)")

    def handle(self, *args: Any, output: Path | None = None, **options: Any) -> None:
        person = person_from_options(options)
        text = json.dumps(export(person), indent=2, ensure_ascii=False) + "\n"
        if output is None:
            self.stdout.write(text, ending="")
            return
        output.write_text(text, encoding="utf-8")
        self.stderr.write(f"Wrote the personal data of {person.label} to {output}")
