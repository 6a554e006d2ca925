"""The Online Retail import fills Oscar's analytics records, so Oscar's own reports are right."""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest
from django.urls import reverse
from oscar.core.loading import get_model
from oscar.test.factories import UserFactory

from tests.shop.importers.test_import_online_retail import _valid, run_import, sample_slice, write_csv  # noqa: F401 (fixture)

UserRecord = get_model("analytics", "UserRecord")
ProductRecord = get_model("analytics", "ProductRecord")

pytestmark = pytest.mark.django_db


def expected_records(frame: pd.DataFrame) -> tuple[dict[str, dict], dict[str, int]]:
    """Per customer and per stock code, from the raw text: sales invoices count, credit notes net."""
    users: dict[str, dict] = defaultdict(
        lambda: {"orders": set(), "lines": 0, "items": 0, "spent": Decimal("0.00"), "last": None}
    )
    products: dict[str, int] = defaultdict(int)
    first_date: dict[str, pd.Timestamp] = {}
    rows = [r for r in frame.to_dict("records") if _valid(r)]
    for r in rows:
        d = pd.Timestamp(r["InvoiceDate"])
        first_date[r["InvoiceNo"]] = min(first_date.get(r["InvoiceNo"], d), d)
    for r in rows:
        customer, invoice = r["CustomerID"].strip(), r["InvoiceNo"]
        amount = (int(r["Quantity"]) * Decimal(r["UnitPrice"])).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        sale = not invoice.startswith("C")
        if sale:
            products[r["StockCode"]] += int(r["Quantity"])
        if not customer:
            continue
        u = users[customer]
        u["spent"] += amount
        if sale:
            u["orders"].add(invoice)
            u["lines"] += 1
            u["items"] += int(r["Quantity"])
            u["last"] = max(u["last"], first_date[invoice]) if u["last"] is not None else first_date[invoice]
    return users, products


def test_import_fills_user_and_product_records(sample_slice: pd.DataFrame, tmp_path: Path) -> None:  # noqa: F811
    users, products = expected_records(sample_slice)
    path = write_csv(sample_slice, tmp_path / "slice.csv")
    out = run_import(path)
    assert f"| user analytics records | {len(users):,} |" in out
    records = {r.user.username.removeprefix("customer-"): r for r in UserRecord.objects.select_related("user")}
    assert set(records) == set(users)
    for cid, want in users.items():
        got = records[cid]
        assert got.num_orders == len(want["orders"]), cid
        assert got.num_order_lines == want["lines"] and got.num_order_items == want["items"], cid
        assert got.total_spent == want["spent"], cid
        if want["last"] is not None:
            assert got.date_last_order.replace(tzinfo=None) == want["last"].to_pydatetime(), cid
    by_code = dict(ProductRecord.objects.values_list("product__upc", "num_purchases"))
    assert by_code == dict(products)
    # a second import changes nothing (recomputed, not added again)
    before = list(UserRecord.objects.order_by("user_id").values_list("user_id", "num_orders", "total_spent"))
    run_import(path)
    assert list(UserRecord.objects.order_by("user_id").values_list("user_id", "num_orders", "total_spent")) == before


def test_oscar_customer_list_shows_the_imported_orders(client, sample_slice: pd.DataFrame, tmp_path: Path) -> None:  # noqa: F811
    run_import(write_csv(sample_slice, tmp_path / "slice.csv"))
    busiest = UserRecord.objects.order_by("-num_orders", "user_id").first()
    assert busiest.num_orders > 1
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("dashboard:users-index"), {"sort": "-num_orders"}).content.decode()
    row = page[page.index(f">{busiest.user.email}<") :]
    row = row[: row.index("</tr>")].replace(" ", "").replace("\n", "")
    assert f"<td>{busiest.num_orders}</td>" in row
