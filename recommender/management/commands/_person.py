"""The ``--user`` / ``--email`` / ``--visitor`` options shared by the personal data commands."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from recommender.services.personal_data import Person, find_person


def add_person_arguments(parser: CommandParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", type=int, metavar="ID", help="an account, and the browsers it used")
    who.add_argument(
        "--email", metavar="ADDRESS", help="every account with this address and the guest orders placed with it"
    )
    who.add_argument("--visitor", metavar="ID", help="a browser's visitor id (its anonymous events and guest orders)")


def person_from_options(options: dict[str, Any]) -> Person:
    try:
        return find_person(user=options.get("user"), email=options.get("email"), visitor=options.get("visitor"))
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
