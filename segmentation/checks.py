"""System checks for the ``SEGMENTATION`` settings (ids ``segmentation.E0xx``)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core import checks

from personalization_core.checks import check_settings_dict
from segmentation.conf import SETTINGS_NAME, app_settings


def check_segmentation_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CMessage]:
    # inside the check, not at module level: every process imports this module (AppConfig.ready),
    # the checks run only in management commands, and segmentation.ml loads SciPy and scikit-learn
    from segmentation.ml.forecast import CANDIDATES
    from segmentation.ml.rfm import RuleTableError, validate_rules

    errors = check_settings_dict(app_settings, "segmentation")
    if errors:
        return errors
    rules = app_settings.SEGMENT_RULES
    if rules is not None:
        try:
            validate_rules(rules)
        except RuleTableError as exc:
            errors.append(
                checks.Error(
                    f"{SETTINGS_NAME}['SEGMENT_RULES'] is invalid: {'; '.join(exc.errors)}",
                    hint="See the rule table format in segmentation/ml/rfm.py and README.md.",
                    id="segmentation.E003",
                )
            )
    if not 2 <= app_settings.K_MIN <= app_settings.K_MAX:
        errors.append(
            checks.Error(
                f"{SETTINGS_NAME} K_MIN={app_settings.K_MIN}, K_MAX={app_settings.K_MAX}: need 2 <= K_MIN <= K_MAX.",
                hint="The default range is 2..8.",
                id="segmentation.E004",
            )
        )
    for currency, rate in app_settings.CURRENCY_RATES.items():
        try:
            ok = Decimal(str(rate)) > 0
        except (InvalidOperation, ValueError):
            ok = False
        if not ok:
            errors.append(
                checks.Error(
                    f"{SETTINGS_NAME}['CURRENCY_RATES'][{currency!r}] = {rate!r} is not a positive number.",
                    hint='Write rates as strings or numbers, e.g. {"EUR": "0.86"}.',
                    id="segmentation.E005",
                )
            )
    model = app_settings.FORECAST_MODEL
    unknown = [c for c in app_settings.FORECAST_CANDIDATES if c not in CANDIDATES]
    horizon = app_settings.FORECAST_HORIZON_MONTHS
    bad_horizon = horizon != "auto" and not (
        isinstance(horizon, int) and not isinstance(horizon, bool) and horizon >= 1
    )
    if unknown or (model != "auto" and model not in CANDIDATES) or bad_horizon:
        errors.append(
            checks.Error(
                f"{SETTINGS_NAME}: FORECAST_MODEL={model!r}, "
                f"FORECAST_CANDIDATES={list(app_settings.FORECAST_CANDIDATES)!r}, "
                f'FORECAST_HORIZON_MONTHS={horizon!r}: unknown model, or a horizon neither "auto" nor months >= 1.',
                hint=f'FORECAST_MODEL is "auto" or one of {sorted(CANDIDATES)}; candidates come from the same list.',
                id="segmentation.E007",
            )
        )
    for key in ("CHURN_P_ALIVE_BELOW", "CHURN_PROBABILITY_ABOVE"):
        value = getattr(app_settings, key)
        if not 0 <= value <= 1:
            errors.append(
                checks.Error(
                    f"{SETTINGS_NAME}[{key!r}] = {value!r} must be within [0, 1].", hint="", id="segmentation.E006"
                )
            )
    return errors


def register() -> None:
    checks.register(check_segmentation_settings)
