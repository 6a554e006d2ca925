"""Recording what the blocks did: impressions, clicks and attributed order lines.

Under the rules of event capture (:func:`recommender.tracking.should_track`): nothing for bots,
``Sec-GPC: 1`` or missing consent, nothing when ``IMPRESSIONS_ENABLED`` is off; never a broker
publish in the request and never an error out of it (a failed insert is logged).

* **Impressions**: :meth:`Recommender.recommend` notes each block it fills for a page
  (:func:`note_block`); after the response is rendered the middleware writes the page's blocks,
  with the person's first exposure to the running experiment, in one insert (:func:`flush`): on
  PostgreSQL outside a transaction this process's writer thread does it, so the page does not wait
  (:mod:`recommender.measurement.writer`).
* **Clicks**: a product page reached through a block's link carries ``?rec=<token>``; the token is
  signed, names the impression, the product and the visitor it was made for, so it can be neither
  forged nor replayed by another visitor (:func:`record_click`; the API's ``click`` endpoint calls
  it for headless front ends). A click is counted once per impression and product.
* **Attributed lines**: when an order is placed, each line whose product the same person clicked
  in a block within ``ATTRIBUTION_WINDOW`` is attributed to the last such click, once.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F, Q
from oscar.core.loading import get_model

from recommender.conf import app_settings
from recommender.loading import get_class
from recommender.measurement import writer
from recommender.measurement.assignment import arm_of
from recommender.serving.blocks import Block, Visitor
from recommender.serving.stores import local_get, local_set, request_memo
from recommender.tracking import insert, should_track

logger = logging.getLogger(__name__)

MEMO_KEY = "impressions"
CLICKS_KEY = "clicks"


def recording(request: Any) -> bool:
    """Whether this request's blocks, clicks and orders are measured."""
    return request is not None and app_settings.IMPRESSIONS_ENABLED and should_track(request)


def note_block(request: Any, block: Block, visitor: Visitor, impression_id: uuid.UUID) -> None:
    """Remember a block filled for this request's page (written by :func:`flush`)."""
    if not block.items or not visitor.key:
        return
    experiment, arm = arm_of(visitor, request_memo(request))
    request_memo(request).setdefault(MEMO_KEY, []).append(
        {
            "impression_id": impression_id,
            "placement": block.placement,
            "experiment": experiment,
            "arm": arm,
            "user": visitor.user,
            "visitor_id": "" if visitor.user is not None else visitor.visitor_id,
            "product_ids": [item.product_id for item in block.items],
            "rungs": [item.rung for item in block.items],
            "version_ids": [item.version_id for item in block.items],
        }
    )


def flush(request: Any) -> int:
    """Write the blocks this request showed in one insert, the click that brought the shopper here
    and the person's first exposure to the running experiment, in one transaction (one round trip on
    PostgreSQL), through this process's writer thread where it applies
    (:mod:`recommender.measurement.writer`); the number of blocks written or queued."""
    memo = request_memo(request)
    noted, clicks = memo.pop(MEMO_KEY, None) or [], memo.pop(CLICKS_KEY, None) or []
    if not (noted or clicks) or not recording(request):
        return 0
    Impression = get_model("recommender", "Impression")
    Click = get_model("recommender", "Click")
    impressions = [Impression(**fields) for fields in noted]
    exposure = _exposure(noted[0]) if noted else None
    more = [(Click, clicks), *([(type(exposure), [exposure])] if exposure is not None else [])]
    if writer.applies(Impression):
        written = writer.submit([(Impression, impressions), *more])
    else:
        written = insert(Impression, impressions, "impression", *more)
    if not written or not noted:
        return 0
    if exposure is not None:
        local_set(_exposed_key(exposure.experiment_id, exposure.person), True)
    return len(noted)


def _exposure(block: dict[str, Any]) -> Any | None:
    """The exposure row of the person a block was shown to, in the running experiment; None outside
    one, or when this process wrote or queued it lately (the insert ignores a person the database
    holds; a queued row whose write fails is sent again once this process forgets it, after
    ``LOCAL_SECONDS``)."""
    experiment = block["experiment"]
    if experiment is None:
        return None
    person = f"u{block['user'].pk}" if block["user"] is not None else f"v{block['visitor_id']}"
    if local_get(_exposed_key(experiment.pk, person)):
        return None
    Exposure = get_model("recommender", "Exposure")
    return Exposure(experiment=experiment, person=person, arm=block["arm"])


def _exposed_key(experiment_id: int, person: str) -> str:
    return f"recommender:exposed:{experiment_id}:{person}"


def session_digest(request: Any) -> str:
    """A salted hash of the browser session's key ("" without a session): clicks in one session."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None) if session is not None else None
    if not key:
        return ""
    from django.conf import settings

    return hashlib.blake2s(f"{settings.SECRET_KEY}:{key}".encode(), digest_size=8).hexdigest()


def record_click(request: Any, product: Any, token: str, visitor: Visitor) -> bool:
    """Note the click a signed token describes, if it was made for this visitor and this product; it is
    written with the page's impressions (:func:`flush`, after the response)."""
    if not recording(request) or not token or not visitor.key:
        return False
    data = get_class("recommender_serving.tokens", "ClickTokens")().read(token, visitor)
    pid = product.parent_id or product.pk
    if not data or data.get("o") != pid or not data.get("m"):
        return False
    try:
        impression_id = uuid.UUID(hex=str(data["m"]))
    except ValueError:
        return False
    experiment, arm = arm_of(visitor, request_memo(request))
    Click = get_model("recommender", "Click")
    click = Click(
        impression_id=impression_id,
        placement=str(data.get("p", ""))[:64],
        position=int(data.get("i") or 0),
        rung=str(data.get("r", ""))[:32],
        version_id=data.get("v") if isinstance(data.get("v"), int) else None,
        experiment=experiment,
        arm=arm,
        product_id=pid,
        user=visitor.user,
        visitor_id="" if visitor.user is not None else visitor.visitor_id,
        session=session_digest(request),
    )
    request_memo(request).setdefault(CLICKS_KEY, []).append(click)
    return True


def attribute_order(order: Any, request: Any, visitor: Visitor) -> int:
    """Attribute the order's lines to the shopper's last click on each product within the window,
    and count the order for their exposure to the running experiment; the lines attributed."""
    if not recording(request):
        return 0
    writer.wait()  # the clicks this process has queued
    Click = get_model("recommender", "Click")
    AttributedLine = get_model("recommender", "AttributedLine")
    lines = list(order.lines.select_related("product"))
    products = {(line.product.parent_id or line.product_id) for line in lines if line.product_id}
    who = Q(user=visitor.user) if visitor.user is not None else Q(visitor_id=visitor.visitor_id, user__isnull=True)
    clicks = Click.objects.filter(who, product_id__in=products)
    window = app_settings.ATTRIBUTION_WINDOW
    if window == "session":
        digest = session_digest(request)
        clicks = clicks.filter(session=digest) if digest else clicks.none()
    else:
        clicks = clicks.filter(created__gte=order.date_placed - timedelta(hours=int(window)))
    last: dict[int, Any] = {}
    for click in clicks.filter(created__lte=order.date_placed).order_by("created", "pk"):
        last[click.product_id] = click  # the last click on each product wins
    rows = [
        AttributedLine(
            line=line,
            click=last[pid],
            created=order.date_placed,
            placement=last[pid].placement,
            experiment_id=last[pid].experiment_id,
            arm=last[pid].arm,
            version_id=last[pid].version_id,
            quantity=line.quantity,
            revenue=line.line_price_incl_tax or Decimal(0),
            currency=order.currency,
        )
        for line in lines
        if line.product_id and (pid := line.product.parent_id or line.product_id) in last
    ]
    if rows and not insert(AttributedLine, rows, "attributed line"):
        return 0
    _count_order(order, visitor, request)
    return len(rows)


def _count_order(order: Any, visitor: Visitor, request: Any) -> None:
    """The order counts for the person's exposure to the running experiment (if they were shown a block)."""
    experiment, _arm = arm_of(visitor, request_memo(request))
    if experiment is None or order.date_placed < experiment.started:
        return
    Exposure = get_model("recommender", "Exposure")
    total = order.total_incl_tax or Decimal(0)
    try:
        with transaction.atomic():
            Exposure.objects.filter(experiment=experiment, person=visitor.key).update(
                orders=F("orders") + 1, revenue=F("revenue") + total
            )
    except DatabaseError:
        logger.exception("recommender: could not count an order for its experiment")


def merge_into_user(sender: Any, visitor_id: str, user: Any, since: Any, **kwargs: Any) -> None:
    """At login: the visitor's clicks and impressions since the session was bound become the account's,
    and the account takes the visitor's arm (see :func:`recommender.measurement.assignment.carry_over`).
    A receiver of :data:`recommender.signals.visitor_merged`."""
    from recommender.measurement.assignment import carry_over

    Click = get_model("recommender", "Click")
    Impression = get_model("recommender", "Impression")
    writer.wait()  # the visitor's rows this process has queued move too
    try:
        with transaction.atomic():
            for model in (Click, Impression):
                model.objects.filter(visitor_id=visitor_id, user__isnull=True, created__gte=since).update(
                    user=user, visitor_id=""
                )
    except DatabaseError:
        logger.exception("recommender: could not merge a visitor's clicks into their account")
    carry_over(f"v{visitor_id}", f"u{user.pk}")
