"""The writer thread (:mod:`recommender.measurement.writer`): a page hands what it measured to a
thread of its process and does not wait for the database. Transactional tests: outside a
transaction is where the thread applies (inside one the page writes its rows itself)."""

from __future__ import annotations

import os
import time

import psycopg
import pytest
from django.db import connection
from oscar.core.loading import get_model

from recommender.measurement import writer
from tests.helpers import browser, make_product, view_product

Impression = get_model("recommender", "Impression")

pytestmark = pytest.mark.django_db(transaction=True)


def _other_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"], user=s["USER"], password=s["PASSWORD"] or None, host=s["HOST"], port=s["PORT"] or None
    )


@pytest.fixture
def _postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the writer thread applies to PostgreSQL only (here the page writes its rows itself)")


def test_a_page_answers_while_its_measurements_wait_for_the_database(_postgresql):
    """Another session holds the impressions table: the page answers at once with its blocks, and
    its rows are written as soon as the table is free."""
    mugs = [make_product(f"Mug {n}") for n in range(4)]
    client = browser()
    for mug in mugs[:3]:
        view_product(client, mug)
    assert writer.wait(10)
    before = set(Impression.objects.values_list("impression_id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")  # a page that wrote its rows itself would fail after 5 s
    with _other_connection() as other:
        other.execute("LOCK TABLE recommender_impression IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        html = view_product(client, mugs[3]).content.decode()
        took = time.monotonic() - started
        assert 'data-placement="recently_viewed"' in html
        assert not writer.wait(0.5)  # the thread waits for the table
        other.rollback()
    assert took < 4, f"the page waited {took:.1f} s for the database"
    assert writer.wait(10)
    new = Impression.objects.exclude(impression_id__in=before)
    assert [i.placement for i in new] == ["recently_viewed"]
    assert set(new[0].product_ids) <= {m.pk for m in mugs[:3]}


def test_a_page_is_written_on_a_new_connection_when_the_old_one_broke(_postgresql, caplog):
    """The thread's session ended under it (a database restart): the failure is logged, and the
    thread writes the same page's rows on a new connection, then the next page's."""
    mugs = [make_product(f"Mug {n}") for n in range(4)]
    client = browser()
    for mug in mugs[:2]:
        view_product(client, mug)
    assert writer.wait(10)
    connection.ensure_connection()
    with _other_connection() as other:  # end the writer thread's session, as a database restart would
        ended = other.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid NOT IN (pg_backend_pid(), %s) AND query LIKE '%%INSERT INTO \"recommender_impression\"%%'",
            [connection.connection.info.backend_pid],
        ).fetchall()
        other.commit()
    assert ended == [(True,)]
    before = Impression.objects.count()
    view_product(client, mugs[2])
    assert writer.wait(10)
    assert "could not record" in caplog.text and "written on a new database connection" in caplog.text
    written = Impression.objects.count()
    assert written > before
    view_product(client, mugs[3])
    assert writer.wait(10)
    assert Impression.objects.count() > written


def test_a_forked_worker_starts_a_writer_of_its_own():
    """A web server's worker forked from a process whose writer had started gets its own queue and
    thread on first use (the parent's thread does not exist in the child)."""
    parents = writer._current_queue()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        fresh = writer._queue is None
        ours = writer._current_queue() is not parents and writer._pid == os.getpid()
        os.write(write, b"1" if fresh and ours else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert writer._current_queue() is parents
