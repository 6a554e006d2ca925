"""Read, validate and clean a file of order lines: pandas only, no Django, no database.

:func:`read_order_lines` reads a CSV, gzipped CSV or parquet file into a frame whose columns
are the fields of :data:`~.formats.FIELDS`, found by the headers an
:class:`~.formats.OrderLineFormat` names (:func:`map_columns`); :func:`normalize` types and
cleans its lines and gives each one the first skip reason that applies (``R_...``, '' =
importable); :func:`product_table`, :func:`customer_table` and :func:`invoice_table` derive
one row per stock code (SKU), customer and invoice (order) from the importable lines. A file
that cannot be imported at all raises :class:`OrderHistoryError` before anything is written.

Nothing is guessed: a CSV file is UTF-8 (a byte order mark is allowed) unless the
caller names its encoding, and a byte that does not decode is an error naming its
line, column and offset. A line whose values the database columns cannot hold (a NUL
byte, a text longer than its column, a number beyond its column's range:
:class:`ColumnLimits`) is skipped with its reason, like any other bad line.

What the fields mean and how they are mapped onto Oscar is described in
``personalization_core/order_history/README.md``.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np
import pandas as pd

from personalization_core.order_history.formats import FIELDS, ORDER_LINES, OrderLineFormat, header_key

__all__ = [
    "DEFAULT_ENCODING",
    "LIMIT_REASONS",
    "ColumnError",
    "ColumnLimits",
    "OrderHistoryError",
    "customer_table",
    "invoice_table",
    "map_columns",
    "normalize",
    "product_table",
    "read_order_lines",
    "select_customers",
]


# skip reasons, in the order they are tested (a line gets the first that applies)
R_NO_INVOICE = "missing invoice number"
R_ADJUSTMENT = "adjustment invoice (neither a sale nor a cancellation)"
R_NO_STOCK = "missing stock code"
R_BAD_DATE = "unparsable invoice date"
R_BAD_QTY = "unparsable or non-integer quantity"
R_QTY_ZERO = "quantity 0"
R_BAD_PRICE = "unparsable unit price"
R_NEG_QTY_SALE = "negative quantity on a sales invoice (stock write-off)"
R_POS_QTY_CANCEL = "positive quantity on a cancellation invoice"
R_ZERO_PRICE = "zero unit price"
R_NEG_PRICE = "negative unit price"
# ... and the values the database columns cannot hold (:class:`ColumnLimits`): a range
# is tested right after its value parses (quantity, unit price), the rest after all of
# the above; an invoice whose total is beyond its column loses all its lines (the last test)
R_QTY_RANGE = "quantity beyond its database column"
R_PRICE_RANGE = "unit price beyond its database column"
R_AMOUNT_RANGE = "line amount (quantity x unit price) beyond its database column"
R_NUL = "NUL byte in a text field"
R_LONG_INVOICE = "invoice number longer than its database column"
R_LONG_STOCK = "stock code longer than its database column"
R_LONG_DESCRIPTION = "description longer than its database column"
R_LONG_CUSTOMER = "customer ID longer than its database column"
R_INVOICE_TOTAL = "invoice total beyond its database column"
#: the reasons that :class:`ColumnLimits` decide (the report then names the limits)
LIMIT_REASONS: tuple[str, ...] = (
    R_QTY_RANGE,
    R_PRICE_RANGE,
    R_AMOUNT_RANGE,
    R_LONG_INVOICE,
    R_LONG_STOCK,
    R_LONG_DESCRIPTION,
    R_LONG_CUSTOMER,
    R_INVOICE_TOTAL,
)

#: a CSV file's encoding unless the caller names one: UTF-8, with or without a byte order mark
DEFAULT_ENCODING = "utf-8-sig"
_UTF8_NAMES = frozenset({"utf-8", "utf-8-sig"})  # codecs.lookup(...).name
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_CHUNK = 1 << 20
_TEXTS = ("invoice", "stock", "description", "customer")  # the text columns written (ColumnLimits' names)
# the largest integers that float64 (pandas' parsing) and int64 (the sums) hold exactly
_EXACT = 2**53 - 1


class OrderHistoryError(ValueError):
    """The file cannot be imported at all (unreadable, wrong format, wrong columns)."""


@dataclass(frozen=True)
class ColumnLimits:
    """What the database columns that a line's values are written to can hold.

    Text limits are in characters (``None``: not checked); ``quantity`` is the largest
    ``abs(Quantity)``; ``cents`` the largest absolute amount in pence (a unit price, a
    line amount, an invoice total). The defaults only keep the reader's arithmetic
    exact; the writer reads Oscar's limits from its models
    (:meth:`~personalization_core.order_history.writer.OrderHistoryWriter.column_limits`).
    """

    invoice: int | None = None
    stock: int | None = None
    description: int | None = None
    customer: int | None = None
    quantity: int = _EXACT
    cents: int = _EXACT // 10 - 1

    def describe(self) -> str:
        """The limits in words, for the import report."""
        texts = [
            f"{name} {limit:,} characters"
            for name, limit in (
                ("invoice number", self.invoice),
                ("stock code", self.stock),
                ("description", self.description),
                ("customer ID", self.customer),
            )
            if limit is not None
        ]
        amount = f"{self.cents // 100:,}.{self.cents % 100:02d}"
        return ", ".join([*texts, f"quantity {self.quantity:,}", f"amount {amount} (either sign)"])


class ColumnError(OrderHistoryError):
    """Required columns are missing (or ambiguous); ``columns`` names them."""

    def __init__(self, message: str, columns: Sequence[str]) -> None:
        super().__init__(message)
        self.columns = list(columns)


def _sniff(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return "parquet"
    if head[:2] == b"\x1f\x8b":
        return "csv.gz"
    return "csv"


def map_columns(names: Iterable[str], fmt: OrderLineFormat = ORDER_LINES) -> tuple[dict[str, str], list[str]]:
    """Map a file's headers to the fields of ``fmt`` (case, spaces, underscores and hyphens aside).

    Returns ``({header: field}, unknown_headers)``; raises :class:`ColumnError` when a
    required field has no header or two headers hold the same field.
    """
    names = [str(name) for name in names]
    lookup = fmt.lookup()
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for name in names:
        field = lookup.get(header_key(name))
        if field is None:
            unknown.append(name)
            continue
        if field in seen:
            raise ColumnError(f"columns {seen[field]!r} and {name!r} both hold {fmt.header(field)}", [field])
        seen[field] = name
        mapping[name] = field
    missing = [fmt.header(f) for f in FIELDS if f in fmt.required and f not in seen]
    if missing:
        raise ColumnError(
            "missing required column(s): "
            + ", ".join(missing)
            + f" (found: {', '.join(names) or 'none'}; the {fmt.name} format reads {fmt.describe_columns()}; "
            "--columns FIELD=HEADER names your own headers)",
            missing,
        )
    return mapping, unknown


def _resolve_encoding(encoding: str | None) -> tuple[str, str]:
    """``(codec to read with, name for messages)``; UTF-8 always accepts a byte order mark."""
    if encoding is None:
        return DEFAULT_ENCODING, "UTF-8"
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise OrderHistoryError(
            f"--encoding {encoding!r} is not a text encoding that Python knows (e.g. utf-8, cp1252, latin-1)"
        )
    if info.name in _UTF8_NAMES:
        return DEFAULT_ENCODING, "UTF-8"
    return info.name, encoding


def _open_binary(path: Path, compression: str | None) -> BinaryIO:
    return gzip.open(path, "rb") if compression == "gzip" else path.open("rb")  # type: ignore[return-value]


def _check_decoding(path: Path, compression: str | None, encoding: str, label: str, named: bool) -> None:
    """Every byte of the file decodes with ``encoding``, or OrderHistoryError naming the first that does not.

    Its line and column (as an editor counts them: ``\\n``, ``\\r\\n`` or ``\\r`` end a
    line) and its byte offset (in the uncompressed text of a ``.gz``). The whole file is
    checked, ``limit_rows`` or not: a file is in one encoding or it is not.
    """
    utf8 = encoding == DEFAULT_ENCODING
    with _open_binary(path, compression) as fh:
        head = fh.read(4)
        if head.startswith(codecs.BOM_UTF8) and not utf8:
            raise OrderHistoryError(
                f"{path}: the file starts with a UTF-8 byte order mark, but --encoding {label} was named: "
                "it is UTF-8 (leave --encoding out). Nothing was imported."
            )
        # the codec for the check: plain UTF-8 after a byte order mark, so offsets are the file's
        codec = "utf-8" if utf8 else encoding
        skip = len(codecs.BOM_UTF8) if utf8 and head.startswith(codecs.BOM_UTF8) else 0
        decoder = codecs.getincrementaldecoder(codec)(errors="strict")
        try:
            decoder.decode(head[skip:])
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return
        except UnicodeDecodeError:
            pass
    with _open_binary(path, compression) as fh:  # the rare path: read it all and find the byte
        data = fh.read()
    try:
        data[skip:].decode(codec)
    except UnicodeDecodeError as exc:
        start, end, reason = skip + exc.start, skip + exc.end, exc.reason
    else:  # pragma: no cover - the incremental decoder failed, so the whole decode does
        raise OrderHistoryError(f"{path}: the file is not {label}. Nothing was imported.")
    before = data[skip:start].decode(codec)
    line = 1 + before.count("\n") + before.count("\r") - before.count("\r\n")
    column = len(before) - max(before.rfind("\n"), before.rfind("\r"))
    bom = None if named else next((name for mark, name in _BOMS if data.startswith(mark)), None)
    offset = f"byte {start:,}" + (" of the uncompressed text" if compression else "")
    message = f"{path}: line {line}, column {column} ({offset}): {data[start:end]!r} is not {label} ({reason})"
    if bom is None:  # the line, with U+FFFD for what does not decode
        rest = re.split(r"[\r\n]", data[end : end + 400].decode(codec, errors="replace"), maxsplit=1)[0]
        text = before[len(before) - column + 1 :] + "\ufffd" + rest
        message += f" in {text[:120]!r}" + ("..." if len(text) > 120 else "")
    message += ". "
    if named:
        message += f"Name the file's own encoding with --encoding (it is not {label}). "
    elif bom:
        message += f"The file starts with a {bom} byte order mark: read it with --encoding {bom.lower()}. "
    else:
        message += (
            "A CSV file is read as UTF-8 unless --encoding names its encoding: one saved by Excel or another "
            "Windows program is probably --encoding cp1252 (latin-1 decodes any byte, but garbles text that is "
            "in another encoding). "
        )
    raise OrderHistoryError(message + "Nothing was imported.")


def _scan_csv(
    path: Path, compression: str | None, encoding: str, header: Sequence[str], limit_rows: int | None
) -> np.ndarray:
    """The file line each data record starts on; OrderHistoryError at the first with the wrong field count.

    pandas pads a short line with empty values and, when reading only some columns, drops a
    long line's extra fields: both would import shifted values silently. Blank lines are
    skipped, as pandas skips them; a quoted value may span lines (its record is named by
    the line it starts on).
    """
    starts: list[int] = []
    opener: Any = gzip.open if compression == "gzip" else open
    with opener(path, "rt", encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        try:
            next(reader, None)
            end = reader.line_num
            for row in reader:
                start, end = end + 1, reader.line_num
                if not row:  # pandas skips blank lines too
                    continue
                if limit_rows is not None and len(starts) >= limit_rows:
                    break
                if len(row) != len(header):
                    _wrong_field_count(path, start, header, row)
                starts.append(start)
        except csv.Error as exc:
            raise OrderHistoryError(
                f"{path}: line {reader.line_num}: not a readable CSV file ({exc}). Nothing was imported."
            ) from exc
    return np.asarray(starts, dtype=np.int64)


def _wrong_field_count(path: Path, line: int, header: Sequence[str], row: Sequence[str]) -> NoReturn:
    values = ", ".join(f"{name}={value!r}" for name, value in zip(header, row, strict=False))
    if len(row) > len(header):
        values += ", then " + ", ".join(map(repr, row[len(header) :])) + " beyond the last column"
    else:
        values += ", " + ", ".join(header[len(row) :]) + " missing"
    raise OrderHistoryError(
        f"{path}: line {line} has {len(row)} fields, expected {len(header)} "
        f"({', '.join(header)}); read as {values}. An unquoted comma inside a value (e.g. a "
        "price written 1,50) splits it: quote the value or use a decimal point. Nothing was imported."
    )


def read_order_lines(
    path: str | Path, fmt: OrderLineFormat = ORDER_LINES, limit_rows: int | None = None, encoding: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Read the file into a frame whose columns are the fields of ``fmt`` (raw values; '' for a missing optional one).

    A CSV file is decoded as UTF-8 (a byte order mark is allowed), or as ``encoding``
    when one is named; nothing else is tried. Every byte must decode, then the header
    is checked, then that every line has as many fields as the header, before the body
    is read. Returns ``(frame, unknown_columns)``; the frame's index, named ``line``, is
    the file line each record starts on (the header is line 1; for parquet, the row
    number). CSV values are read as text (nothing is guessed); parquet keeps its types
    (its text is UTF-8 by its format: naming an encoding is an error). A byte that does
    not decode, an empty file, a file with no data lines and an unreadable one are an
    :class:`OrderHistoryError`.
    """
    path = Path(path)
    if not path.is_file():
        raise OrderHistoryError(f"{path}: no such file")
    kind = _sniff(path)
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if encoding is not None:
            raise OrderHistoryError(
                f"{path}: --encoding applies to CSV files; a parquet file's text is UTF-8 by its format"
            )
        try:
            names = pq.read_schema(path).names
            mapping, unknown = map_columns(names, fmt)
            frame = pq.read_table(path, columns=list(mapping)).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise OrderHistoryError(f"{path}: not a readable parquet file ({exc})") from exc
        if limit_rows is not None:
            frame = frame.head(limit_rows)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="line")
    else:
        compression = "gzip" if kind == "csv.gz" else None
        codec, label = _resolve_encoding(encoding)
        try:
            _check_decoding(path, compression, codec, label, named=encoding is not None)
            header = pd.read_csv(path, nrows=0, compression=compression, encoding=codec).columns
            mapping, unknown = map_columns(header, fmt)
            lines = _scan_csv(path, compression, codec, [str(h) for h in header], limit_rows)
            frame = pd.read_csv(
                path,
                usecols=list(mapping),
                dtype=str,
                keep_default_na=False,
                nrows=limit_rows,
                compression=compression,
                encoding=codec,
            )
        except pd.errors.EmptyDataError as exc:
            raise OrderHistoryError(
                f"{path}: the file is empty (expected a header line: {', '.join(fmt.header_names())})"
            ) from exc
        except UnicodeError as exc:  # pragma: no cover - _check_decoding has decoded every byte
            raise OrderHistoryError(f"{path}: not {label} ({exc}). Nothing was imported.") from exc
        except (pd.errors.ParserError, csv.Error, EOFError, OSError, zlib.error) as exc:
            raise OrderHistoryError(f"{path}: not a readable CSV file ({exc})") from exc
        if len(frame) != len(lines):  # pragma: no cover - the two CSV parsers split records alike
            raise OrderHistoryError(
                f"{path}: pandas read {len(frame):,} records where the line check found {len(lines):,}; "
                "the lines cannot be numbered. Nothing was imported."
            )
        frame.index = pd.Index(lines, name="line")
    if frame.empty:
        raise OrderHistoryError(f"{path}: the file has a header but no data lines")
    frame = frame.rename(columns=mapping)
    for field in FIELDS:
        if field not in frame.columns:
            frame[field] = ""
    return frame[list(FIELDS)], unknown


def as_text(series: pd.Series) -> pd.Series:
    """Values as stripped text (missing values: '')."""
    return series.astype("string").fillna("").str.strip().astype(object)


def _parse_dates(series: pd.Series, date_format: str = "") -> pd.Series:
    """UTC date-times: ISO 8601 (a value's own offset is honoured; none: UTC), else ``date_format``, else NaT."""
    if pd.api.types.is_datetime64_any_dtype(series):
        dates = series
        dates = dates.dt.tz_localize("UTC") if getattr(dates.dt, "tz", None) is None else dates.dt.tz_convert("UTC")
    else:
        text = as_text(series)
        dates = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        retry = dates.isna() & (text != "")
        if date_format and retry.any():
            dates = dates.copy()
            dates[retry] = pd.to_datetime(text[retry], format=date_format, errors="coerce", utc=True)
    return dates.astype("datetime64[us, UTC]")


def _each(values: np.ndarray, test: Callable[[str], bool], any_at_all: bool) -> np.ndarray:
    """``test`` of every value (all False without a look when ``any_at_all`` says none passes)."""
    if not any_at_all:
        return np.zeros(len(values), dtype=bool)
    return np.fromiter(map(test, values), dtype=bool, count=len(values))


def _quantities(column: pd.Series, limits: ColumnLimits) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Quantities as int64 (0 where not a whole number or beyond ``limits``), whether each is a
    whole number, and whether it fits."""
    qty_raw = pd.to_numeric(column, errors="coerce").astype("float64")
    qty_ok = qty_raw.notna() & np.isfinite(qty_raw) & (qty_raw == qty_raw.round())
    qty_fits = qty_raw.abs() <= min(limits.quantity, _EXACT)
    return qty_raw.where(qty_ok & qty_fits, 0).astype("int64"), qty_ok, qty_fits


def _unit_prices(column: pd.Series, limits: ColumnLimits) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Unit prices in thousandths as int64 (0 where not a number or beyond ``limits``), whether
    each is a number, and whether it fits."""
    price_raw = pd.to_numeric(column, errors="coerce").astype("float64")
    price_ok = price_raw.notna() & np.isfinite(price_raw)
    mills_raw = (price_raw.where(price_ok, 0) * 1000).round()
    # a unit price of m mills is written as (|m| + 5) // 10 hundredths
    price_fits = mills_raw.abs() <= min(limits.cents * 10 + 4, _EXACT)
    return mills_raw.where(price_ok & price_fits, 0).astype("int64"), price_ok, price_fits


def _amounts(quantity: np.ndarray, price_mills: np.ndarray, limits: ColumnLimits) -> tuple[np.ndarray, np.ndarray]:
    """Each line's signed amount in hundredths, rounded half away from zero (0 where beyond
    ``limits``), and whether it fits."""
    # quantity x price in int64 only where it cannot overflow (far beyond any column anyway)
    exact = np.abs(quantity.astype("float64") * price_mills.astype("float64")) < 2.0**62
    amount_mills = quantity * np.where(exact, price_mills, 0)
    amount_cents = np.sign(amount_mills) * ((np.abs(amount_mills) + 5) // 10)
    amount_fits = exact & (np.abs(amount_cents) <= limits.cents)
    return np.where(amount_fits, amount_cents, 0), amount_fits


def _text_problems(texts: dict[str, np.ndarray], limits: ColumnLimits) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which lines hold a NUL byte in any text column, and per column which values are longer
    than its limit: one quick look per column, a test per value only where one is found."""
    has_nul = np.logical_or.reduce([_each(v, lambda t: "\x00" in t, "\x00" in "".join(v)) for v in texts.values()])
    longer = {}
    for name, values in texts.items():
        limit = getattr(limits, name)
        if limit is None or max(map(len, values), default=0) <= limit:
            longer[name] = np.zeros(len(values), dtype=bool)
        else:
            longer[name] = np.fromiter((len(t) > limit for t in values), dtype=bool, count=len(values))
    return has_nul, longer


def _flag_invoice_totals(
    reason: np.ndarray, amount_cents: np.ndarray, invoice: np.ndarray, limits: ColumnLimits
) -> None:
    """Give every importable line of an invoice whose total ``limits`` cannot hold the reason
    ``R_INVOICE_TOTAL`` (in place).

    An invoice's total is the sum of its importable lines: all of one sign (sales or a
    cancellation), each within limits.cents <= 2**53, so float64 sums it exactly as far as it
    matters."""
    importable = reason == ""
    amounts = np.where(importable, amount_cents, 0).astype("float64")
    if np.abs(amounts).sum() > limits.cents:  # else no invoice can be beyond it
        totals = pd.Series(amounts).groupby(invoice).transform("sum").abs().to_numpy()
        reason[importable & (totals > limits.cents)] = R_INVOICE_TOTAL


def normalize(
    frame: pd.DataFrame, limits: ColumnLimits | None = None, fmt: OrderLineFormat = ORDER_LINES
) -> pd.DataFrame:
    """Typed, cleaned lines plus a ``reason`` column ('' = importable), by the rules of ``fmt``.

    Columns: ``line`` (the file line of :func:`read_order_lines`'s index; 1-based
    row numbers for another frame), ``invoice`` (the order number), ``stock`` (the SKU),
    ``description`` (the title), ``quantity`` (int64, 0 where unparsable or beyond
    ``limits``), ``date`` (UTC), ``price_mills`` (unit price in thousandths of the
    currency, int64), ``amount_cents`` (signed ``quantity * unit_price`` in hundredths,
    rounded half away from zero; 0 where beyond ``limits``), ``customer`` ('' for guests),
    ``reason``. A value the database columns cannot hold (``limits``, default: only what
    keeps the arithmetic exact) is a reason too, and so is an invoice whose total they
    cannot hold (all its lines).
    """
    limits = limits or ColumnLimits()
    n = len(frame)
    invoice = as_text(frame["order"])
    stock = as_text(frame["sku"])
    description = as_text(frame["title"])
    customer = as_text(frame["customer"]).str.replace(r"\.0+$", "", regex=True)
    customer = customer.where(~customer.str.lower().isin(["nan", "none", "null", "<na>"]), "")
    quantity, qty_ok, qty_fits = _quantities(frame["quantity"], limits)
    price_mills, price_ok, price_fits = _unit_prices(frame["unit_price"], limits)
    dates = _parse_dates(frame["date"], fmt.date_format)
    amount_cents, amount_fits = _amounts(quantity.to_numpy(), price_mills.to_numpy(), limits)
    texts = {
        name: column.to_numpy() for name, column in zip(_TEXTS, (invoice, stock, description, customer), strict=True)
    }
    has_nul, longer = _text_problems(texts, limits)

    none = pd.Series(False, index=invoice.index)
    is_cancel = invoice.str.startswith(fmt.cancellation_prefix) if fmt.cancellation_prefix else none
    adjustment = ~invoice.str.match(fmt.order_pattern) if fmt.order_pattern else none
    conditions = [
        (invoice == "", R_NO_INVOICE),
        (adjustment, R_ADJUSTMENT),
        (stock == "", R_NO_STOCK),
        (dates.isna(), R_BAD_DATE),
        (~qty_ok, R_BAD_QTY),
        (~qty_fits, R_QTY_RANGE),
        (quantity == 0, R_QTY_ZERO),
        (~price_ok, R_BAD_PRICE),
        (~price_fits, R_PRICE_RANGE),
        ((quantity < 0) & ~is_cancel, R_NEG_QTY_SALE),
        ((quantity > 0) & is_cancel, R_POS_QTY_CANCEL),
        (price_mills == 0, R_ZERO_PRICE),
        (price_mills < 0, R_NEG_PRICE),
        (~amount_fits, R_AMOUNT_RANGE),
        (has_nul, R_NUL),
        (longer["invoice"], R_LONG_INVOICE),
        (longer["stock"], R_LONG_STOCK),
        (longer["description"], R_LONG_DESCRIPTION),
        (longer["customer"], R_LONG_CUSTOMER),
    ]
    reason = np.select(
        [np.asarray(c, dtype=bool) for c, _ in conditions], [r for _, r in conditions], default=""
    ).astype(object)

    _flag_invoice_totals(reason, amount_cents, invoice.to_numpy(), limits)
    index = pd.RangeIndex(n)
    line = frame.index.to_numpy() if frame.index.name == "line" else np.arange(1, n + 1)
    return pd.DataFrame(
        {
            "line": np.asarray(line, dtype=np.int64),
            "invoice": invoice.to_numpy(),
            "stock": stock.to_numpy(),
            "description": description.to_numpy(),
            "quantity": quantity.to_numpy(),
            "date": pd.Series(dates.array, index=index),
            "price_mills": price_mills.to_numpy(),
            "amount_cents": amount_cents,
            "customer": customer.to_numpy(),
            "reason": reason,
        },
        index=index,
    )


# -- one row per stock code, customer and invoice (of the importable lines) -------------


def select_customers(lines: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The lines of the first ``limit`` customers in file order (guest lines are left out)."""
    firsts = lines.loc[lines["customer"] != "", "customer"].drop_duplicates()
    chosen = set(firsts.iloc[:limit])
    return lines[lines["customer"].isin(chosen).to_numpy()]


def product_table(valid: pd.DataFrame) -> pd.DataFrame:
    """One row per stock code: ``stock, title, price_mills`` (read as :class:`~.records.ProductRow`)."""
    codes = pd.DataFrame({"stock": pd.unique(valid["stock"])})
    described = valid.loc[valid["description"] != "", ["stock", "description"]]
    titles = (
        described.groupby(["stock", "description"], sort=False)
        .size()
        .reset_index(name="n")
        .sort_values(["stock", "n", "description"], ascending=[True, False, True])
        .drop_duplicates("stock")[["stock", "description"]]
        .rename(columns={"description": "title"})
    )
    sales = valid["quantity"] > 0
    # prefer prices of sales lines; codes only seen in cancellations use those
    priced = valid.assign(pref=np.where(sales, 0, 1))
    prices = (
        priced.groupby(["stock", "pref", "price_mills"], sort=False)
        .agg(n=("line", "size"), last=("date", "max"))
        .reset_index()
        .sort_values(["stock", "pref", "n", "last"], ascending=[True, True, False, False])
        .drop_duplicates("stock")[["stock", "price_mills"]]
    )
    table = codes.merge(titles, on="stock", how="left").merge(prices, on="stock", how="left")
    table["title"] = table["title"].fillna("").astype(object)
    missing = table["title"] == ""
    table.loc[missing, "title"] = "Item " + table.loc[missing, "stock"]
    return table


def invoice_table(valid: pd.DataFrame) -> pd.DataFrame:
    """One row per invoice: ``invoice, date, customer, total_cents, lines`` (:class:`~.records.InvoiceRow`)."""
    return (
        valid.groupby("invoice", sort=False)
        .agg(
            date=("date", "min"),
            customer=("customer", "first"),
            total_cents=("amount_cents", "sum"),
            lines=("line", "size"),
        )
        .reset_index()
    )


def customer_table(valid: pd.DataFrame) -> pd.DataFrame:
    """One row per customer (guests have none): ``customer, joined`` (:class:`~.records.CustomerRow`)."""
    with_customer = valid[valid["customer"] != ""]
    return with_customer.groupby("customer", sort=False)["date"].min().reset_index(name="joined")
