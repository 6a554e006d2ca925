"""``import_order_history``: a shop's own export, with its own headers, into its own catalogue.

The UCI format is tested through ``import_online_retail`` (the same command) in the other files
here; these tests use the ``order-lines`` format, ``--columns`` and ``--mapping``, and a shop
that already has products, stock and customers: the import uses them and changes none.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from oscar.core.loading import get_model

from personalization_core.order_history import ORDER_LINES, SAMPLE, OrderLineFormat
from personalization_core.order_history.formats import FormatError

Order = get_model("order", "Order")
Line = get_model("order", "Line")
Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
StockRecord = get_model("partner", "StockRecord")
Partner = get_model("partner", "Partner")
User = get_user_model()

COLUMNS = [
    "order=Order ID",
    "sku=SKU",
    "title=Product",
    "quantity=Qty",
    "date=Placed at",
    "unit_price=Price",
    "customer=Customer Email",
]
EXPORT = """Order ID,SKU,Product,Qty,Placed at,Price,Customer Email,Channel
1001,MUG-1,Blue mug,2,2024-03-01T10:00:00+01:00,12.50,Ann@Example.com,web
1001,TEA-9,Green tea,1,2024-03-01T10:00:00+01:00,4.00,Ann@Example.com,web
1002,NEW-7,Tea towel,3,2024-03-02 09:30:00,5.25,bob@example.com,web
1003,MUG-1,Blue mug,1,2024-03-03 12:00:00,12.50,,shop
1004,TEA-9,Green tea,-1,2024-03-04 12:00:00,4.00,bob@example.com,web
"""


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_order_history", *args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def shop(db: None) -> dict[str, object]:
    """A shop's own catalogue and customer: a product known by its upc, one by its stock record's SKU."""
    partner = Partner.objects.create(name="Our warehouse", code="warehouse")
    kind = ProductClass.objects.create(name="Kitchen", slug="kitchen", track_stock=True)
    mug = Product.objects.create(title="Blue mug (ours)", upc="MUG-1", product_class=kind)
    tea = Product.objects.create(title="Green tea (ours)", upc="", product_class=kind)
    mug_stock = StockRecord.objects.create(
        product=mug, partner=partner, partner_sku="W-MUG", price=Decimal("9.99"), num_in_stock=5
    )
    tea_stock = StockRecord.objects.create(
        product=tea, partner=partner, partner_sku="TEA-9", price=Decimal("3.50"), num_in_stock=7
    )
    ann = User.objects.create_user(username="ann", email="ann@example.com", password="x")
    return {"partner": partner, "mug": mug, "tea": tea, "mug_stock": mug_stock, "tea_stock": tea_stock, "ann": ann}


def test_an_export_with_its_own_headers_uses_the_shops_products_and_customers(
    shop: dict[str, object], tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(EXPORT)
    out = run(str(path), "--columns", *COLUMNS)
    assert "Ignored unknown column(s): Channel" in out
    assert "| negative quantity on a sales invoice (stock write-off) | 1 | 1 | 6 |" in out
    # the shop's products, stock and prices are used, never changed
    assert Product.objects.count() == 3 and StockRecord.objects.count() == 3
    mug_stock, tea_stock = shop["mug_stock"], shop["tea_stock"]
    mug_stock.refresh_from_db()
    tea_stock.refresh_from_db()
    assert (mug_stock.price, mug_stock.num_in_stock, tea_stock.price, tea_stock.num_in_stock) == (
        Decimal("9.99"),
        5,
        Decimal("3.50"),
        7,
    )
    lines = {(ln.order.number, ln.partner_sku): ln for ln in Line.objects.select_related("order")}
    assert lines["1001", "MUG-1"].stockrecord == mug_stock and lines["1001", "MUG-1"].product == shop["mug"]
    assert lines["1001", "TEA-9"].stockrecord == tea_stock and lines["1001", "TEA-9"].partner == shop["partner"]
    assert lines["1001", "TEA-9"].partner_name == "Our warehouse"
    # an unknown code: a new product of the format's class, category and partner
    towel = lines["1002", "NEW-7"].product
    assert (towel.upc, towel.title, towel.is_public, towel.get_product_class().slug) == (
        "NEW-7",
        "Tea towel",
        True,
        "imported-product",
    )
    assert [c.slug for c in towel.get_categories()] == ["imported"]
    new_stock = lines["1002", "NEW-7"].stockrecord
    assert (new_stock.partner.code, new_stock.partner_sku, new_stock.price) == (
        "order-history",
        "NEW-7",
        Decimal("5.25"),
    )
    # customers: the shop's own by e-mail (case aside), a new one with the e-mail, a guest
    orders = {o.number: o for o in Order.objects.all()}
    assert set(orders) == {"1001", "1002", "1003"}  # 1004's only line is skipped
    assert orders["1001"].user == shop["ann"] and orders["1001"].total_incl_tax == Decimal("29.00")
    assert orders["1001"].date_placed.isoformat() == "2024-03-01T09:00:00+00:00"  # its zone, stored as UTC
    bob = orders["1002"].user
    assert (bob.username, bob.email, bob.has_usable_password()) == (
        "customer-bob@example.com",
        "bob@example.com",
        False,
    )
    assert orders["1003"].user is None and orders["1003"].guest_email == "guest-1003@example.invalid"
    assert set(Order.objects.values_list("status", flat=True)) == {"Complete"}
    # a second run adds nothing
    out = run(str(path), "--columns", *COLUMNS)
    assert "| orders | 0 | 3 |" in out and "| users | 0 | 2 |" in out and "| products | 0 | 3 |" in out
    assert Line.objects.count() == 4 and User.objects.count() == 2


def test_a_json_mapping_describes_dates_cancellations_and_fees(db: None, tmp_path: Path) -> None:
    mapping = {
        "columns": {"order": "Ref", "sku": "Item", "quantity": "Units", "date": "Day", "unit_price": "Each"},
        "date_format": "%d/%m/%Y %H:%M",
        "cancellation_prefix": "R",
        "non_merchandise": ["SHIP"],
        "partner": ["Old shop", "old-shop"],
    }
    (tmp_path / "mapping.json").write_text(json.dumps(mapping))
    (tmp_path / "orders.csv").write_text(
        "Ref,Item,Units,Day,Each\n"
        "A1,CUP,2,31/01/2024 18:00,3.00\n"
        "A1,SHIP,1,31/01/2024 18:00,4.95\n"
        "R7,CUP,-1,01/02/2024 09:00,3.00\n"
    )
    out = run(str(tmp_path / "orders.csv"), "--mapping", str(tmp_path / "mapping.json"), "--hidden-products")
    assert "| refund orders (cancellations) | 1 |" in out
    refund = Order.objects.get(number="R7")
    assert refund.status == "Refunded" and refund.total_incl_tax == Decimal("-3.00") and refund.user is None
    sale = Order.objects.get(number="A1")
    assert sale.date_placed.isoformat() == "2024-01-31T18:00:00+00:00" and sale.total_incl_tax == Decimal("10.95")
    cup, ship = Product.objects.get(upc="CUP"), Product.objects.get(upc="SHIP")
    assert not cup.is_public  # --hidden-products
    assert not ship.is_public and ship.get_product_class().slug == "non-merchandise"
    assert set(StockRecord.objects.values_list("partner__code", flat=True)) == {"old-shop"}


def test_a_missing_column_names_what_the_format_reads(db: None, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("order_id,sku,qty,created_at,amount\n1,A,1,2024-01-01,2.00\n")
    with pytest.raises(CommandError, match=r"missing required column\(s\): unit_price .*--columns FIELD=HEADER"):
        run(str(path))
    run(str(path), "--columns", "unit_price=amount")
    assert Order.objects.get(number="1").total_incl_tax == Decimal("2.00")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--columns", "colour=Colour"], r"unknown field\(s\) colour"),
        (["--columns", "order"], r"argument --columns"),
        (["--mapping", "{missing}"], r"not a readable JSON file"),
        (["--mapping", "{bad}"], r"unknown key\(s\) currency"),
        (["--sample"], r"PATH or --sample, not both"),
    ],
)
def test_bad_mappings_and_arguments_are_refused(db: None, tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("order,sku,quantity,date,unit_price\n1,A,1,2024-01-01,2.00\n")
    (tmp_path / "bad.json").write_text(json.dumps({"currency": "EUR"}))
    args = [
        a.replace("{missing}", str(tmp_path / "none.json")).replace("{bad}", str(tmp_path / "bad.json")) for a in args
    ]
    with pytest.raises(CommandError, match=message):
        run(str(path), *args)
    assert not Order.objects.exists()
    with pytest.raises(CommandError, match=r"give the file of order lines \(PATH\), or --sample"):
        run()


def test_the_shipped_sample_is_in_the_package_and_imports(db: None) -> None:
    assert SAMPLE.is_file() and SAMPLE.parent.name == "data"
    out = run("--sample", "--limit-customers", "3")
    assert "(online-retail format)" in out
    assert Partner.objects.get().code == "online-retail"
    assert User.objects.filter(username__startswith="customer-").count() == 3
    assert Order.objects.exists() and not Order.objects.filter(user__isnull=True).exists()


def test_formats_refuse_what_cannot_describe_a_file() -> None:
    with pytest.raises(FormatError, match=r"header 'qty' is given for both order and quantity"):
        ORDER_LINES.with_columns({"order": "qty"})
    with pytest.raises(FormatError, match=r"names no header for the required field\(s\) sku"):
        OrderLineFormat(name="x", columns={"order": ("o",), "quantity": ("q",), "date": ("d",), "unit_price": ("p",)})
    with pytest.raises(FormatError, match=r'"partner" is \[name, code\]'):
        OrderLineFormat.from_dict({"partner": "Old shop"})
    with pytest.raises(FormatError, match=r"unknown format 'amazon'"):
        OrderLineFormat.from_dict({"format": "amazon"})
