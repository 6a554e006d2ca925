"""System-check helpers shared by both apps' ``checks`` modules."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from personalization_core.conf import AppSettings


def check_settings_dict(app_settings: AppSettings, app: str) -> list[checks.CMessage]:
    """``settings.<name>`` is a dict of declared keys with values of their declared types (``<app>.E002``)."""
    name = app_settings.name
    errors: list[checks.CMessage] = []
    user = getattr(settings, name, None)
    if user is None:
        return errors
    if not isinstance(user, dict):
        return [checks.Error(f"settings.{name} must be a dict.", hint="See README.md, Settings.", id=f"{app}.E002")]
    for key, value in user.items():
        declared = app_settings.declared.get(key)
        if declared is None:
            errors.append(
                checks.Error(
                    f"Unknown setting {name}[{key!r}].",
                    hint=f"Known keys: {', '.join(sorted(app_settings.declared))}.",
                    id=f"{app}.E002",
                )
            )
        elif not isinstance(value, declared.type):
            errors.append(
                checks.Error(
                    f"{name}[{key!r}] is {type(value).__name__}, expected {declared.type_text()}.",
                    hint=f"The default is {declared.default!r}.",
                    id=f"{app}.E002",
                )
            )
    return errors
