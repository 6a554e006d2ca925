"""The deterministic demo subset of an Online Retail file (``import_online_retail --sample``).

Reads with :mod:`~shop.importers.online_retail.reader` and writes a gzipped CSV; no
database. ``shop/data/README.md`` says how the shipped sample was made.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import pandas as pd

from shop.importers.online_retail.reader import as_text, read_online_retail

__all__ = ["write_sample"]


def _stable_hash(value: str) -> int:
    return int.from_bytes(hashlib.md5(value.encode(), usedforsecurity=False).digest()[:8], "big")


def write_sample(
    source: str | Path,
    dest: str | Path,
    customers: int = 600,
    guest_percent: float = 5.0,
    encoding: str | None = None,
) -> dict[str, int]:
    """Write a deterministic subset of ``source`` to ``dest`` (gzipped CSV).

    Keeps every line (sales, cancellations and lines that the import will skip) of
    the ``customers`` customers with the smallest MD5 of their ID (a spread over the
    whole period, not the first ones), plus every line of the guest invoices whose
    MD5 falls in the lowest ``guest_percent`` percent. Columns, their order and
    their text are those of the source (parquet values are written as text);
    the gzip header has no timestamp, so the same input gives the same bytes. ``source``
    is read as :func:`~.reader.read_online_retail` reads it (``encoding``: None for
    UTF-8); ``dest`` is UTF-8.
    """
    frame, _ = read_online_retail(source, encoding=encoding)
    # back to the source's own headers is not possible for parquet; keep canonical names
    customer = as_text(frame["CustomerID"]).str.replace(r"\.0+$", "", regex=True)
    ids = sorted(set(customer) - {""}, key=lambda c: (_stable_hash(c), c))
    chosen = set(ids[:customers])
    invoice = as_text(frame["InvoiceNo"])
    guest_invoices = set(invoice[customer == ""])
    threshold = guest_percent / 100.0 * 2**64
    chosen_guests = {inv for inv in guest_invoices if _stable_hash(inv) < threshold}
    keep = customer.isin(chosen) | ((customer == "") & invoice.isin(chosen_guests))
    subset = frame[keep.to_numpy()]
    if pd.api.types.is_datetime64_any_dtype(subset["InvoiceDate"]):
        subset = subset.assign(InvoiceDate=subset["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M:%S"))
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
        "invoices": int(subset["InvoiceNo"].nunique()),
    }
