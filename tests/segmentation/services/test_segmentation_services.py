"""Segmentation runs on hand-built Oscar orders: aggregation, runs, history, bad input, task, command."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from oscar.core.loading import get_model
from oscar.test.factories import UserFactory

from segmentation import services
from segmentation.models import CustomerSegment, RunStatus, SegmentationRun
from segmentation.testing import make_order

pytestmark = pytest.mark.django_db

AS_OF = date(2024, 6, 30)


def build_shop(n: int = 40, seed: int = 1) -> list:
    """``n`` registered customers with 1-8 orders each over 2023-2024, plus two guests."""
    import random

    rnd = random.Random(seed)
    users = [UserFactory(email=f"c{i}@example.com") for i in range(n)]
    for u in users:
        for _ in range(rnd.randint(1, 8)):
            make_order(
                user=u,
                total=rnd.randint(5, 300),
                placed=f"202{rnd.randint(3, 4)}-0{rnd.randint(1, 6)}-{rnd.randint(10, 28)}",
            )
    make_order(guest_email="Guest@Example.com", total=50, placed="2024-05-01")
    make_order(guest_email="guest@example.com", total=30, placed="2024-06-01")
    return users


def test_aggregation_nets_refunds_cancellations_and_currencies(settings):
    settings.SEGMENTATION = {"CURRENCY_RATES": {"EUR": "0.5"}}
    u = UserFactory()
    make_order(user=u, total="100.00", placed="2024-06-01")
    o2 = make_order(user=u, total="60.00", placed="2024-06-20")
    make_order(user=u, total="999.00", placed="2024-06-25", status="Cancelled")  # ignored
    make_order(user=u, total="40.00", placed="2024-06-26", status="Refunded")  # a purchase worth 0
    make_order(user=u, total="-10.00", placed="2024-06-27")  # credit note: nets, not a purchase
    make_order(user=u, total="20.00", placed="2024-06-10", currency="EUR")  # 10.00 in GBP
    make_order(user=u, total="70.00", placed="2024-06-11", currency="USD")  # no rate: excluded
    make_order(user=u, total="5.00", placed="2024-07-05")  # after the as-of date
    Source = get_model("payment", "Source")
    SourceType = get_model("payment", "SourceType")
    Source.objects.create(
        order=o2, source_type=SourceType.objects.create(name="Card"), amount_allocated=60, amount_refunded=15
    )
    make_order(guest_email="Ann@Example.com", total="12.50", placed="2024-06-30")
    make_order(guest_email="ann@example.com", total="7.50", placed="2024-05-30")
    make_order(guest_email="", total="1.00", placed="2024-05-30")  # no customer at all

    df, info = services.aggregate_customers(AS_OF)
    assert info["excluded_orders_currency"] == 1
    assert len(df) == 2
    reg = df[df["guest"] == ""].iloc[0]
    assert reg["user_id"] == u.pk
    assert reg["frequency"] == 4  # 100, 60, refunded 40, EUR 20
    assert reg["monetary"] == pytest.approx(100 + (60 - 15) + 0 - 10 + 10)
    assert reg["recency_days"] == 4  # last purchase 26 June, as of 30 June
    guest = df[df["guest"] != ""].iloc[0]
    assert guest["guest"] == "ann@example.com"
    assert guest["frequency"] == 2
    assert guest["monetary"] == pytest.approx(20.0)
    assert guest["recency_days"] == 0


def test_aggregation_is_one_grouped_query():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    build_shop(5)
    with CaptureQueriesContext(connection) as ctx:
        df, _info = services.aggregate_customers(AS_OF)
    on_orders = [q["sql"] for q in ctx.captured_queries if '"order_order"' in q["sql"]]
    grouped = [sql for sql in on_orders if "GROUP BY" in sql]
    assert len(grouped) == 1 and len(df) == 6
    # besides it: only the count of orders left out for their currency (no per-order queries)
    assert len(on_orders) == 2 and len(ctx.captured_queries) <= 6


def test_run_end_to_end_stores_history_and_current():
    users = build_shop(40)
    run = services.run_segmentation(AS_OF)
    assert run.status == RunStatus.SUCCEEDED and run.is_current
    assert run.n_customers == 41 == CustomerSegment.objects.filter(run=run).count()
    assert sum(run.segment_counts.values()) == 41
    assert run.k is not None and 2 <= run.k <= 8
    json.dumps(run.summary, allow_nan=False)  # never NaN
    assert set(run.timings) >= {"aggregate", "score", "cluster", "predict", "write", "total"}
    m = CustomerSegment.objects.get(run=run, user=users[0])
    assert 1 <= m.r_score <= 5 and m.segment
    assert services.current_segment(users[0]) == m.segment
    assert services.explain(m).startswith(m.segment)
    guest = CustomerSegment.objects.get(run=run, user__isnull=True)
    assert guest.guest_email == "guest@example.com" and guest.frequency == 2


def test_failed_run_keeps_previous_current(monkeypatch):
    build_shop(20)
    first = services.run_segmentation(AS_OF)

    def boom(self, df, summary):
        raise RuntimeError("cluster exploded")

    monkeypatch.setattr(services.Segmenter, "cluster", boom)
    with pytest.raises(RuntimeError):
        services.run_segmentation(date(2024, 7, 31))
    failed = SegmentationRun.objects.latest()
    assert failed.status == RunStatus.FAILED and "cluster exploded" in failed.error
    assert not failed.memberships.exists()
    first.refresh_from_db()
    assert first.is_current
    assert services.current_run() == first


def test_transitions_between_runs():
    build_shop(30)
    a = services.run_segmentation(date(2024, 1, 31))
    b = services.run_segmentation(AS_OF)
    cells = services.transitions(a, b)
    assert sum(c for x, y, c in cells if y is not None) == b.n_customers
    assert sum(c for x, y, c in cells if x is not None) == a.n_customers
    matrix = services.transition_matrix(a, b)
    assert sum(map(sum, matrix["table"])) == sum(c for *_, c in cells)
    a.refresh_from_db()
    assert not a.is_current and b.is_current


def test_no_orders_fails_clearly_and_keeps_nothing():
    with pytest.raises(services.NoCustomersError):
        services.run_segmentation(AS_OF)
    run = SegmentationRun.objects.get()
    assert run.status == RunStatus.FAILED and "no customer" in run.error
    assert services.current_run() is None


@pytest.mark.parametrize(
    "orders",
    [
        [("a", "10", "2024-06-01"), ("b", "10", "2024-06-01"), ("c", "10", "2024-06-01")],  # identical
        [("a", "10", "2024-01-01"), ("b", "0", "2024-03-01"), ("c", "-5", "2024-05-01")],  # 3, zero, negative
        [("a", "10", "2024-01-01")],  # a single customer with one order
        [(str(i), str(10 + i), f"2024-0{1 + i % 6}-01") for i in range(12)],  # one order each
    ],
    ids=["identical", "zero-negative", "single", "one-order-each"],
)
def test_degenerate_shops_give_sensible_runs(orders):
    users: dict[str, object] = {}
    for key, total, placed in orders:
        users.setdefault(key, UserFactory())
        make_order(user=users[key], total=total, placed=placed)
    run = services.run_segmentation(AS_OF)
    assert run.status == RunStatus.SUCCEEDED
    json.dumps(run.summary, allow_nan=False)
    assert run.summary["clv"]["status"] == "not fitted"
    assert run.summary["clv"]["message"]
    assert not CustomerSegment.objects.filter(run=run, predicted_value__isnull=False).exists()
    buyers = {key for key, total, _placed in orders if not total.startswith("-")}
    assert run.n_customers == len(buyers)


def test_celery_task_eager_and_idempotent(settings):
    from segmentation.tasks import segment_customers

    build_shop(15)
    result = segment_customers.apply(kwargs={"as_of": AS_OF.isoformat()}).get()
    assert result["status"] == "succeeded" and result["customers"] == 16
    again = segment_customers.apply(kwargs={"as_of": AS_OF.isoformat()}).get()
    assert again["run"] == result["run"]  # same day, same settings: nothing recomputed
    assert SegmentationRun.objects.count() == 1
    forced = segment_customers.apply(kwargs={"as_of": AS_OF.isoformat(), "force": True}).get()
    assert forced["run"] != result["run"]


def test_task_skips_while_locked():
    from recommender.locks import task_lock
    from segmentation.tasks import segment_customers

    with task_lock("segmentation.segment_customers"):
        assert segment_customers.apply().get() == {"skipped": "locked"}


def test_command_prints_summary_table():
    build_shop(25)
    out, err = StringIO(), StringIO()
    call_command("segment_customers", "--as-of", "2024-06-30", stdout=out, stderr=err)
    text = out.getvalue()
    assert "segment" in text and "customers" in text and "revenue" in text
    run = SegmentationRun.objects.get()
    assert f"pred. {run.summary['horizon_months']}m" in text  # the horizon the run forecast
    for name in run.segment_counts:
        assert name[:21] in text
    with pytest.raises(CommandError):
        call_command("segment_customers", "--as-of", "30/06/2024", stdout=StringIO(), stderr=StringIO())


def test_currency_without_rate_is_counted_not_summed():
    u = UserFactory()
    make_order(user=u, total="10", placed="2024-06-01")
    make_order(user=u, total="1000", placed="2024-06-02", currency="JPY")
    run = services.run_segmentation(AS_OF)
    assert run.parameters["excluded_orders_currency"] == 1
    assert CustomerSegment.objects.get(run=run).monetary == Decimal("10.00")


def test_settings_check_reports_bad_rule_table(settings):
    from segmentation.checks import check_segmentation_settings

    settings.SEGMENTATION = {"SEGMENT_RULES": [{"name": "", "r": [6, 1]}], "K_MIN": 1}
    ids = {e.id for e in check_segmentation_settings()}
    assert "segmentation.E003" in ids and "segmentation.E004" in ids
    settings.SEGMENTATION = {"NOT_A_KEY": 1}
    assert {e.id for e in check_segmentation_settings()} == {"segmentation.E002"}


def test_guests_can_be_left_out(settings):
    settings.SEGMENTATION = {"INCLUDE_GUESTS": False}
    make_order(user=UserFactory(), total="10", placed="2024-06-01")
    make_order(guest_email="guest-536365@example.invalid", total="20", placed="2024-06-01")
    df, _info = services.aggregate_customers(AS_OF)
    assert len(df) == 1 and df["guest"].iloc[0] == ""


def test_imported_credit_note_with_refunded_status_nets_out():
    """The UCI importer writes cancellation invoices as 'Refunded' orders with negative totals."""
    u = UserFactory()
    make_order(user=u, total="100.00", placed="2024-06-01")
    make_order(user=u, total="-30.00", placed="2024-06-29", status="Refunded")
    df, _info = services.aggregate_customers(AS_OF)
    row = df.iloc[0]
    assert row["frequency"] == 1 and row["monetary"] == pytest.approx(70.0) and row["recency_days"] == 29


def test_task_is_configured_for_safe_redelivery():
    from django.db import InterfaceError, OperationalError

    from segmentation.tasks import segment_customers

    assert segment_customers.acks_late is True
    assert set(segment_customers.autoretry_for) >= {OperationalError, InterfaceError}
    assert segment_customers.retry_backoff


def test_task_reports_empty_shop_without_raising():
    from segmentation.tasks import segment_customers

    result = segment_customers.apply(kwargs={"as_of": "2024-06-30"}).get()
    assert result["status"] == "failed" and "no customer" in result["error"]
