"""Forms of the staff pages: the report's filter, starting and ending an experiment, and changing
which model version serves (each change with a confirmation box)."""

from __future__ import annotations

from typing import Any

from django import forms
from oscar.core.loading import get_model

from recommender.conf import app_settings
from recommender.measurement.report import DEFAULT_UPLIFT

Experiment = get_model("recommender", "Experiment")


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class ReportFilterForm(forms.Form):
    """The report's period, experiment and the uplift its sample size is computed for."""

    start = forms.DateField(label="From", required=False, widget=DateInput())
    end = forms.DateField(label="To", required=False, widget=DateInput())
    experiment = forms.ModelChoiceField(
        label="Experiment",
        queryset=Experiment.objects.order_by("-started", "-pk"),
        required=False,
        empty_label="none: all shoppers",
    )
    uplift = forms.DecimalField(
        label="Uplift to detect (%)",
        required=False,
        min_value=0.1,
        max_value=100,
        decimal_places=2,
        initial=100 * DEFAULT_UPLIFT,
        help_text="the smallest improvement worth detecting, for the sample size",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The first day is after the last day.")
        return data


class StartExperimentForm(forms.Form):
    """A new experiment: every shopper is drawn again into personalised blocks or best sellers."""

    name = forms.CharField(label="Name", max_length=100)
    control_share = forms.FloatField(
        label="Share of shoppers who see best sellers",
        min_value=0.01,
        max_value=0.5,
        help_text="0.1 is 10 %: they see the same blocks filled with the shop's best sellers",
    )
    confirm = forms.BooleanField(
        label="I understand that every shopper is drawn again into a group, and that a running experiment ends",
        required=True,
        error_messages={"required": "Tick the box to confirm: starting an experiment re-draws every shopper."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["control_share"].initial = app_settings.EXPERIMENT_CONTROL_SHARE

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the experiment a name.")
        if Experiment.objects.filter(name=name).exists():
            raise forms.ValidationError("An experiment of that name exists already; choose another name.")
        return name


class EndExperimentForm(forms.Form):
    confirm = forms.BooleanField(
        label="I understand that every shopper then sees personalised blocks again",
        required=True,
        error_messages={"required": "Tick the box to confirm: ending the experiment changes every shopper's blocks."},
    )


class ConfirmVersionForm(forms.Form):
    """The confirmation that a live version is replaced (promote, roll back) or taken out of service."""

    confirm = forms.BooleanField(
        label="I understand that this changes the recommendations every shopper sees",
        required=True,
        error_messages={"required": "Tick the box to confirm: nothing was changed."},
    )


class IntentOfferForm(forms.Form):
    """The behaviour page's "offer for hesitating shoppers": an intent range (percent) and a discount."""

    min_percent = forms.DecimalField(label="Intent from (%)", min_value=0, max_value=100, decimal_places=2)
    max_percent = forms.DecimalField(label="Intent below (%)", min_value=0, max_value=100, decimal_places=2)
    percent = forms.DecimalField(label="Discount (%)", min_value=0.01, max_value=100, decimal_places=2, initial=5)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        low, high = data.get("min_percent"), data.get("max_percent")
        if low is not None and high is not None and not low < high:
            raise forms.ValidationError("The intent range must start below where it ends.")
        return data
