"""Read, validate and clean an Online Retail file: pandas only, no Django, no database.

:func:`read_online_retail` reads a CSV, gzipped CSV or parquet file into a frame with
canonical column names (:func:`map_columns`: Online Retail II headers are accepted);
:func:`normalize` types and cleans its lines and gives each one the first skip reason
that applies (``R_...``, '' = importable); :func:`product_table`,
:func:`customer_table` and :func:`invoice_table` derive one row per stock code,
customer and invoice from the importable lines. A file that cannot be imported at
all raises :class:`OnlineRetailError` before anything is written.

What the columns mean and how they are mapped onto Oscar is described in
``shop/data/README.md``.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CANONICAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "OnlineRetailColumnError",
    "OnlineRetailError",
    "customer_table",
    "invoice_table",
    "map_columns",
    "normalize",
    "product_table",
    "read_online_retail",
    "select_customers",
]

CANONICAL_COLUMNS: tuple[str, ...] = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
#: Country is read when present but not needed (no addresses are written).
REQUIRED_COLUMNS: tuple[str, ...] = CANONICAL_COLUMNS[:-1]

# header, lower-cased without spaces/underscores/hyphens -> canonical name
_HEADER_ALIASES: dict[str, str] = {
    "invoiceno": "InvoiceNo",
    "invoice": "InvoiceNo",
    "stockcode": "StockCode",
    "description": "Description",
    "quantity": "Quantity",
    "invoicedate": "InvoiceDate",
    "unitprice": "UnitPrice",
    "price": "UnitPrice",
    "customerid": "CustomerID",
    "country": "Country",
}


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

_INVOICE_RE = r"^C?\d+$"


class OnlineRetailError(ValueError):
    """The file cannot be imported at all (unreadable, wrong format, wrong columns)."""


class OnlineRetailColumnError(OnlineRetailError):
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


def map_columns(names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Map a file's headers to canonical names.

    Returns ``({header: canonical}, unknown_headers)``; raises
    :class:`OnlineRetailColumnError` when a required column is missing or two headers
    map to the same canonical column.
    """
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for name in names:
        key = re.sub(r"[\s_\-]+", "", str(name)).lower()
        canonical = _HEADER_ALIASES.get(key)
        if canonical is None:
            unknown.append(str(name))
            continue
        if canonical in seen:
            raise OnlineRetailColumnError(
                f"columns {seen[canonical]!r} and {name!r} both mean {canonical}", [canonical]
            )
        seen[canonical] = str(name)
        mapping[str(name)] = canonical
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        raise OnlineRetailColumnError(
            "missing required column(s): "
            + ", ".join(missing)
            + f" (found: {', '.join(map(str, names)) or 'none'}; Online Retail II names "
            "Invoice, Price and Customer ID are accepted too)",
            missing,
        )
    return mapping, unknown


def _check_field_counts(
    path: Path, compression: str | None, encoding: str, header: Sequence[str], limit_rows: int | None
) -> None:
    """Every data line has as many fields as the header (OnlineRetailError naming the first that has not).

    pandas pads a short line with empty values and, when reading only some columns, drops a
    long line's extra fields: both would import shifted values silently.
    """
    opener: Any = gzip.open if compression == "gzip" else open
    with opener(path, "rt", encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for n, row in enumerate(reader, start=1):
            if limit_rows is not None and n > limit_rows:
                return
            if not row or len(row) == len(header):  # pandas skips blank lines too
                continue
            values = ", ".join(f"{name}={value!r}" for name, value in zip(header, row, strict=False))
            if len(row) > len(header):
                values += ", then " + ", ".join(map(repr, row[len(header) :])) + " beyond the last column"
            else:
                values += ", " + ", ".join(header[len(row) :]) + " missing"
            raise OnlineRetailError(
                f"{path}: line {reader.line_num} has {len(row)} fields, expected {len(header)} "
                f"({', '.join(header)}); read as {values}. An unquoted comma inside a value (e.g. a "
                "price written 1,50) splits it: quote the value or use a decimal point. Nothing was imported."
            )


def read_online_retail(path: str | Path, limit_rows: int | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Read the file into a frame with canonical column names (raw values).

    Checks the header, then that every CSV line has as many fields as the header, before
    reading the body. Returns ``(frame, unknown_columns)``. CSV values are read as text
    (nothing is guessed); parquet keeps its types. An empty file, a file with no data lines
    and an unreadable one are an :class:`OnlineRetailError`.
    """
    path = Path(path)
    if not path.is_file():
        raise OnlineRetailError(f"{path}: no such file")
    kind = _sniff(path)
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
            mapping, unknown = map_columns(names)
            frame = pq.read_table(path, columns=list(mapping)).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise OnlineRetailError(f"{path}: not a readable parquet file ({exc})") from exc
        if limit_rows is not None:
            frame = frame.head(limit_rows)
    else:
        compression = "gzip" if kind == "csv.gz" else None
        frame = None
        for encoding in ("utf-8", "latin-1"):
            try:
                header = pd.read_csv(path, nrows=0, compression=compression, encoding=encoding).columns
                mapping, unknown = map_columns(header)
                _check_field_counts(path, compression, encoding, [str(h) for h in header], limit_rows)
                frame = pd.read_csv(
                    path,
                    usecols=list(mapping),
                    dtype=str,
                    keep_default_na=False,
                    nrows=limit_rows,
                    compression=compression,
                    encoding=encoding,
                )
                break
            except UnicodeDecodeError:
                continue
            except pd.errors.EmptyDataError as exc:
                raise OnlineRetailError(
                    f"{path}: the file is empty (expected a header line: {', '.join(REQUIRED_COLUMNS)}, Country)"
                ) from exc
            except (pd.errors.ParserError, csv.Error, EOFError, OSError) as exc:
                raise OnlineRetailError(f"{path}: not a readable CSV file ({exc})") from exc
        if frame is None:  # pragma: no cover - latin-1 decodes any byte
            raise OnlineRetailError(f"{path}: cannot decode the file")
    if frame.empty:
        raise OnlineRetailError(f"{path}: the file has a header but no data lines")
    frame = frame.rename(columns=mapping)
    if "Country" not in frame.columns:
        frame["Country"] = ""
    return frame[list(CANONICAL_COLUMNS)], unknown


def as_text(series: pd.Series) -> pd.Series:
    """Values as stripped text (missing values: '')."""
    return series.astype("string").fillna("").str.strip().astype(object)


def _parse_dates(series: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        dates = series
    else:
        text = as_text(series)
        dates = pd.to_datetime(text, format="ISO8601", errors="coerce")
        retry = dates.isna() & (text != "")
        if retry.any():
            dates = dates.copy()
            dates[retry] = pd.to_datetime(text[retry], format="%m/%d/%Y %H:%M", errors="coerce")
    dates = dates.dt.tz_localize("UTC") if getattr(dates.dt, "tz", None) is None else dates.dt.tz_convert("UTC")
    return dates.astype("datetime64[us, UTC]")


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed, cleaned lines plus a ``reason`` column ('' = importable).

    Columns: ``line`` (1-based data line number), ``invoice``, ``stock``,
    ``description``, ``quantity`` (int64, 0 where unparsable), ``date`` (UTC),
    ``price_mills`` (unit price in 1/1000 GBP, int64), ``amount_cents`` (signed
    ``Quantity * UnitPrice`` in pence, rounded half away from zero), ``customer``
    ('' for guests), ``reason``.
    """
    n = len(frame)
    invoice = as_text(frame["InvoiceNo"])
    stock = as_text(frame["StockCode"])
    description = as_text(frame["Description"])
    customer = as_text(frame["CustomerID"]).str.replace(r"\.0+$", "", regex=True)
    customer = customer.where(~customer.str.lower().isin(["nan", "none", "null", "<na>"]), "")

    qty_raw = pd.to_numeric(frame["Quantity"], errors="coerce").astype("float64")
    qty_ok = qty_raw.notna() & np.isfinite(qty_raw) & (qty_raw == qty_raw.round())
    quantity = qty_raw.where(qty_ok, 0).astype("int64")

    price_raw = pd.to_numeric(frame["UnitPrice"], errors="coerce").astype("float64")
    price_ok = price_raw.notna() & np.isfinite(price_raw)
    price_mills = (price_raw.where(price_ok, 0) * 1000).round().astype("int64")

    dates = _parse_dates(frame["InvoiceDate"])

    is_cancel = invoice.str.startswith("C")
    conditions = [
        (invoice == "", R_NO_INVOICE),
        (~invoice.str.match(_INVOICE_RE), R_ADJUSTMENT),
        (stock == "", R_NO_STOCK),
        (dates.isna(), R_BAD_DATE),
        (~qty_ok, R_BAD_QTY),
        (quantity == 0, R_QTY_ZERO),
        (~price_ok, R_BAD_PRICE),
        ((quantity < 0) & ~is_cancel, R_NEG_QTY_SALE),
        ((quantity > 0) & is_cancel, R_POS_QTY_CANCEL),
        (price_mills == 0, R_ZERO_PRICE),
        (price_mills < 0, R_NEG_PRICE),
    ]
    reason = np.select([c.to_numpy(dtype=bool) for c, _ in conditions], [r for _, r in conditions], default="")

    amount_mills = quantity.to_numpy() * price_mills.to_numpy()
    amount_cents = np.sign(amount_mills) * ((np.abs(amount_mills) + 5) // 10)
    index = pd.RangeIndex(n)
    return pd.DataFrame(
        {
            "line": np.arange(1, n + 1),
            "invoice": invoice.to_numpy(),
            "stock": stock.to_numpy(),
            "description": description.to_numpy(),
            "quantity": quantity.to_numpy(),
            "date": pd.Series(dates.array, index=index),
            "price_mills": price_mills.to_numpy(),
            "amount_cents": amount_cents,
            "customer": customer.to_numpy(),
            "reason": reason.astype(object),
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
    """One row per CustomerID (guests have none): ``customer, joined`` (:class:`~.records.CustomerRow`)."""
    with_customer = valid[valid["customer"] != ""]
    return with_customer.groupby("customer", sort=False)["date"].min().reset_index(name="joined")
