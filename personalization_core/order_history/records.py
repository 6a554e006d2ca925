"""The rows of an order-history import as named records (no Django, no database).

Two kinds live here:

* what the reader's frames hold, one record per row, read with :func:`rows_of`:
  :class:`ProductRow` (a stock code), :class:`CustomerRow`, :class:`InvoiceRow` and
  :class:`LineRow` (an importable file line);
* what the writer inserts with ``executemany``/``COPY``: :class:`OrderValues` and
  :class:`LineValues`, whose field names are the model fields they fill (the writer
  passes ``OrderValues._fields`` as the column list), so a value can never land in
  the wrong column by its position.

Every record is a ``NamedTuple``: as cheap as the plain tuple it replaces, and still
a tuple where the writer sends it to the database. Money helpers (:func:`cents`,
:func:`mills_to_cents`) are here too: the reader counts in integer pence and
tenths of pence (mills), the writer turns them into ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple, TypeVar

import pandas as pd

__all__ = [
    "CustomerRow",
    "InvoiceRow",
    "LineRow",
    "LineValues",
    "OrderValues",
    "ProductRow",
    "cents",
    "maker",
    "mills_to_cents",
    "rows_of",
]


# -- rows of the reader's frames -------------------------------------------------------


class ProductRow(NamedTuple):
    """One stock code, the SKU (:func:`~personalization_core.order_history.reader.product_table`)."""

    stock: str
    title: str
    #: the modal unit price of the code's sales lines, in thousandths of the currency
    price_mills: int


class CustomerRow(NamedTuple):
    """One customer (the file's customer id; :func:`~personalization_core.order_history.reader.customer_table`)."""

    customer: str
    #: the date of the customer's first imported invoice
    joined: pd.Timestamp


class InvoiceRow(NamedTuple):
    """One invoice (:func:`~personalization_core.order_history.reader.invoice_table`): one order."""

    invoice: str
    #: the earliest date of the invoice's lines (UTC)
    date: pd.Timestamp
    #: '' for a guest invoice
    customer: str
    #: the signed sum of its lines, in pence (negative for a cancellation)
    total_cents: int
    lines: int


class LineRow(NamedTuple):
    """One importable file line (the columns of ``normalize`` that the writer uses)."""

    invoice: str
    stock: str
    description: str
    #: signed: negative on a cancellation invoice
    quantity: int
    price_mills: int
    #: signed ``quantity * unit price`` in pence
    amount_cents: int


def rows_of(frame: pd.DataFrame, record: type[R]) -> Iterator[R]:
    """The rows of ``frame`` as ``record``s: its fields name the columns that are read."""
    columns = (frame[name].tolist() for name in record._fields)
    return map(maker(record), zip(*columns, strict=True))


# -- rows the writer inserts ----------------------------------------------------------------


class OrderValues(NamedTuple):
    """The varying fields of one ``order.Order`` (the constant ones are the writer's)."""

    number: str
    user: int | None  # pk
    guest_email: str
    total_incl_tax: Decimal
    total_excl_tax: Decimal
    status: str
    date_placed: datetime


class LineValues(NamedTuple):
    """The varying fields of one ``order.Line`` (relations as pks)."""

    order: int
    partner: int
    partner_name: str
    partner_sku: str
    stockrecord: int
    product: int
    title: str
    upc: str
    quantity: int
    line_price_incl_tax: Decimal
    line_price_excl_tax: Decimal
    line_price_before_discounts_incl_tax: Decimal
    line_price_before_discounts_excl_tax: Decimal
    unit_price_incl_tax: Decimal
    unit_price_excl_tax: Decimal
    status: str


R = TypeVar("R", ProductRow, CustomerRow, InvoiceRow, LineRow, OrderValues, LineValues)


def maker(record: type[R]) -> Callable[[Iterable[Any]], R]:
    """``make(values)``: a ``record`` from its values in field order, without Python-level argument parsing.

    For the loops over every file line: ``record(field=value, ...)`` costs about 2 us a
    row more (a second on the full file), this costs next to nothing. ``values`` must
    have exactly one value per field.
    """
    return partial(tuple.__new__, record)


# -- money ------------------------------------------------------------------------------------


def mills_to_cents(mills: int) -> int:
    """Thousandths of the currency -> hundredths (pence, cents), rounded half away from zero."""
    sign = -1 if mills < 0 else 1
    return sign * ((abs(mills) + 5) // 10)


def cents(value: Any) -> Decimal:
    """Hundredths (an int or numpy integer) -> the amount as a two-place ``Decimal``."""
    return Decimal(int(value)).scaleb(-2)
