"""System-check helpers shared by both apps' ``checks`` modules."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


def check_settings_dict(name: str, defaults: dict[str, Any], types: dict[str, Any], app: str) -> list[checks.CMessage]:
    """The dict ``settings.<name>`` exists as a dict, has known keys and well-typed values (``<app>.E002``)."""
    errors: list[checks.CMessage] = []
    user = getattr(settings, name, None)
    if user is None:
        return errors
    if not isinstance(user, dict):
        return [checks.Error(f"settings.{name} must be a dict.", hint="See README.md, Settings.", id=f"{app}.E002")]
    for key, value in user.items():
        if key not in defaults:
            errors.append(
                checks.Error(
                    f"Unknown setting {name}[{key!r}].",
                    hint=f"Known keys: {', '.join(sorted(defaults))}.",
                    id=f"{app}.E002",
                )
            )
        elif key in types and not isinstance(value, types[key]):
            errors.append(
                checks.Error(
                    f"{name}[{key!r}] is {type(value).__name__}, expected {types[key]}.",
                    hint=f"The default is {defaults[key]!r}.",
                    id=f"{app}.E002",
                )
            )
    return errors
