"""System checks of the measurement settings."""

from __future__ import annotations

from typing import Any

from django.core import checks

from recommender.conf import app_settings


def check_measurement_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    errors: list[checks.CMessage] = []
    window = app_settings.ATTRIBUTION_WINDOW
    if window != "session" and not (isinstance(window, int) and not isinstance(window, bool) and window > 0):
        errors.append(
            checks.Error(
                f"RECOMMENDER['ATTRIBUTION_WINDOW'] is {window!r}.",
                hint='Use a number of hours > 0 (default 24) or "session".',
                id="recommender.E024",
            )
        )
    if app_settings.IMPRESSIONS_WRITER not in ("thread", "request"):
        errors.append(
            checks.Error(
                f"RECOMMENDER['IMPRESSIONS_WRITER'] is {app_settings.IMPRESSIONS_WRITER!r}.",
                hint='Use "thread" (default) or "request".',
                id="recommender.E026",
            )
        )
    share = app_settings.EXPERIMENT_CONTROL_SHARE
    if not 0.01 <= share <= 0.5:
        errors.append(
            checks.Error(
                f"RECOMMENDER['EXPERIMENT_CONTROL_SHARE'] is {share!r}.",
                hint="Use a share between 0.01 and 0.5 (default 0.1).",
                id="recommender.E025",
            )
        )
    return errors


def register() -> None:
    checks.register(check_measurement_settings)
