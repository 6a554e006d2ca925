"""``import_online_retail`` never guesses: the file's encoding, and values the database cannot hold.

A CSV file is UTF-8 (a byte order mark is accepted) unless ``--encoding`` names
another encoding; a byte that does not decode stops the import with its line, column
and byte offset, and nothing is written. A line whose values the database would
reject or overflow (a NUL byte, a text longer than its column, a quantity or an
amount out of its column's range) is skipped and reported by reason with its line
number, like every other bad line; never a traceback.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oscar.core.loading import get_model

from personalization_core.order_history import ONLINE_RETAIL, OrderHistoryError, normalize, read_order_lines, reader

Order = get_model("order", "Order")
Line = get_model("order", "Line")
Product = get_model("catalogue", "Product")
Partner = get_model("partner", "Partner")
ProductRecord = get_model("analytics", "ProductRecord")
User = get_user_model()

HEADER = b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
CAFE = "CAF\u00c9 TABLE"  # an accented capital
MUG = "MUG \u2615 \U0001f600"  # a BMP symbol and an emoji


def line(
    description: bytes | str,
    *,
    invoice: str = "536365",
    stock: str = "85123A",
    quantity: str = "6",
    price: str = "2.55",
    customer: str = "17850",
) -> bytes:
    """One data line (``description`` as bytes goes in as it is)."""
    if isinstance(description, str):
        description = description.encode()
    head = f"{invoice},{stock},".encode()
    tail = f",{quantity},2010-12-01 08:26:00,{price},{customer},United Kingdom\n".encode()
    return head + description + tail


#: line 4 holds one byte that is not UTF-8; lines 2 and 3 are good UTF-8 beyond ASCII
BAD_BYTE = HEADER + line(CAFE) + line(MUG, stock="71053") + line(b"HAND WARMER \xff", invoice="536366", stock="22633")
BAD_BYTE_OFFSET = BAD_BYTE.index(b"\xff")
BAD_BYTE_COLUMN = len(b"536366,22633,HAND WARMER ") + 1


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    return path


def run_import(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_online_retail", str(path), "--no-progress", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def nothing_written() -> bool:
    return not (Product.objects.exists() or Order.objects.exists() or Line.objects.exists() or Partner.objects.exists())


def skipped_row(out: str, reason: str, lines: str) -> bool:
    """The summary has a row for ``reason``: the lines ``lines`` (e.g. "5, 6") skipped, all of one invoice."""
    count = len(lines.split(", "))
    return re.search(rf"^\| {re.escape(reason)} \| {count} \| 1 \| {lines} \|$", out, re.MULTILINE) is not None


# -- the encoding ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bad.csv", "bad.csv.gz"])
def test_a_byte_that_is_not_utf8_stops_the_import_with_line_column_and_offset(
    db: None, tmp_path: Path, name: str
) -> None:
    path = write(tmp_path, name, BAD_BYTE)
    with pytest.raises(CommandError) as caught:
        run_import(path)
    message = str(caught.value)
    assert f"line 4, column {BAD_BYTE_COLUMN} (byte {BAD_BYTE_OFFSET:,}" in message, message
    assert r"b'\xff'" in message and "UTF-8" in message
    assert "--encoding" in message and "Nothing was imported" in message
    assert nothing_written()


def test_a_named_encoding_is_used_as_named_even_where_it_garbles(db: None, tmp_path: Path) -> None:
    """latin-1 decodes every byte: the user named it, so the text is exactly its latin-1 reading."""
    path = write(tmp_path, "bad.csv", BAD_BYTE)
    run_import(path, "--encoding", "latin-1")
    titles = set(Product.objects.values_list("title", flat=True))
    assert titles == {
        CAFE.encode().decode("latin-1"),
        MUG.encode().decode("latin-1"),
        "HAND WARMER \xff",
    }


def test_a_cp1252_file_imports_when_named_and_stops_when_not(db: None, tmp_path: Path) -> None:
    content = HEADER + line(CAFE.encode("cp1252")) + line("\u20ac5 VOUCHER".encode("cp1252"), stock="V5")
    path = write(tmp_path, "cp1252.csv", content)
    offset = content.index(b"\xc9")  # line 2 is "536365,85123A,CAF\xc9 TABLE,..."
    with pytest.raises(CommandError, match=rf"line 2, column 18 \(byte {offset}\).*--encoding cp1252"):
        run_import(path)
    assert nothing_written()
    run_import(path, "--encoding", "cp1252")
    assert set(Product.objects.values_list("title", flat=True)) == {CAFE, "\u20ac5 VOUCHER"}


@pytest.mark.parametrize("name", ["bom.csv", "bom.csv.gz"])
@pytest.mark.parametrize("encoding", [None, "utf-8"])
def test_a_utf8_file_with_a_byte_order_mark_imports(db: None, tmp_path: Path, name: str, encoding: str | None) -> None:
    path = write(tmp_path, name, b"\xef\xbb\xbf" + HEADER + line(CAFE) + line(MUG, stock="71053"))
    run_import(path, *(["--encoding", encoding] if encoding else []))
    assert set(Product.objects.values_list("title", flat=True)) == {CAFE, MUG}


def test_a_utf8_byte_order_mark_contradicts_another_named_encoding(db: None, tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + HEADER + line(CAFE))
    with pytest.raises(CommandError, match=r"UTF-8 byte order mark.*--encoding cp1252"):
        run_import(path, "--encoding", "cp1252")
    assert nothing_written()


@pytest.mark.parametrize("encoding", ["no-such-codec", "rot13"])
def test_an_unknown_or_non_text_encoding_is_refused(db: None, tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, "ok.csv", HEADER + line(CAFE))
    with pytest.raises(CommandError, match=rf"{encoding}.*not a text encoding"):
        run_import(path, "--encoding", encoding)
    assert nothing_written()


def test_parquet_text_is_utf8_by_its_format(db: None, tmp_path: Path) -> None:
    frame = pd.read_csv(io.BytesIO(HEADER + line(CAFE) + line(MUG, stock="71053")), dtype=str)
    path = tmp_path / "lines.parquet"
    frame.to_parquet(path, index=False)
    run_import(path)
    assert set(Product.objects.values_list("title", flat=True)) == {CAFE, MUG}
    with pytest.raises(CommandError, match=r"--encoding applies to CSV files"):
        run_import(path, "--encoding", "cp1252")


# -- values the database cannot hold: skipped by reason, with the line -----------------


def test_the_limits_are_read_from_oscars_models() -> None:
    from personalization_core.order_history import OrderHistoryWriter

    limits = OrderHistoryWriter().column_limits()
    assert limits == reader.ColumnLimits(
        invoice=Order._meta.get_field("number").max_length,  # 128 (the guest e-mail leaves 232)
        stock=Product._meta.get_field("upc").max_length,  # 64 (partner_sku and Line.upc: 128)
        description=Product._meta.get_field("title").max_length,  # 255, as Line.title
        customer=User._meta.get_field("username").max_length - len("customer-"),  # 141
        quantity=2**31 - 1,  # Line.quantity: PositiveIntegerField on every database
        cents=10**12 - 1,  # DecimalField(max_digits=12, decimal_places=2): 9,999,999,999.99
    )
    assert (limits.invoice, limits.stock, limits.description, limits.customer) == (128, 64, 255, 141)


LONG_TITLE = "X" * 256
LIMITS_FILE = (
    HEADER
    + line("GOOD")  # line 2
    + line("NUL\x00BYTE", stock="N1")  # line 3
    + line(LONG_TITLE, stock="L1")  # line 4
    + line("HUGE", stock="Q1", quantity="99999999999999999999")  # line 5
    + line("INT32", stock="Q2", quantity="2147483648")  # line 6: one past the column's range
    + line("LONG CODE", stock="S" * 65)  # line 7
    + line("OK", invoice="536367", stock="P1", price="1e300")  # line 8
    + line("OK", invoice="536368", stock="P2", price="2000000000")  # line 9: each fits, 6 x 2e9 GBP does not
    + line("LAST", stock="Z1")  # line 10
)


def test_values_the_database_cannot_hold_are_skipped_with_their_line(db: None, tmp_path: Path) -> None:
    out = run_import(write(tmp_path, "limits.csv", LIMITS_FILE))
    assert skipped_row(out, "NUL byte in a text field", "3"), out
    assert skipped_row(out, "description longer than its database column", "4"), out
    assert skipped_row(out, "quantity beyond its database column", "5, 6"), out
    assert skipped_row(out, "stock code longer than its database column", "7"), out
    assert skipped_row(out, "unit price beyond its database column", "8"), out
    assert skipped_row(out, "line amount (quantity x unit price) beyond its database column", "9"), out
    assert "| skipped | 7 |" in out and "| importable | 2 |" in out
    assert "description 255 characters" in out and "quantity 2,147,483,647" in out  # the limits are named
    assert set(Product.objects.values_list("upc", flat=True)) == {"85123A", "Z1"}
    assert set(Line.objects.values_list("title", flat=True)) == {"GOOD", "LAST"}


def test_an_invoice_whose_total_overflows_is_skipped_whole(db: None, tmp_path: Path) -> None:
    big = "999999999.99"  # each line fits (9,999,999,999.99 max), their sum does not
    content = (
        HEADER
        + line("GOOD", invoice="1")
        + line("A", invoice="2", stock="A", price=big)
        + line("B", invoice="2", stock="B", price=big)
    )
    out = run_import(write(tmp_path, "total.csv", content))
    assert skipped_row(out, "invoice total beyond its database column", "3, 4"), out
    assert list(Order.objects.values_list("number", flat=True)) == ["1"]


def test_line_numbers_are_the_file_lines_of_a_csv(db: None, tmp_path: Path) -> None:
    """A quoted description over two lines, and a blank line: the bad line is still named by its file line."""
    content = HEADER + line(b'"TWO\nLINES"') + b"\n" + line("BAD\x00", stock="N1")
    out = run_import(write(tmp_path, "lines.csv", content))
    assert skipped_row(out, "NUL byte in a text field", "5"), out


def test_a_product_counter_beyond_its_column_stops_and_writes_nothing(db: None, tmp_path: Path) -> None:
    """Each line fits; the product's purchases summed over the orders do not: the import stops, rolled back."""
    content = (
        HEADER
        + line("MUG", invoice="1", quantity="2000000000", price="0.001", customer="")
        + line("MUG", invoice="2", quantity="2000000000", price="0.001", customer="")
    )  # guests: no customer counters, only the product's
    with pytest.raises(CommandError, match=r"85123A.*num_purchases.*4,000,000,000.*2,147,483,647"):
        run_import(write(tmp_path, "counter.csv", content))
    assert nothing_written() and not ProductRecord.objects.exists()


def test_a_field_too_large_for_the_csv_parser_names_its_line(db: None, tmp_path: Path) -> None:
    content = HEADER + line("GOOD") + line("Y" * 200_000, stock="Y1")
    with pytest.raises(CommandError, match=r"line 3: .*field larger than field limit"):
        run_import(write(tmp_path, "huge.csv", content))
    assert nothing_written()


# -- any text in the description: the importer's own error, or a clean line -----------


def _csv(description: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # a value holding \r or \n is quoted
    writer.writerow(["536365", "85123A", description, "6", "2010-12-01 08:26:00", "2.55", "17850", "UK"])
    return HEADER + buffer.getvalue().encode()


@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
    junk=st.binary(max_size=8),
)
@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_any_description_is_read_exactly_or_refused_with_the_importers_error(
    tmp_path_factory: Any, text: str, junk: bytes
) -> None:
    folder = tmp_path_factory.mktemp("h")
    limits = reader.ColumnLimits(
        invoice=128, stock=64, description=255, customer=141, quantity=2**31 - 1, cents=10**12 - 1
    )
    # any text, written properly quoted, is read back exactly (stripped) with the right reason
    path = folder / "text.csv"
    path.write_bytes(_csv(text))
    lines = normalize(read_order_lines(path, ONLINE_RETAIL)[0], limits, ONLINE_RETAIL)
    assert list(lines["line"]) == [2]  # the line the record starts on, whatever newlines it holds
    description = text.strip()
    assert lines["description"].iloc[0] == description
    reason = lines["reason"].iloc[0]
    if "\x00" in description:
        assert reason == "NUL byte in a text field"
    elif len(description) > 255:
        assert reason == "description longer than its database column"
    else:
        assert reason == ""
    # raw bytes spliced in unquoted: read, or refused with OrderHistoryError, nothing else
    path = folder / "junk.csv"
    path.write_bytes(HEADER + line(b"A" + junk + b"B"))
    with contextlib.suppress(OrderHistoryError):
        normalize(read_order_lines(path, ONLINE_RETAIL)[0], limits, ONLINE_RETAIL)
