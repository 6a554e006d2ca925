"""Query parameters of the staff API and dashboard: one parser for both (DRF serializers).

Every parameter a segmentation page or endpoint reads goes through a serializer here, so that
malformed input is a 400 with the reason, never a 500 or a silent misread:

* integers are ASCII digits only (``²`` and ``٣`` are not numbers here) and within the
  range of the database column;
* text is at most as long as the column it is compared with, and never holds a NUL
  character (PostgreSQL refuses those; DRF's ``CharField`` rejects them);
* the ordering is one of an exact list (``--monetary`` is not ``-monetary``);
* an empty value (``?segment=``, what an unselected form field sends) means "not given".

:func:`filter_memberships` applies the validated filters, run included, the same way for the API
and the dashboard's segment page; each answers a malformed parameter with a 400 of its own kind
(DRF's JSON for the API, a plain-text page for the dashboard).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from personalization_core.fields import MAX_INT, StrictIntegerField

__all__ = [
    "MAX_INT",
    "ORDERINGS",
    "GuestParams",
    "MembershipFilters",
    "OfferForm",
    "RunParams",
    "SegmentPageParams",
    "StrictIntegerField",
    "WhatIfParams",
    "error_text",
    "filter_memberships",
]

#: a segment name is stored in a ``CharField(max_length=64)``
SEGMENT_NAME_LENGTH = 64
EMAIL_LENGTH = 254
#: what the dashboard's segment page may be ordered by (each ascending or, with ``-``, descending)
ORDER_FIELDS = ("monetary", "recency_days", "frequency", "predicted_value", "p_alive", "churn_probability")
ORDERINGS = tuple(prefix + name for name in ORDER_FIELDS for prefix in ("", "-"))


@extend_schema_field({"type": "string", "pattern": r"^(current|all|[0-9]{1,10})$", "default": "current"})
class RunField(serializers.Field):
    """``current`` (the default), ``all`` or a run id (as :class:`StrictIntegerField`)."""

    default_error_messages = {"invalid": "Give a run id, `current` or `all`."}

    def to_internal_value(self, data: Any) -> str | int:
        if data in ("current", "all"):
            return data
        if not isinstance(data, str | int) or isinstance(data, bool):
            self.fail("invalid")
        return StrictIntegerField().run_validation(data)

    def to_representation(self, value: Any) -> str:
        return str(value)


def _without_blanks(data: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters that have a value (``?x=`` or only spaces is "not given"); for a repeated one,
    its last value."""
    values = {key: data.get(key) for key in data}
    return {key: value for key, value in values.items() if value is not None and str(value).strip() != ""}


class Params(serializers.Serializer):
    """Base of the parsers below: blank values are dropped before validation."""

    def __init__(self, *args: Any, data: Any = serializers.empty, **kwargs: Any) -> None:
        if data is not serializers.empty and data is not None:
            data = _without_blanks(data)
        super().__init__(*args, data=data, **kwargs)

    @classmethod
    def parse(cls, data: Any) -> dict[str, Any]:
        """The validated parameters; ``rest_framework.exceptions.ValidationError`` if any is malformed."""
        params = cls(data=data)
        params.is_valid(raise_exception=True)
        return dict(params.validated_data)


class MembershipFilters(Params):
    """Filters of ``/api/segmentation/memberships/`` (the names the API documents)."""

    run = RunField(required=False, help_text="a run id, `current` (default) or `all`")
    segment = serializers.CharField(required=False, max_length=SEGMENT_NAME_LENGTH, help_text="segment name")
    user = StrictIntegerField(required=False, help_text="user id")
    guest_email = serializers.CharField(required=False, max_length=EMAIL_LENGTH, help_text="guest e-mail")
    cluster = StrictIntegerField(required=False, min_value=-1, help_text="cluster number")
    churn_risk = serializers.BooleanField(required=False, help_text="`true` or `false`")


class SegmentPageParams(Params):
    """Parameters of the dashboard's segment page (its form's names, mapped onto the API's)."""

    run = StrictIntegerField(required=False)
    name = serializers.CharField(required=False, max_length=SEGMENT_NAME_LENGTH, source="segment")
    churn = serializers.ChoiceField(required=False, choices=("1", "0"))
    cluster = StrictIntegerField(required=False, min_value=-1)
    r = StrictIntegerField(required=False, max_value=5)
    f = StrictIntegerField(required=False, max_value=5)
    m = StrictIntegerField(required=False, max_value=5)
    q = serializers.CharField(required=False, max_length=EMAIL_LENGTH)
    order = serializers.ChoiceField(required=False, choices=ORDERINGS)
    page = StrictIntegerField(required=False)
    format = serializers.ChoiceField(required=False, choices=("html", "csv"))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "churn" in attrs:
            attrs["churn_risk"] = attrs.pop("churn") == "1"
        return attrs


class RunParams(Params):
    """``?run=<id>`` of the dashboard pages (absent: the current run)."""

    run = StrictIntegerField(required=False)


class GuestParams(Params):
    """``?email=`` of a guest customer's page."""

    email = serializers.CharField(max_length=EMAIL_LENGTH)


class WhatIfParams(Params):
    """The overview's "which segment would this customer be in?" form."""

    wi_r = StrictIntegerField(min_value=0, max_value=100_000)
    wi_f = StrictIntegerField(max_value=10_000_000)
    wi_m = serializers.DecimalField(max_digits=14, decimal_places=2)


class OfferForm(Params):
    """POST of the overview's "create an offer for this segment" button."""

    segment = serializers.CharField(max_length=SEGMENT_NAME_LENGTH)
    percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal(100),
        required=False,
        default=Decimal(10),
    )


def filter_memberships(qs: QuerySet, params: Mapping[str, Any]) -> QuerySet:
    """``qs`` narrowed by validated filters (from :class:`MembershipFilters` or :class:`SegmentPageParams`).

    ``run`` is a run id, ``"current"`` (also when not given) or ``"all"``.
    """
    run = params.get("run", "current")
    if run == "current":
        qs = qs.filter(run__is_current=True)
    elif run != "all":
        qs = qs.filter(run_id=run)
    if "segment" in params:
        qs = qs.filter(segment=params["segment"])
    if "user" in params:
        qs = qs.filter(user_id=params["user"])
    if "guest_email" in params:
        qs = qs.filter(guest_email=params["guest_email"].strip().lower())
    if "cluster" in params:
        qs = qs.filter(cluster=params["cluster"])
    if "churn_risk" in params:
        qs = qs.filter(churn_risk=params["churn_risk"])
    for dim in ("r", "f", "m"):
        if dim in params:
            qs = qs.filter(**{f"{dim}_score": params[dim]})
    if "q" in params:
        qs = qs.filter(user__email__icontains=params["q"]) | qs.filter(guest_email__icontains=params["q"])
    return qs


def error_text(detail: Any) -> str:
    """A ValidationError's detail as one line per parameter (for the dashboard's 400 page)."""
    if isinstance(detail, Mapping):
        return "\n".join(
            f"{key}: {' '.join(map(str, value if isinstance(value, list) else [value]))}"
            for key, value in detail.items()
        )
    return " ".join(map(str, detail if isinstance(detail, list) else [detail]))
