"""``import_online_retail``: UCI Online Retail into Oscar (``personalization_core/order_history/``).

Most tests cut a slice of the shipped sample (always present); the ``data`` ones
also read the real file from ``$SHARED_DATA_DIR`` (default ``<repo>/../shared/data``)
and are skipped with a reason when it is absent (with ``CI=true`` that is a failure).
Expected figures are computed here independently of the importer, in plain Python with
``Decimal``.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Sum
from oscar.core.loading import get_model

from personalization_core import order_history
from personalization_core.order_history import ONLINE_RETAIL, SAMPLE, OrderHistoryImporter, write_sample
from tests.conftest import SHARED_DATA, shared_data_path

CANONICAL_COLUMNS = ONLINE_RETAIL.header_names()
REAL_CSV = SHARED_DATA / "online-retail" / "online_retail.csv.gz"
REAL_PARQUET = SHARED_DATA / "online-retail" / "online_retail.parquet"
SLICE_ROWS = 2500

Order = get_model("order", "Order")
Line = get_model("order", "Line")
Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
StockRecord = get_model("partner", "StockRecord")
Partner = get_model("partner", "Partner")
User = get_user_model()

# -- helpers ---------------------------------------------------------------------------


def run_import(path: Path | str, *args: str) -> str:
    out = io.StringIO()
    call_command("import_online_retail", str(path), "--no-progress", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def db_counts() -> dict[str, Any]:
    return {
        "products": Product.objects.count(),
        "stock records": StockRecord.objects.count(),
        "users": User.objects.filter(username__startswith="customer-").count(),
        "orders": Order.objects.count(),
        "lines": Line.objects.count(),
        "guest orders": Order.objects.filter(user__isnull=True).count(),
        "refund orders": Order.objects.filter(status="Refunded").count(),
        "cancelled orders": Order.objects.filter(status="Cancelled").count(),
        "total": Decimal(Order.objects.aggregate(s=Sum("total_incl_tax"))["s"] or 0).quantize(Decimal("0.01")),
    }


def _valid(row: dict[str, str]) -> bool:
    invoice, stock = row["InvoiceNo"].strip(), row["StockCode"].strip()
    if not re.fullmatch(r"C?\d+", invoice) or not stock:
        return False
    try:
        quantity, price = int(row["Quantity"]), Decimal(row["UnitPrice"])
        pd.Timestamp(row["InvoiceDate"])
    except (ValueError, ArithmeticError):
        return False
    cancel = invoice.startswith("C")
    return quantity != 0 and price > 0 and (quantity < 0) == cancel


def expected(rows: Iterable[dict[str, str]]) -> dict[str, Any]:
    """The figures the import must produce, from the raw text of the lines."""
    valid = [r for r in rows if _valid(r)]
    invoices: dict[str, str] = {}
    for r in valid:
        invoices.setdefault(r["InvoiceNo"], r["CustomerID"].strip())
    total = sum(
        (
            (int(r["Quantity"]) * Decimal(r["UnitPrice"])).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            for r in valid
        ),
        Decimal("0.00"),
    )
    return {
        "products": len({r["StockCode"] for r in valid}),
        "stock records": len({r["StockCode"] for r in valid}),
        "users": len({r["CustomerID"] for r in valid if r["CustomerID"].strip()}),
        "orders": len(invoices),
        "lines": len(valid),
        "guest orders": sum(1 for c in invoices.values() if not c),
        "refund orders": sum(1 for i in invoices if i.startswith("C")),
        "cancelled orders": 0,
        "total": total,
    }


def read_text_rows(path: Path, nrows: int | None = None) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, nrows=nrows)


@pytest.fixture(scope="module")
def sample_slice() -> pd.DataFrame:
    """The first lines of the shipped sample, as text, cut at an invoice boundary."""
    frame = read_text_rows(SAMPLE, SLICE_ROWS + 200)
    last = frame["InvoiceNo"].iloc[SLICE_ROWS]
    frame = frame[: SLICE_ROWS + 1]
    return frame[frame["InvoiceNo"] != last].reset_index(drop=True)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, compression="gzip" if path.suffix == ".gz" else None)
    return path


# -- the shipped sample -------------------------------------------------------------------


def test_shipped_sample_is_small_with_original_columns_and_attribution() -> None:
    assert SAMPLE.is_file()
    assert SAMPLE.stat().st_size < 5 * 1024 * 1024
    with gzip.open(SAMPLE, "rt") as fh:
        assert fh.readline().strip().split(",") == list(CANONICAL_COLUMNS)
    readme = (SAMPLE.parent / "README.md").read_text()
    assert "Daqing Chen, UCI Machine Learning Repository, Online Retail, CC BY 4.0" in readme


def test_sample_slice_counts_totals_and_representation(db: None, sample_slice: pd.DataFrame, tmp_path: Path) -> None:
    want = expected(sample_slice.to_dict("records"))
    assert want["refund orders"] > 0 and want["guest orders"] > 0  # the slice exercises both
    out = run_import(write_csv(sample_slice, tmp_path / "slice.csv.gz"))
    assert db_counts() == want
    assert "| orders | {:,} | 0 |".format(want["orders"]) in out

    # cancellations: "Refunded" orders with negative totals, positive quantities, negative prices
    for order in Order.objects.filter(status="Refunded"):
        assert order.number.startswith("C") and order.total_incl_tax < 0
    assert not Order.objects.filter(status="Refunded", total_incl_tax__gte=0).exists()
    assert set(Order.objects.values_list("status", flat=True)) == {"Complete", "Refunded"}
    for line in Line.objects.select_related("order"):
        assert line.quantity > 0
        assert line.line_price_incl_tax == line.quantity * line.unit_price_incl_tax == line.line_price_excl_tax
        assert (line.unit_price_incl_tax < 0) == line.order.number.startswith("C")
        assert line.status == line.order.status and line.stockrecord_id and line.product_id
    # an order's total is the sum of its lines; tax and shipping are zero
    for order in Order.objects.all()[:50]:
        assert order.total_incl_tax == order.total_excl_tax == sum(ln.line_price_incl_tax for ln in order.lines.all())
        assert order.shipping_incl_tax == 0 and order.currency == "GBP" and order.site_id
        assert order.date_placed.utcoffset().total_seconds() == 0
    # guests: no user, one placeholder e-mail per invoice
    guests = Order.objects.filter(user__isnull=True)
    emails = list(guests.values_list("guest_email", flat=True))
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"guest-c?\d+@example\.invalid", e) for e in emails)
    # customers: placeholder e-mail, unusable password, joined on their first invoice
    user = User.objects.filter(username__startswith="customer-").first()
    assert user.email == f"{user.username}@example.invalid" and not user.has_usable_password()
    assert user.date_joined == Order.objects.filter(user=user).earliest("date_placed").date_placed
    # catalogue: upc = partner_sku = stock code, GBP prices
    record = StockRecord.objects.select_related("product", "partner").first()
    assert record.partner.name == "Online Retail" and record.product.upc == record.partner_sku
    assert record.price_currency == "GBP" and record.price > 0


def test_second_run_adds_nothing(db: None, sample_slice: pd.DataFrame, tmp_path: Path) -> None:
    path = write_csv(sample_slice, tmp_path / "slice.csv")
    run_import(path)
    first = db_counts()
    out = run_import(path)
    assert db_counts() == first
    assert "| orders | 0 | {:,} |".format(first["orders"]) in out
    assert "| order lines | 0 | - |" in out


def test_online_retail_ii_headers(db: None, sample_slice: pd.DataFrame, tmp_path: Path) -> None:
    renamed = sample_slice.rename(columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"})
    renamed["CustomerID"] = "ignored"  # an unknown extra column is ignored and reported
    renamed = renamed.rename(columns={"CustomerID": "Remark"})
    out = run_import(write_csv(renamed, tmp_path / "ii.csv"))
    assert db_counts() == expected(sample_slice.to_dict("records"))
    assert "Ignored unknown column(s): Remark" in out


def test_missing_columns_raise_and_write_nothing(db: None, sample_slice: pd.DataFrame, tmp_path: Path) -> None:
    path = write_csv(sample_slice.drop(columns=["UnitPrice", "CustomerID"]), tmp_path / "broken.csv.gz")
    with pytest.raises(CommandError, match=r"UnitPrice, CustomerID"):
        run_import(path)
    assert Order.objects.count() == Line.objects.count() == Product.objects.count() == 0
    assert not Partner.objects.exists() and not ProductClass.objects.exists()
    assert not User.objects.exists()


def test_failure_while_writing_leaves_nothing(
    db: None, sample_slice: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_insert = OrderHistoryImporter._insert_rows

    def failing(self: OrderHistoryImporter, model: Any, *args: Any) -> int:
        if model is Line:  # orders, users and products are written by then
            raise RuntimeError("disk full")
        return real_insert(self, model, *args)

    monkeypatch.setattr(OrderHistoryImporter, "_insert_rows", failing)
    with pytest.raises(RuntimeError):
        run_import(write_csv(sample_slice, tmp_path / "slice.csv"))
    assert Order.objects.count() == Product.objects.count() == StockRecord.objects.count() == 0
    assert not User.objects.exists() and not Partner.objects.exists()


BAD_LINES = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,0,17850,United Kingdom
536365,71054,LANTERN,2,2010-12-01 08:26:00,-1.50,17850,United Kingdom
536365,,NO CODE,2,2010-12-01 08:26:00,1.00,17850,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,not a date,1.85,17850,United Kingdom
536366,22632,HAND WARMER RED POLKA DOT,0,2010-12-01 08:28:00,1.85,17850,United Kingdom
536366,22634,HAND WARMER,two,2010-12-01 08:28:00,1.85,17850,United Kingdom
536366,22635,HAND WARMER,1,2010-12-01 08:28:00,cheap,17850,United Kingdom
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,-32,2010-12-01 08:34:00,0,,United Kingdom
A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,11062.06,,United Kingdom
C536379,D,Discount,-1,12/1/2010 9:41,27.50,14527,United Kingdom
C536380,22556,PLASTERS IN TIN CIRCUS PARADE,2,2010-12-01 09:45:00,1.65,14527,United Kingdom
536381,22139,RETROSPOT TEA SET CERAMIC 11 PC,3,2010-12-01 09:50:00,4.95,,United Kingdom
"""


def test_bad_lines_are_skipped_and_reported(db: None, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD_LINES)
    out = run_import(path)
    for reason in (
        "zero unit price",
        "negative unit price",
        "missing stock code",
        "unparsable invoice date",
        "quantity 0",
        "unparsable or non-integer quantity",
        "unparsable unit price",
        "negative quantity on a sales invoice (stock write-off)",
        "adjustment invoice (neither a sale nor a cancellation)",
        "positive quantity on a cancellation invoice",
    ):
        assert re.search(rf"\| {re.escape(reason)} \| 1 \| 1 \| \d+ \|", out), reason
    assert "| skipped | 10 |" in out and "| importable | 3 |" in out
    # 536365 (one good line), C536379 (US date format), guest 536381
    assert sorted(Order.objects.values_list("number", "status", "total_incl_tax")) == [
        ("536365", "Complete", Decimal("15.30")),
        ("536381", "Complete", Decimal("14.85")),
        ("C536379", "Refunded", Decimal("-27.50")),
    ]
    guest = Order.objects.get(number="536381")
    assert guest.user is None and guest.guest_email == "guest-536381@example.invalid"
    assert set(User.objects.values_list("username", flat=True)) == {"customer-17850", "customer-14527"}
    discount = Product.objects.get(upc="D")
    assert not discount.is_public and discount.get_product_class().slug == "non-merchandise"
    assert Product.objects.get(upc="85123A").is_public


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_csv_gzip_and_parquet_give_the_same_result(
    db: None, sample_slice: pd.DataFrame, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"slice{suffix}"
    if suffix == ".parquet":
        typed = sample_slice.assign(
            Quantity=sample_slice["Quantity"].astype("int64"),
            UnitPrice=sample_slice["UnitPrice"].astype("float64"),
            InvoiceDate=pd.to_datetime(sample_slice["InvoiceDate"]),
            CustomerID=pd.to_numeric(sample_slice["CustomerID"].replace("", None)).astype("Int64"),
        )
        typed.to_parquet(path, index=False)
    else:
        write_csv(sample_slice, path)
    run_import(path)
    assert db_counts() == expected(sample_slice.to_dict("records"))


def test_dry_run_and_limit_customers(db: None, sample_slice: pd.DataFrame, tmp_path: Path) -> None:
    path = write_csv(sample_slice, tmp_path / "slice.csv")
    out = run_import(path, "--dry-run")
    assert "dry run" in out and Order.objects.count() == 0 and not Product.objects.exists()
    run_import(path, "--limit-customers", "3")
    assert User.objects.count() == 3
    assert Order.objects.filter(user__isnull=True).count() == 0
    assert Order.objects.exclude(user__isnull=True).count() == Order.objects.count() > 0


def test_write_sample_is_deterministic(sample_slice: pd.DataFrame, tmp_path: Path) -> None:
    source = write_csv(sample_slice, tmp_path / "source.csv")
    stats = write_sample(source, tmp_path / "a.csv.gz", customers=4, guest_percent=50, fmt=ONLINE_RETAIL)
    write_sample(source, tmp_path / "b.csv.gz", customers=4, guest_percent=50, fmt=ONLINE_RETAIL)
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    subset = read_text_rows(tmp_path / "a.csv.gz")
    assert list(subset.columns) == list(CANONICAL_COLUMNS)
    assert subset["CustomerID"].replace("", pd.NA).dropna().nunique() == stats["customers"] == 4
    # every line of a chosen customer is kept, in the original order and text
    chosen = set(subset["CustomerID"]) - {""}
    original = sample_slice[sample_slice["CustomerID"].isin(chosen)].reset_index(drop=True)
    pd.testing.assert_frame_equal(subset[subset["CustomerID"].isin(chosen)].reset_index(drop=True), original)


# -- the real file ----------------------------------------------------------------------


@pytest.mark.data
@pytest.mark.parametrize("path", [REAL_CSV, REAL_PARQUET], ids=["csv.gz", "parquet"])
def test_real_file_slice(db: None, path: Path) -> None:
    for real in (REAL_CSV, path):  # absent: skipped with the reason, or failed under CI=true
        shared_data_path(str(real.relative_to(SHARED_DATA)))
    run_import(path, "--limit-rows", "2000")
    want = expected(read_text_rows(REAL_CSV, 2000).to_dict("records"))
    got = db_counts()
    # the 2000th line may cut an invoice: its first part is imported like any invoice
    assert got == want
    assert got["orders"] > 50 and got["refund orders"] > 0 and got["guest orders"] > 0


def test_skip_reason_constants_are_distinct() -> None:
    reasons = [v for k, v in vars(order_history).items() if k.startswith("R_")]
    assert len(reasons) == len(set(reasons)) == 20
    assert set(order_history.LIMIT_REASONS) < set(reasons)
