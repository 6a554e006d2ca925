"""System checks of the shop's placements and rungs (a fork's included)."""

from __future__ import annotations

from typing import Any

from django.core import checks

from recommender.conf import app_settings


def check_placements(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    """Every placement's rungs exist, and ``PLACEMENT_OPTIONS`` names only placements that exist."""
    from recommender.serving.service import recommender

    service = recommender()
    known = set(service.rungs.names())
    errors: list[checks.CMessage] = []
    for name, placement in service.placements.by_name.items():
        missing = [rung for rung in placement.rungs if rung not in known]
        if missing:
            errors.append(
                checks.Error(
                    f"The placement {name!r} names rungs that are not defined: {', '.join(missing)}.",
                    hint=f"Define them in Rungs (recommender_serving.rungs), or use: {', '.join(sorted(known))}.",
                    id="recommender.E022",
                )
            )
    unknown = sorted(set(app_settings.PLACEMENT_OPTIONS) - set(service.placements.by_name))
    if unknown:
        errors.append(
            checks.Error(
                f"RECOMMENDER['PLACEMENT_OPTIONS'] names placements that do not exist: {', '.join(unknown)}.",
                hint=f"Placements: {', '.join(service.placements.names())}.",
                id="recommender.E023",
            )
        )
    return errors


def register() -> None:
    checks.register(check_placements)
