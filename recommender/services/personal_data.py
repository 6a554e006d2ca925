"""One person's personal data in both apps: find it, export it as JSON, erase it (GDPR Art. 15, 17, 20).

A :class:`Person` is everything the apps can tie to one human:

* ``--user ID``: that account, and the visitor ids of the browsers it used (found on its events);
* ``--email ADDRESS``: every account with that address (case-insensitive), the guest orders placed
  with it, and the visitor ids of the browsers those orders were placed from;
* ``--visitor ID``: that browser's anonymous events (those not attached to an account; a user's are
  erased with ``--user``) and the guest orders placed from it.

:func:`erase` removes, in one transaction, and idempotently (a second run finds nothing left):

* their events (``recommender.Event``): by account, by visitor id (anonymous ones), and the events
  of their orders (purchases and status changes of guest orders carry no account);
* the blocks they were shown, their clicks on recommendations, their place in experiments and the
  attribution of their order lines to recommendations (``Impression``, ``Click``, ``Exposure``,
  ``AttributedLine``);
* their segment memberships in every segmentation run, history included (when ``segmentation`` is
  installed: this module reaches it through the app registry, never a module-level import, so the
  import direction stays ``segmentation`` -> ``recommender``);
* their orders as behaviour: Oscar keeps the orders for the shop's accounting, and an
  :class:`~recommender.models.ErasedOrder` row per order makes the training export and
  segmentation leave them out (:func:`recommender.queries.without_erased_orders`), so no model learns from them at
  its next training and they count as nobody's;
* after the commit, their cached recommendation blocks and segment (and with their generation any
  purchase intent a web process keeps).

Models trained before the erasure keep what they learnt until the next training replaces them
(nightly, or ``train_recommenders``). :func:`export` returns the same person's events, orders,
segments, current recommendations and purchase intent as JSON-ready data (never pickle).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone
from oscar.core.loading import get_model

logger = logging.getLogger(__name__)

__all__ = [
    "EXPORT_PLACEMENTS",
    "Person",
    "erase",
    "export",
    "find_person",
    "person_for_email",
    "person_for_user",
    "person_for_visitor",
]

#: blocks exported as the person's "current recommendations" (placements that need no page product)
EXPORT_PLACEMENTS = ("for_you", "buy_again", "recently_viewed", "trending")
EXPORT_FORMAT = "django-oscar-personalization personal data export 1"


@dataclass(frozen=True)
class Person:
    """The identifiers of one human in the shop's data (see the module doc for how they are found)."""

    label: str
    user_ids: frozenset[int] = frozenset()
    emails: frozenset[str] = frozenset()
    visitor_ids: frozenset[str] = frozenset()
    order_ids: frozenset[int] = frozenset()
    order_numbers: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def visitor_keys(self) -> set[str]:
        """Keys of the per-visitor serving cache (``u<user id>``, ``v<visitor id>``)."""
        return {f"u{u}" for u in self.user_ids} | {f"v{v}" for v in self.visitor_ids}


# -- who is it ----------------------------------------------------------------------------------


def person_for_user(user_id: int, using: str = "default") -> Person:
    """An account (it need not exist any more: what is left under its id is found all the same)."""
    return _resolve(f"user {int(user_id)}", users={int(user_id)}, using=using)


def _identifier(value: str, what: str, max_length: int) -> str:
    """A stripped identifier, or ValueError when it cannot name anybody (empty, too long, control characters)."""
    value = str(value).strip()
    if not value:
        raise ValueError(f"an empty {what} names nobody")
    if len(value) > max_length or not value.isprintable():
        raise ValueError(f"not a {what}: {value[:40]!r}")
    return value


def person_for_email(email: str, using: str = "default") -> Person:
    address = _identifier(email, "e-mail address", 254).lower()
    User = get_user_model()
    email_field = User.get_email_field_name()
    users = set(
        User._default_manager.using(using).filter(**{f"{email_field}__iexact": address}).values_list("pk", flat=True)
    )
    return _resolve(f"e-mail {address}", users=users, emails={address}, using=using)


def person_for_visitor(visitor_id: str, using: str = "default") -> Person:
    visitor = _identifier(visitor_id, "visitor id", 32)
    return _resolve(f"visitor {visitor}", visitors={visitor}, using=using)


def find_person(
    user: int | None = None, email: str | None = None, visitor: str | None = None, using: str = "default"
) -> Person:
    """The person named by exactly one of ``user`` (an id), ``email`` or ``visitor``."""
    given = [v is not None for v in (user, email, visitor)]
    if sum(given) != 1:
        raise ValueError("name exactly one of: a user id, an e-mail address, a visitor id")
    if user is not None:
        return person_for_user(user, using)
    if email is not None:
        return person_for_email(email, using)
    return person_for_visitor(str(visitor), using)


def _resolve(
    label: str,
    users: set[int] | None = None,
    emails: set[str] | None = None,
    visitors: set[str] | None = None,
    using: str = "default",
) -> Person:
    Event = get_model("recommender", "Event")
    Order = get_model("order", "Order")
    events = Event._default_manager.using(using)
    orders = Order._default_manager.using(using)
    users, emails, visitors = set(users or ()), set(emails or ()), set(visitors or ())
    if users:  # the browsers the accounts used
        visitors |= set(
            events.filter(user_id__in=users).exclude(visitor_id="").values_list("visitor_id", flat=True).distinct()
        )
    guest_orders = Q(pk__in=[])
    if emails:
        by_email = orders.filter(user__isnull=True).annotate(_email=Lower("guest_email")).filter(_email__in=emails)
        numbers = list(by_email.values_list("number", flat=True))
        guest_orders |= Q(number__in=numbers)
        # the browsers the guest orders were placed from
        visitors |= set(
            events.filter(user__isnull=True, order_number__in=numbers)
            .exclude(visitor_id="")
            .values_list("visitor_id", flat=True)
            .distinct()
        )
    if visitors:  # guest orders placed from these browsers
        placed = events.filter(user__isnull=True, visitor_id__in=visitors).exclude(order_number="")
        guest_orders |= Q(number__in=placed.values("order_number"))
    who = Q(user_id__in=users) | (Q(user__isnull=True) & guest_orders)
    found = list(orders.filter(who).values_list("pk", "number"))
    return Person(
        label=label,
        user_ids=frozenset(users),
        emails=frozenset(emails),
        visitor_ids=frozenset(visitors),
        order_ids=frozenset(pk for pk, _n in found),
        order_numbers=frozenset(n for _pk, n in found),
    )


def _shopper_q(person: Person) -> Q:
    """Rows (events, impressions, clicks) that are the person's: by account, or by the anonymous
    visitor ids of their browsers."""
    q = Q(pk__in=[])
    if person.user_ids:
        q |= Q(user_id__in=person.user_ids)
    if person.visitor_ids:
        q |= Q(user__isnull=True, visitor_id__in=person.visitor_ids)
    return q


def _events_q(person: Person) -> Q:
    """The person's events: by account, anonymous ones of their browsers, those of their orders."""
    q = _shopper_q(person)
    if person.order_numbers:
        # a guest order's status changes carry neither account nor visitor; an account's are found above
        q |= Q(user__isnull=True, order_number__in=person.order_numbers)
    return q


def _memberships(person: Person, using: str) -> QuerySet | None:
    """The person's segment memberships in every run (``None`` without the segmentation app)."""
    if not apps.is_installed("segmentation"):
        return None
    SegmentationRun = get_model("segmentation", "SegmentationRun")
    CustomerSegment = get_model("segmentation", "CustomerSegment")
    q = Q(pk__in=[])
    if person.user_ids:
        q |= Q(user_id__in=person.user_ids)
    if person.emails:
        q |= Q(user__isnull=True, guest_email__in=person.emails)
    # run ids first: the (run, user) index then serves the lookup on a million-row table
    runs = list(SegmentationRun._default_manager.using(using).values_list("pk", flat=True))
    return CustomerSegment._default_manager.using(using).filter(q, run_id__in=runs)


# -- erasure ------------------------------------------------------------------------------------


def erase(person: Person, using: str = "default") -> dict[str, int]:
    """Erase the person's personal data (see the module doc) in one transaction; returns the counts.

    Counts: ``events`` and ``segment_memberships`` deleted, ``orders_excluded`` (orders newly
    left out of learning), ``orders_already_excluded``, ``visitor_ids`` and ``accounts`` found.
    Running it again deletes nothing more and reports zeros for what is gone.
    """
    from recommender.measurement import writer

    Event = get_model("recommender", "Event")
    ErasedOrder = get_model("recommender", "ErasedOrder")
    counts = {"accounts": len(person.user_ids), "visitor_ids": len(person.visitor_ids)}
    if not writer.wait():  # what this process measured of them and has not written yet
        logger.warning("recommender: erasing while this process's measurements still wait to be written")
    with transaction.atomic(using=using):
        counts["events"] = Event._default_manager.using(using).filter(_events_q(person)).delete()[0]
        counts |= _erase_measurement(person, using)
        memberships = _memberships(person, using)
        counts["segment_memberships"] = memberships.delete()[0] if memberships is not None else 0
        erased = ErasedOrder._default_manager.using(using)
        already = set(erased.filter(order_id__in=person.order_ids).values_list("order_id", flat=True))
        now = timezone.now()
        new = [ErasedOrder(order_id=pk, erased=now) for pk in sorted(person.order_ids - already)]
        erased.bulk_create(new, ignore_conflicts=True)
        counts["orders_excluded"] = len(new)
        counts["orders_already_excluded"] = len(already)
        transaction.on_commit(lambda: _forget_cached(person, using), using=using)
    # no identifier in the log: the label may hold an e-mail address
    logger.info("personal data erased: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def _erase_measurement(person: Person, using: str) -> dict[str, int]:
    """Delete the blocks shown to the person, their clicks, exposures and attributed lines."""
    counts = {}
    for name, key in (("Impression", "impressions"), ("Click", "clicks")):
        model = get_model("recommender", name)
        counts[key] = model._default_manager.using(using).filter(_shopper_q(person)).delete()[0]
    Exposure = get_model("recommender", "Exposure")
    counts["experiment_exposures"] = (
        Exposure._default_manager.using(using).filter(person__in=person.visitor_keys).delete()[0]
    )
    AttributedLine = get_model("recommender", "AttributedLine")
    attributed = AttributedLine._default_manager.using(using).filter(line__order_id__in=person.order_ids)
    counts["attributed_lines"] = attributed.delete()[0]
    return counts


def _forget_cached(person: Person, using: str) -> None:
    """Drop the person's cached blocks and segment (after the commit; a cache error is only logged)."""
    from recommender.serving.generations import forget_visitors

    forget_visitors(person.visitor_keys)
    if person.user_ids and apps.is_installed("segmentation"):
        from segmentation.services.lookups import forget_cached_segments

        try:
            forget_cached_segments(set(person.user_ids), using)
        except Exception:
            logger.exception("personal data: could not drop the cached segments of an erased person")


# -- export -------------------------------------------------------------------------------------


def export(person: Person, using: str = "default") -> dict[str, Any]:
    """The person's events, orders, segments and current recommendations, as JSON-ready data.

    Only values of the person's own rows (and product titles) appear; dates are ISO 8601 strings
    and amounts decimal strings, so ``json.loads(json.dumps(export(p))) == export(p)``.
    """
    from recommender.measurement import writer

    writer.wait()  # what this process measured of them and has not written yet
    return {
        "format": EXPORT_FORMAT,
        "person": {
            "user_ids": sorted(person.user_ids),
            "emails": sorted(person.emails),
            "visitor_ids": sorted(person.visitor_ids),
        },
        "events": _export_events(person, using),
        "orders": _export_orders(person, using),
        "segments": _export_segments(person, using),
        "recommendations": _export_recommendations(person, using),
        "purchase_intent": _export_intent(person, using),
        "measurement": _export_measurement(person, using),
    }


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _export_events(person: Person, using: str) -> list[dict[str, Any]]:
    Event = get_model("recommender", "Event")
    rows = (
        Event._default_manager.using(using)
        .filter(_events_q(person))
        .order_by("created", "pk")
        .values(
            "event_id",
            "kind",
            "created",
            "user_id",
            "visitor_id",
            "product_id",
            "product__title",
            "order_number",
            "quantity",
            "price",
            "currency",
            "query",
            "old_status",
            "new_status",
        )
    )
    out = []
    for row in rows:
        row["event_id"] = str(row["event_id"])
        row["product_title"] = row.pop("product__title")
        out.append({k: _json(v) for k, v in row.items()})
    return out


def _export_measurement(person: Person, using: str) -> dict[str, list[dict[str, Any]]]:
    """The blocks shown to the person, their clicks, their arm in each experiment, and which of
    their order lines were attributed to a recommendation."""
    models = {n: get_model("recommender", n) for n in ("Impression", "Click", "Exposure", "AttributedLine")}
    fields = {
        "Impression": ("impression_id", "created", "placement", "arm", "product_ids", "rungs", "version_ids"),
        "Click": ("impression_id", "created", "placement", "position", "rung", "product_id", "arm"),
        "Exposure": ("experiment__name", "arm", "first_seen", "orders", "revenue"),
        "AttributedLine": ("line__order__number", "line__product_id", "placement", "arm", "quantity", "revenue"),
    }
    filters = {
        "Impression": _shopper_q(person),
        "Click": _shopper_q(person),
        "Exposure": Q(person__in=person.visitor_keys),
        "AttributedLine": Q(line__order_id__in=person.order_ids),
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for name, model in models.items():
        rows = model._default_manager.using(using).filter(filters[name]).order_by("pk").values(*fields[name])
        out[name.lower()] = [{k: _json(str(v) if k == "impression_id" else v) for k, v in r.items()} for r in rows]
    return out


def _export_orders(person: Person, using: str) -> list[dict[str, Any]]:
    """The person's orders as the models see them (lines), and whether models may still learn from them."""
    Line = get_model("order", "Line")
    ErasedOrder = get_model("recommender", "ErasedOrder")
    erased_rows = ErasedOrder._default_manager.using(using).filter(order_id__in=person.order_ids)
    erased = set(erased_rows.values_list("order_id", flat=True))
    orders: dict[int, dict[str, Any]] = {}
    lines = (
        Line._default_manager.using(using)
        .filter(order_id__in=person.order_ids)
        .order_by("order__date_placed", "order_id", "pk")
        .values("order_id", "order__number", "order__date_placed", "order__status", "product_id", "title", "quantity")
    )
    for row in lines:
        order = orders.setdefault(
            row["order_id"],
            {
                "number": row["order__number"],
                "placed": _json(row["order__date_placed"]),
                "status": row["order__status"],
                "used_for_learning": row["order_id"] not in erased,
                "lines": [],
            },
        )
        order["lines"].append({"product_id": row["product_id"], "title": row["title"], "quantity": row["quantity"]})
    return list(orders.values())


def _export_segments(person: Person, using: str) -> list[dict[str, Any]]:
    memberships = _memberships(person, using)
    if memberships is None:
        return []
    rows = memberships.order_by("run__as_of", "run_id", "pk").values(
        "run_id",
        "run__as_of",
        "run__is_current",
        "user_id",
        "guest_email",
        "segment",
        "cluster",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "p_alive",
        "expected_purchases_90d",
        "predicted_value",
        "churn_probability",
        "churn_risk",
    )
    out = []
    for row in rows:
        row["as_of"] = row.pop("run__as_of")
        row["current"] = row.pop("run__is_current")
        out.append({k: _json(v) for k, v in row.items()})
    return out


def _export_intent(person: Person, using: str) -> list[dict[str, Any]]:
    """Each identity's purchase intent now (the live purchase-intent model over their history)."""
    from recommender.serving.blocks import Visitor
    from recommender.serving.intent import intent_for

    users = get_user_model()._default_manager.using(using).filter(pk__in=person.user_ids).order_by("pk")
    who = [(u.pk, "", Visitor(u, "")) for u in users] + [
        (None, v, Visitor(None, v)) for v in sorted(person.visitor_ids)
    ]
    out = []
    for user_id, visitor_id, visitor in who:
        try:
            found = intent_for(visitor)
        except Exception:  # an export never fails for a score: it says so instead
            logger.exception("personal data export: the purchase intent failed")
            out.append({"user_id": user_id, "visitor_id": visitor_id, "error": True})
            continue
        if found is not None:
            row = {"band": found.band, "probability": round(found.score, 4), "model_version": found.version_id}
            out.append({"user_id": user_id, "visitor_id": visitor_id, **row})
    return out


def _export_recommendations(person: Person, using: str) -> list[dict[str, Any]]:
    """What each of the person's identities is shown now (the serving service, live models)."""
    from recommender.serving.blocks import Visitor
    from recommender.serving.service import recommend

    users = get_user_model()._default_manager.using(using).filter(pk__in=person.user_ids).order_by("pk")
    who = [(u.pk, "", Visitor(u, "")) for u in users]
    who += [(None, v, Visitor(None, v)) for v in sorted(person.visitor_ids)]
    out = []
    for user_id, visitor_id, visitor in who:
        for placement in EXPORT_PLACEMENTS:
            try:
                block = recommend(None, placement, visitor=visitor)
            except Exception:  # an export never fails for a block: it says so instead
                logger.exception("personal data export: the %s block failed", placement)
                out.append({"user_id": user_id, "visitor_id": visitor_id, "placement": placement, "error": True})
                continue
            items = [
                {
                    "position": i.position,
                    "product_id": i.product.pk,
                    "title": i.product.get_title(),
                    "reason": str(i.reason),
                    "source": i.rung,
                }
                for i in block
            ]
            out.append(
                {
                    "user_id": user_id,
                    "visitor_id": visitor_id,
                    "placement": placement,
                    "title": str(block.title),
                    "items": items,
                }
            )
    return out
