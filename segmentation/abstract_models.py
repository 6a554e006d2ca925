"""Abstract models: a shop can subclass them in a forked app (Oscar's convention)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class AbstractSegmentationRun(models.Model):
    """One segmentation of all customers as of a date, kept as history.

    Exactly one succeeded run is ``is_current``; a run becomes current in the
    same transaction that takes the flag from the previous one, and only when
    it succeeded, so a failed run never replaces what shoppers and staff see.
    """

    as_of = models.DateField(_("as of"), db_index=True)
    status = models.CharField(_("status"), max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    is_current = models.BooleanField(_("current"), default=False, db_index=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    finished = models.DateTimeField(_("finished"), null=True, blank=True)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    n_customers = models.PositiveIntegerField(_("customers"), default=0)
    k = models.PositiveSmallIntegerField(_("clusters (k)"), null=True, blank=True)
    silhouette = models.FloatField(_("silhouette"), null=True, blank=True)
    segment_counts = models.JSONField(_("customers per segment"), default=dict, blank=True)
    # per segment: revenue share, mean R/F/M, mean predicted value; cluster descriptions;
    # predicted-value fit status; a sample of scatter points; churn-risk share
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        abstract = True
        app_label = "segmentation"
        ordering = ("-created",)
        get_latest_by = "created"
        verbose_name = _("segmentation run")
        verbose_name_plural = _("segmentation runs")
        constraints = [
            models.UniqueConstraint(
                fields=["is_current"], condition=models.Q(is_current=True), name="segmentation_one_current_run"
            )
        ]

    def __str__(self) -> str:
        return f"Segmentation as of {self.as_of:%Y-%m-%d} ({self.get_status_display()})"


#: A membership's RFM figures and scores, in field order (the membership COPY and the API list them).
RFM_FIELDS = ("recency_days", "frequency", "monetary", "r_score", "f_score", "m_score")

#: A membership's predicted value and churn figures, in field order.
PREDICTION_FIELDS = (
    "p_alive",
    "expected_purchases_90d",
    "predicted_value",
    "overdue_gaps",
    "churn_probability",
    "churn_p_alive",
    "churn_overdue",
    "churn_risk",
)


class AbstractCustomerSegment(models.Model):
    """A customer's RFM figures, scores, segment, cluster and predicted value in one run.

    A customer is a registered ``user`` or, for guest orders, a lower-cased
    ``guest_email`` (``user`` empty).
    """

    # Memberships are written a million at a time with COPY: no database-level foreign keys
    # (a per-row trigger check would triple the write time) and no automatic FK indexes; the
    # ORM still cascades deletes of runs and users, and the ids come from the same database.
    run = models.ForeignKey(
        "segmentation.SegmentationRun",
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("run"),
        db_constraint=False,
        db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("user"),
        db_constraint=False,
        db_index=False,
    )
    guest_email = models.CharField(_("guest email"), max_length=254, blank=True)
    recency_days = models.IntegerField(_("recency (days)"))
    frequency = models.IntegerField(_("orders"))
    monetary = models.DecimalField(_("net spend"), max_digits=14, decimal_places=2)
    r_score = models.PositiveSmallIntegerField("R")
    f_score = models.PositiveSmallIntegerField("F")
    m_score = models.PositiveSmallIntegerField("M")
    segment = models.CharField(_("segment"), max_length=64)
    cluster = models.SmallIntegerField(_("cluster"), null=True, blank=True)
    # the chance of an order within the run's horizon (``summary["horizon_months"]``): 1 - churn_probability
    p_alive = models.FloatField(_("probability of an order in the horizon"), null=True, blank=True)
    expected_purchases_90d = models.FloatField(_("expected purchases (90 days)"), null=True, blank=True)
    # expected spend over the run's horizon (``summary["horizon_months"]``)
    predicted_value = models.DecimalField(
        _("predicted value over the horizon"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    overdue_gaps = models.FloatField(_("overdue (typical gaps)"), null=True, blank=True)
    # P(no purchase over the predicted value's horizon), from the run's chosen forecast model
    churn_probability = models.FloatField(_("churn probability"), null=True, blank=True)
    churn_p_alive = models.BooleanField(_("low probability of an order"), default=False)
    churn_overdue = models.BooleanField(_("overdue"), default=False)
    churn_risk = models.BooleanField(_("churn risk"), default=False)

    class Meta:
        abstract = True
        app_label = "segmentation"
        verbose_name = _("customer segment")
        verbose_name_plural = _("customer segments")
        indexes = [
            models.Index(fields=["run", "segment"], name="seg_member_run_segment"),
            # (run, user) rather than (user, run): a run's rows land at the end of the index, so
            # writing a million of them does not touch the pages of older runs
            models.Index(fields=["run", "user"], name="seg_member_run_user", condition=models.Q(user__isnull=False)),
            models.Index(fields=["guest_email"], name="seg_member_guest", condition=~models.Q(guest_email="")),
        ]

    def __str__(self) -> str:
        return f"{self.customer_label}: {self.segment}"

    @property
    def customer_label(self) -> str:
        if self.user_id:
            user = self.user
            return getattr(user, "email", "") or str(user)
        return f"{self.guest_email} (guest)"

    @property
    def rfm_code(self) -> str:
        return f"{self.r_score}{self.f_score}{self.m_score}"


class AbstractSegmentTarget(models.Model):
    """A segment an offer condition targets (see :class:`segmentation.offers.SegmentCondition`).

    Oscar's ``Condition`` has only ``range``, ``type``, ``value`` and
    ``proxy_class``; the target segment names live in these rows instead of
    being squeezed into one of those fields, so a condition may target several
    segments and the names stay readable and editable. Segment names are for
    staff: each target also holds the name and description its members see.
    """

    condition = models.ForeignKey(
        "offer.Condition", on_delete=models.CASCADE, related_name="segment_targets", verbose_name=_("condition")
    )
    segment = models.CharField(_("segment"), max_length=64)
    # Segment names are internal ("At risk"): members see these instead, wherever we list the offer
    shopper_name = models.CharField(
        _("name shown to shoppers"),
        max_length=128,
        blank=True,
        help_text=_("What members of this segment see as the offer's name (never the segment's name)."),
    )
    shopper_description = models.CharField(
        _("description shown to shoppers"),
        max_length=500,
        blank=True,
        help_text=_("What members of this segment read about the offer (plain text)."),
    )

    class Meta:
        abstract = True
        app_label = "segmentation"
        verbose_name = _("segment target")
        verbose_name_plural = _("segment targets")
        constraints = [models.UniqueConstraint(fields=["condition", "segment"], name="segmentation_target_unique")]

    def __str__(self) -> str:
        return self.segment
