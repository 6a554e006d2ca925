"""``tracking.insert``: the one write path of events, impressions and clicks. Outside a transaction
on PostgreSQL its statements travel together as one implicit transaction; inside one (the
checkout's) they go through ``bulk_create`` in a savepoint. Both must store the same rows."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from oscar.core.loading import get_model

from recommender.tracking import insert
from tests.helpers import make_product

Impression = get_model("recommender", "Impression")
Click = get_model("recommender", "Click")

pytestmark = pytest.mark.django_db(transaction=True)


def _impression(**fields) -> object:
    values = {
        "impression_id": uuid.uuid4(),
        "placement": "also_bought",
        "arm": "treatment",
        "visitor_id": "ab" * 16,
        "product_ids": [3, 1, 2],
        "rungs": ["next_item", "trending", "trending"],
        "version_ids": [7, None, None],
    }
    return Impression(**{**values, **fields})


def _click(impression, **fields) -> object:
    values = {"impression_id": impression.impression_id, "placement": impression.placement, "position": 2}
    return Click(**{**values, "product_id": impression.product_ids[1], "rung": "trending", **fields})


def _stored(model, key: str, value) -> dict:
    row = model.objects.get(**{key: value})
    return {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields if not f.primary_key}


def _expected(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if not f.primary_key}


def test_both_paths_store_the_same_rows_and_ignore_duplicates(django_user_model):
    user = django_user_model.objects.create_user("ann", "ann@example.com", "pw")
    shown = [make_product(f"Mug {n}").pk for n in range(3)]
    outside = _impression(user=user, visitor_id="", product_ids=shown)
    inside = _impression(placement="for_you", product_ids=shown)
    assert insert(Impression, [outside], "impression", (Click, [_click(outside, user=user, visitor_id="")]))
    with transaction.atomic():
        assert insert(Impression, [inside], "impression", (Click, [_click(inside)]))
    for obj in (outside, inside):
        assert _stored(Impression, "impression_id", obj.impression_id) == _expected(obj)
    assert _stored(Click, "impression_id", outside.impression_id)["user_id"] == user.pk
    # the same impression and click again (a replayed page): ignored, not an error
    assert insert(Impression, [outside], "impression", (Click, [_click(outside, user=user, visitor_id="")]))
    assert Impression.objects.count() == 2 and Click.objects.count() == 2


def test_a_failed_batch_writes_none_of_its_rows_and_leaves_the_connection_usable(caplog):
    good, bad = (
        _impression(product_ids=[0, make_product().pk]),
        _impression(placement="x" * 65),
    )  # longer than the column
    with caplog.at_level(logging.ERROR, logger="recommender.tracking"):
        assert not insert(Impression, [good], "impression", (Click, [_click(good, placement=bad.placement)]))
    assert "could not record 1 impression row(s)" in caplog.text
    assert not Impression.objects.exists() and not Click.objects.exists()  # one transaction: all or nothing
    assert insert(Impression, [good], "impression")
    assert Impression.objects.count() == 1
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the asynchronous commit stayed local to the insert
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"


text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=64)


@given(
    placement=text,
    visitor=st.text("0123456789abcdef", max_size=32),
    products=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=12),
    rungs=st.lists(text, max_size=12),
    versions=st.lists(st.none() | st.integers(0, 2**31 - 1), max_size=12),
)
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_values_are_stored_as_given(placement, visitor, products, rungs, versions):
    row = _impression(placement=placement, visitor_id=visitor, product_ids=products, rungs=rungs, version_ids=versions)
    assert insert(Impression, [row], "impression")
    assert _stored(Impression, "impression_id", row.impression_id) == _expected(row)
