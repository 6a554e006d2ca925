"""Abstract models: a shop can subclass them in a forked app (Oscar's convention)."""

from __future__ import annotations

import uuid

from django.conf import settings
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
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    visitor_id = models.CharField(_("visitor id"), max_length=32, blank=True, db_index=True)
    product = models.ForeignKey(
        "catalogue.Product",
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
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
            models.Index(fields=["product", "kind"], name="rec_event_product_kind"),
        ]

    def __str__(self) -> str:
        who = f"user {self.user_id}" if self.user_id else f"visitor {self.visitor_id[:8]}"
        return f"{self.get_kind_display()} by {who} at {self.created:%Y-%m-%d %H:%M}"
