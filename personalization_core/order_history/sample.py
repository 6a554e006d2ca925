"""A deterministic subset of a file of order lines (``import_order_history PATH --write-sample OUT``).

Reads with :mod:`~personalization_core.order_history.reader` and writes a gzipped CSV; no
database. ``data/README.md`` says how the shipped sample (``data/online_retail_sample.csv.gz``)
was made.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import pandas as pd

from personalization_core.order_history.formats import FIELDS, ORDER_LINES, OrderLineFormat
from personalization_core.order_history.reader import as_text, read_order_lines

__all__ = ["SAMPLE", "write_sample"]

#: the shipped sample of the UCI Online Retail data set (format ``online-retail``)
SAMPLE = Path(__file__).resolve().parent / "data" / "online_retail_sample.csv.gz"


def _stable_hash(value: str) -> int:
    return int.from_bytes(hashlib.md5(value.encode(), usedforsecurity=False).digest()[:8], "big")


def write_sample(
    source: str | Path,
    dest: str | Path,
    customers: int = 600,
    guest_percent: float = 5.0,
    encoding: str | None = None,
    fmt: OrderLineFormat = ORDER_LINES,
) -> dict[str, int]:
    """Write a deterministic subset of ``source`` to ``dest`` (gzipped CSV).

    Keeps every line (sales, cancellations and lines that the import will skip) of
    the ``customers`` customers with the smallest MD5 of their ID (a spread over the
    whole period, not the first ones), plus every line of the guest invoices whose
    MD5 falls in the lowest ``guest_percent`` percent. The columns are the fields
    ``fmt`` names, in field order, under its first header each; the text of each
    value is the source's (parquet values are written as text); the gzip header has no
    timestamp, so the same input gives the same bytes. ``source`` is read as
    :func:`~.reader.read_order_lines` reads it with ``fmt`` (``encoding``: None for
    UTF-8); ``dest`` is UTF-8.
    """
    frame, _ = read_order_lines(source, fmt, encoding=encoding)
    customer = as_text(frame["customer"]).str.replace(r"\.0+$", "", regex=True)
    ids = sorted(set(customer) - {""}, key=lambda c: (_stable_hash(c), c))
    chosen = set(ids[:customers])
    invoice = as_text(frame["order"])
    guest_invoices = set(invoice[customer == ""])
    threshold = guest_percent / 100.0 * 2**64
    chosen_guests = {inv for inv in guest_invoices if _stable_hash(inv) < threshold}
    keep = customer.isin(chosen) | ((customer == "") & invoice.isin(chosen_guests))
    named = [f for f in FIELDS if fmt.columns.get(f)]
    subset = frame.loc[keep.to_numpy(), named]
    if pd.api.types.is_datetime64_any_dtype(subset["date"]):
        subset = subset.assign(date=subset["date"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    subset = subset.rename(columns={f: fmt.header(f) for f in named})
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    subset.to_csv(buffer, index=False, lineterminator="\n")
    with dest.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(buffer.getvalue().encode("utf-8"))
    return {
        "rows": len(subset),
        "customers": len(chosen),
        "guest_invoices": len(chosen_guests),
        "invoices": int(subset[fmt.header("order")].nunique()),
    }
