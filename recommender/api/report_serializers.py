"""The shape of ``GET /api/recommendations/report/`` (:func:`recommender.measurement.report.report`)."""

from __future__ import annotations

from rest_framework import serializers


class ReportQuery(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="first day (YYYY-MM-DD; default: see `experiment`)")
    end = serializers.DateField(required=False, help_text="last day, included (YYYY-MM-DD)")
    experiment = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="an experiment's id; absent: the running experiment; empty or `none`: all shoppers, no "
        "comparison. Without dates the period is the experiment's span, else the last 30 days",
    )
    uplift = serializers.FloatField(
        required=False, min_value=0.1, max_value=100, help_text="the relative uplift to detect, in % (default 5)"
    )


def _rate(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


class PlacementRow(serializers.Serializer):
    placement = serializers.CharField(help_text="the placement (empty in `placement_totals`: all placements)")
    title = serializers.CharField()
    arm = serializers.CharField(help_text='"treatment", "control" or "" (outside any experiment)')
    arm_label = serializers.CharField()
    impressions = serializers.IntegerField(help_text="blocks shown")
    clicks = serializers.IntegerField()
    ctr = _rate("clicks / impressions (null without impressions)")
    attributed_lines = serializers.IntegerField(help_text="order lines bought after a click in the block")
    click_to_order = _rate("attributed lines / clicks")
    attributed_quantity = serializers.IntegerField()
    attributed_revenue = serializers.FloatField(help_text="value of the attributed lines, tax included")


class DayRow(serializers.Serializer):
    day = serializers.DateField()
    placement = serializers.CharField()
    arm = serializers.CharField()
    impressions = serializers.IntegerField()
    clicks = serializers.IntegerField()
    ctr = _rate("clicks / impressions")


class ArmRow(serializers.Serializer):
    arm = serializers.CharField()
    arm_label = serializers.CharField()
    visitors = serializers.IntegerField(help_text="people first shown a block in the period")
    buyers = serializers.IntegerField(help_text="of them, those with an order since")
    orders = serializers.IntegerField()
    revenue = serializers.FloatField()
    conversion_rate = _rate("buyers / visitors")
    orders_per_visitor = _rate("orders / visitors")
    revenue_per_visitor = _rate("revenue / visitors")
    revenue_per_visitor_low = _rate("95 % interval of the arm's revenue per visitor (Student t)")
    revenue_per_visitor_high = _rate("95 % interval of the arm's revenue per visitor (Student t)")


class SampleSizeOut(serializers.Serializer):
    control = serializers.IntegerField()
    treatment = serializers.IntegerField()
    total = serializers.IntegerField()
    baseline = serializers.FloatField()
    relative_uplift = serializers.FloatField()
    alpha = serializers.FloatField()
    power = serializers.FloatField()


class ComparisonOut(serializers.Serializer):
    metric = serializers.CharField()
    kind = serializers.CharField(help_text='"proportion" or "mean"')
    method = serializers.CharField()
    alpha = serializers.FloatField()
    n_control = serializers.IntegerField()
    n_treatment = serializers.IntegerField()
    control = _rate("the control's value")
    treatment = _rate("the treatment's value")
    uplift = _rate("treatment / control - 1")
    uplift_low = _rate("lower bound of the uplift's interval (null: none)")
    uplift_high = _rate("upper bound of the uplift's interval (null: none)")
    diff = _rate("treatment - control")
    diff_low = _rate("lower bound of the difference's interval")
    diff_high = _rate("upper bound of the difference's interval")
    p_value = _rate("p-value of no difference")
    conclusive = serializers.BooleanField()
    verdict = serializers.CharField(help_text="what the figures say, in plain words")
    sample_size = SampleSizeOut(allow_null=True, help_text="visitors each arm needs to detect the uplift")
    sample_size_note = serializers.CharField(allow_blank=True)


class ExperimentOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    started = serializers.DateTimeField()
    ended = serializers.DateTimeField(allow_null=True)
    control_share = serializers.FloatField()
    running = serializers.BooleanField()


class Report(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    experiment = ExperimentOut(allow_null=True)
    relative_uplift = serializers.FloatField(help_text="the uplift the sample sizes are for (0.05 = +5 %)")
    currency = serializers.CharField()
    computed = serializers.DateTimeField(help_text="when the figures were counted (cached for a minute)")
    placements = PlacementRow(many=True)
    placement_totals = PlacementRow(many=True)
    days = DayRow(many=True)
    arms = ArmRow(many=True, help_text="per arm (an experiment only)")
    comparisons = ComparisonOut(many=True, help_text="treatment against control (an experiment only)")
    verdict = serializers.CharField(allow_blank=True, help_text="the revenue per visitor verdict")
    seconds = serializers.FloatField(help_text="seconds the figures took to count")
