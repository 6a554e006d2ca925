"""Abstract models: a shop can subclass them in a forked app (Oscar's convention)."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class EventKind(models.TextChoices):
    VIEW = "view", _("Product view")
    BASKET = "basket", _("Basket addition")
    PURCHASE = "purchase", _("Purchase")
    SEARCH = "search", _("Search")
    ORDER_STATUS = "order_status", _("Order status change")


class AbstractEvent(models.Model):
    """One thing a visitor or customer did, written once per signal.

    ``event_id`` is unique in the database: a replayed signal (or a retried
    import) computes the same id and the insert is ignored, never duplicated.
    No IP address or user agent is stored; ``visitor_id`` is a random
    pseudonymous id from a first-party cookie.
    """

    event_id = models.UUIDField(_("event id"), unique=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(_("kind"), max_length=16, choices=EventKind.choices, db_index=True)
    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    # user, visitor_id and product are indexed only as the first column of the composite indexes in
    # Meta: a single-column index beside them slows every insert and lures the planner into reading
    # all of a long-lived visitor's events to find their last few
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    visitor_id = models.CharField(_("visitor id"), max_length=32, blank=True)
    product = models.ForeignKey(
        "catalogue.Product",
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    order_number = models.CharField(_("order number"), max_length=128, blank=True, db_index=True)
    quantity = models.IntegerField(_("quantity"), null=True, blank=True)
    price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=12, blank=True)
    query = models.CharField(_("search query"), max_length=255, blank=True)
    old_status = models.CharField(_("old status"), max_length=100, blank=True)
    new_status = models.CharField(_("new status"), max_length=100, blank=True)

    class Meta:
        abstract = True
        app_label = "recommender"
        ordering = ("-created",)
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            models.Index(fields=["user", "created"], name="rec_event_user_created"),
            models.Index(fields=["visitor_id", "created"], name="rec_event_visitor_created"),
            models.Index(fields=["product", "kind"], name="rec_event_product_kind"),
        ]

    def __str__(self) -> str:
        who = f"user {self.user_id}" if self.user_id else f"visitor {self.visitor_id[:8]}"
        return f"{self.get_kind_display()} by {who} at {self.created:%Y-%m-%d %H:%M}"


class ModelKind(models.TextChoices):
    """What a trained model is for: one live version of each at a time."""

    NEXT_ITEM = "next_item", _("Recommended for you (next item)")
    ALSO_BOUGHT = "also_bought", _("Customers who bought this also bought")
    ALSO_VIEWED = "also_viewed", _("Customers who viewed this also viewed")
    BOUGHT_TOGETHER = "bought_together", _("Frequently bought together")
    TRENDING = "trending", _("Trending now")
    TRENDING_SEGMENT = "trending_segment", _("Trending in the customer's segment")
    NEXT_ACTION = "next_action", _("Purchase intent (next action)")


class TrainingStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    NOTHING_TO_LEARN = "empty", _("Nothing to learn yet")
    FAILED = "failed", _("Failed")


class VersionStatus(models.TextChoices):
    TRAINING = "training", _("Training")
    REJECTED = "rejected", _("Rejected")
    LIVE = "live", _("Live")
    RETIRED = "retired", _("Retired")
    FAILED = "failed", _("Failed")


class AbstractTrainingRun(models.Model):
    """One run of ``train_recommenders``: what it read, how long each step took, how it ended."""

    as_of = models.DateTimeField(_("data up to"), db_index=True)
    status = models.CharField(
        _("status"), max_length=16, choices=TrainingStatus.choices, default=TrainingStatus.RUNNING
    )
    trigger = models.CharField(_("started by"), max_length=32, blank=True)
    created = models.DateTimeField(_("started"), auto_now_add=True, db_index=True)
    finished = models.DateTimeField(_("finished"), null=True, blank=True)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    peak_rss_mb = models.FloatField(_("peak memory (MB)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        abstract = True
        app_label = "recommender"
        ordering = ("-created", "-pk")
        get_latest_by = "created"
        verbose_name = _("training run")
        verbose_name_plural = _("training runs")

    def __str__(self) -> str:
        return f"Training run {self.pk} ({self.get_status_display()}) as of {self.as_of:%Y-%m-%d %H:%M}"


class AbstractModelVersion(models.Model):
    """A trained model of one kind: its metrics on held-out days, its files, whether it serves.

    Files live in Django storage under ``artifact_path`` (safetensors + JSON + the product ids
    of its items, never pickle). At most one version of each kind is ``live`` (a database
    constraint); promotion flips rows in one transaction after the files were verified.
    """

    run = models.ForeignKey(
        "recommender.TrainingRun",
        verbose_name=_("training run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="versions",
    )
    kind = models.CharField(_("kind"), max_length=32, choices=ModelKind.choices, db_index=True)
    model_name = models.CharField(_("model"), max_length=64)
    status = models.CharField(
        _("status"), max_length=16, choices=VersionStatus.choices, default=VersionStatus.TRAINING, db_index=True
    )
    reason = models.TextField(_("why this status"), blank=True)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    metrics = models.JSONField(_("metrics on held-out days"), default=dict, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    data_start = models.DateTimeField(_("data from"), null=True, blank=True)
    data_end = models.DateTimeField(_("data up to"), null=True, blank=True)
    holdout_start = models.DateTimeField(_("held out from"), null=True, blank=True)
    artifact_path = models.CharField(_("files"), max_length=255, blank=True)
    files = models.JSONField(_("file checksums (sha256)"), default=dict, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    promoted_at = models.DateTimeField(_("promoted"), null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("promoted by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        abstract = True
        app_label = "recommender"
        ordering = ("-created", "-pk")
        get_latest_by = "created"
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(status="live"), name="recommender_one_live_version_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.pk} ({self.model_name}, {self.get_status_display()})"

    @property
    def has_files(self) -> bool:
        return bool(self.artifact_path)

    @property
    def described_model(self) -> str:
        """The model's registry name, with the recurrent cell of a neural one: "blend (LSTM)"."""
        params = self.parameters or {}
        cell = params.get("network") if self.model_name == "blend" else params.get("cell")
        return f"{self.model_name} ({str(cell).upper()})" if cell else self.model_name


class AbstractBury(models.Model):
    """A product, or every product of a category, that is never recommended (staff decide)."""

    product = models.ForeignKey(
        "catalogue.Product",
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    category = models.ForeignKey(
        "catalogue.Category",
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    note = models.CharField(_("why"), max_length=255, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        abstract = True
        app_label = "recommender"
        verbose_name = _("never recommend")
        verbose_name_plural = _("never recommend")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(product__isnull=False) | models.Q(category__isnull=False),
                name="recommender_bury_product_or_category",
            )
        ]

    def __str__(self) -> str:
        return str(self.product or self.category)


class AbstractErasedOrder(models.Model):
    """An order whose customer had their personal data erased (GDPR Art. 17).

    Oscar keeps the order for the shop's accounting; this row only says that no model learns
    from it any more: the training export (:mod:`recommender.exporters`) and segmentation
    (``segmentation.services.counted_orders``) leave it out, so it no longer counts as anybody's
    behaviour. It holds no identifier of the person (only the order, which the shop has anyway).
    """

    order = models.OneToOneField("order.Order", verbose_name=_("order"), on_delete=models.CASCADE, related_name="+")
    erased = models.DateTimeField(_("erased"), default=timezone.now)

    class Meta:
        abstract = True
        app_label = "recommender"
        verbose_name = _("order of an erased person")
        verbose_name_plural = _("orders of erased persons")
        permissions = [
            ("erase_personal_data", _("Can erase a person's events, segments and recommendations")),
            ("export_personal_data", _("Can export a person's events, segments and recommendations")),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id} (not learnt from since {self.erased:%Y-%m-%d})"


# -- measuring what recommendations earn ------------------------------------------------------


class Arm(models.TextChoices):
    TREATMENT = "treatment", _("personalised (treatment)")
    CONTROL = "control", _("best sellers (control)")


def new_salt() -> str:
    return secrets.token_hex(16)


class AbstractExperiment(models.Model):
    """A randomised holdout: while it runs, each person is assigned for good to the treatment (the
    shop's recommendations) or the control (the same blocks filled with best sellers), by a hash
    of the person and the experiment's salt; a new experiment has a new salt, so a new draw."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    salt = models.CharField(_("salt"), max_length=32, default=new_salt, editable=False)
    control_share = models.FloatField(
        _("control share"),
        default=0.1,
        validators=[MinValueValidator(0.01), MaxValueValidator(0.5)],
        help_text=_("share of shoppers who see best sellers instead of personal recommendations"),
    )
    started = models.DateTimeField(_("started"), default=timezone.now)
    ended = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        abstract = True
        app_label = "recommender"
        ordering = ("-started", "-pk")
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")

    def __str__(self) -> str:
        return self.name


class AbstractExposure(models.Model):
    """One person in one experiment: their arm, when they first saw a block, and the orders they
    placed since (counted when placed: the report's per-visitor figures come from these rows)."""

    experiment = models.ForeignKey(
        "recommender.Experiment", verbose_name=_("experiment"), on_delete=models.CASCADE, related_name="exposures"
    )
    person = models.CharField(_("person"), max_length=40, help_text=_("u<user id> or v<visitor id>"))
    arm = models.CharField(_("arm"), max_length=10, choices=Arm.choices)
    first_seen = models.DateTimeField(_("first shown a block"), default=timezone.now)
    orders = models.PositiveIntegerField(_("orders since"), default=0)
    revenue = models.DecimalField(_("revenue since"), max_digits=14, decimal_places=2, default=0)

    class Meta:
        abstract = True
        app_label = "recommender"
        verbose_name = _("person in an experiment")
        verbose_name_plural = _("people in experiments")
        constraints = [models.UniqueConstraint(fields=["experiment", "person"], name="recommender_exposure_once")]
        indexes = [models.Index(fields=["person"], name="rec_exposure_person")]


class AbstractImpression(models.Model):
    """One block shown to one shopper: what was shown, in which order, by which model and rung."""

    impression_id = models.UUIDField(_("impression id"), unique=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(_("shown"), default=timezone.now, db_index=True)
    placement = models.CharField(_("placement"), max_length=64)
    experiment = models.ForeignKey(
        "recommender.Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    arm = models.CharField(_("arm"), max_length=10, choices=Arm.choices, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    visitor_id = models.CharField(_("visitor id"), max_length=32, blank=True)
    product_ids = models.JSONField(_("products shown, in order"), default=list)
    rungs = models.JSONField(_("source of each product"), default=list)
    version_ids = models.JSONField(_("model version of each product"), default=list)

    class Meta:
        abstract = True
        app_label = "recommender"
        ordering = ("-created",)
        verbose_name = _("impression")
        verbose_name_plural = _("impressions")
        indexes = [
            models.Index(fields=["user"], name="rec_impression_user"),
            models.Index(fields=["visitor_id"], name="rec_impression_visitor"),
            models.Index(fields=["experiment", "placement", "created"], name="rec_impression_report"),
        ]


class AbstractClick(models.Model):
    """A click on a recommended product, recognised on the product page it led to (or reported by
    a headless front end) from the link's signed token."""

    impression_id = models.UUIDField(_("impression id"))
    created = models.DateTimeField(_("clicked"), default=timezone.now, db_index=True)
    placement = models.CharField(_("placement"), max_length=64)
    position = models.PositiveSmallIntegerField(_("position"))
    rung = models.CharField(_("source"), max_length=32, blank=True)
    version_id = models.IntegerField(_("model version"), null=True, blank=True)
    experiment = models.ForeignKey(
        "recommender.Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    arm = models.CharField(_("arm"), max_length=10, choices=Arm.choices, blank=True)
    product = models.ForeignKey(
        "catalogue.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    visitor_id = models.CharField(_("visitor id"), max_length=32, blank=True)
    session = models.CharField(_("browser session (hashed)"), max_length=16, blank=True)

    class Meta:
        abstract = True
        app_label = "recommender"
        ordering = ("-created",)
        verbose_name = _("click")
        verbose_name_plural = _("clicks")
        constraints = [
            models.UniqueConstraint(fields=["impression_id", "product"], name="recommender_click_once_per_impression")
        ]
        indexes = [
            models.Index(fields=["user", "product", "created"], name="rec_click_user"),
            models.Index(fields=["visitor_id", "product", "created"], name="rec_click_visitor"),
        ]


class AbstractAttributedLine(models.Model):
    """An order line bought after a click on that product in a block, within the attribution window
    (the last such click counts; a line is attributed once)."""

    line = models.OneToOneField("order.Line", verbose_name=_("order line"), on_delete=models.CASCADE, related_name="+")
    click = models.ForeignKey(
        "recommender.Click", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created = models.DateTimeField(_("ordered"), default=timezone.now, db_index=True)
    placement = models.CharField(_("placement"), max_length=64)
    experiment = models.ForeignKey(
        "recommender.Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    arm = models.CharField(_("arm"), max_length=10, choices=Arm.choices, blank=True)
    version_id = models.IntegerField(_("model version"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    revenue = models.DecimalField(_("revenue"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=12, blank=True)

    class Meta:
        abstract = True
        app_label = "recommender"
        ordering = ("-created",)
        verbose_name = _("attributed order line")
        verbose_name_plural = _("attributed order lines")


class AbstractIntentTarget(models.Model):
    """The purchase-intent range of an offer condition (see :class:`recommender.offers.IntentCondition`)."""

    condition = models.OneToOneField(
        "offer.Condition", on_delete=models.CASCADE, related_name="intent_target", verbose_name=_("condition")
    )
    min_intent = models.FloatField(
        _("intent from"),
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("The visitor's purchase intent (0-1) is at least this..."),
    )
    max_intent = models.FloatField(
        _("intent below"),
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("...and below this (1 includes 1)."),
    )

    class Meta:
        abstract = True
        app_label = "recommender"
        verbose_name = _("purchase-intent offer target")
        verbose_name_plural = _("purchase-intent offer targets")

    def __str__(self) -> str:
        return f"purchase intent {self.min_intent:.0%}-{self.max_intent:.0%}"

    def contains(self, score: float) -> bool:
        return self.min_intent <= score < self.max_intent or (self.max_intent >= 1.0 and score >= 1.0)
