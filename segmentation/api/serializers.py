from __future__ import annotations

from rest_framework import serializers

from segmentation.abstract_models import PREDICTION_FIELDS, RFM_FIELDS
from segmentation.models import CustomerSegment, SegmentationRun


class SegmentationRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = SegmentationRun
        fields = (
            "id",
            "as_of",
            "status",
            "is_current",
            "created",
            "finished",
            "n_customers",
            "k",
            "silhouette",
            "segment_counts",
            "timings",
            "error",
        )


class SegmentationRunDetailSerializer(SegmentationRunSerializer):
    segments = serializers.SerializerMethodField()
    clusters = serializers.SerializerMethodField()
    predicted_value = serializers.SerializerMethodField()
    backtest = serializers.SerializerMethodField()

    class Meta(SegmentationRunSerializer.Meta):
        fields = (
            *SegmentationRunSerializer.Meta.fields,
            "parameters",
            "segments",
            "clusters",
            "predicted_value",
            "backtest",
        )

    def get_segments(self, run: SegmentationRun) -> list:
        return (run.summary or {}).get("segments", [])

    def get_clusters(self, run: SegmentationRun) -> list:
        return (run.summary or {}).get("clusters", [])

    def get_predicted_value(self, run: SegmentationRun) -> dict:
        return (run.summary or {}).get("clv", {})

    def get_backtest(self, run: SegmentationRun) -> dict:
        """The run's backtest of its forecast models (see ``segmentation.ml.backtest``)."""
        return (run.summary or {}).get("backtest", {})


class CustomerSegmentSerializer(serializers.ModelSerializer):
    email = serializers.SerializerMethodField()
    run = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = CustomerSegment
        fields = ("id", "run", "user", "email", "guest_email", "segment", "cluster", *RFM_FIELDS, *PREDICTION_FIELDS)

    def get_email(self, obj: CustomerSegment) -> str:
        return getattr(obj.user, "email", "") if obj.user_id else obj.guest_email
