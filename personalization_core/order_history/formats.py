"""What a file of order lines looks like: :class:`OrderLineFormat` (no Django, no database).

A format names, for each field the importer reads, the headers that hold it, and the few rules
that differ between exports: which order numbers are cancellations, which are neither a sale nor
a cancellation, a date format besides ISO 8601, the stock codes that are fees rather than goods,
and the names of the partner, product classes and category that imported products get. Two are
built in (:data:`FORMATS`):

* ``order-lines`` (:data:`ORDER_LINES`): one line per order line with the headers ``order``,
  ``sku``, ``title``, ``quantity``, ``date``, ``unit_price``, ``customer`` (common spellings are
  accepted: ``order_id``, ``Order Number``, ``qty``, ``price``, ``customer_id``...); every line
  is a sale;
* ``online-retail`` (:data:`ONLINE_RETAIL`): the UCI Online Retail data set (and Online Retail
  II), whose ``C...`` invoices are cancellations.

A shop's own export is one of them with other headers (:meth:`OrderLineFormat.with_columns`,
``import_order_history --columns order="Order ID"``) or a JSON file
(:meth:`OrderLineFormat.from_dict`, ``--mapping``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FIELDS", "FORMATS", "ONLINE_RETAIL", "ORDER_LINES", "FormatError", "OrderLineFormat", "header_key"]

#: the fields of an order line, in the order a header names them
FIELDS: tuple[str, ...] = ("order", "sku", "title", "quantity", "date", "unit_price", "customer", "country")
#: what each field holds, for ``--help`` and the errors
FIELD_DOCS: dict[str, str] = {
    "order": "order (invoice) number; an order's lines share it",
    "sku": "the product's code (matched to Product.upc, then to a stock record's partner_sku)",
    "title": "the product's title on that line (optional: 'Item <sku>')",
    "quantity": "whole units (negative on a cancellation)",
    "date": "when the order was placed (ISO 8601, or the format's date_format); UTC unless it says",
    "unit_price": "price of one unit, tax included (a decimal point, no currency sign)",
    "customer": "the customer's id in your export, or their e-mail address (matched to the shop's users); "
    "optional: without it every order is a guest order",
    "country": "read and ignored (no addresses are written)",
}


class FormatError(ValueError):
    """A format (a JSON mapping, ``--columns``) that cannot describe a file."""


def header_key(name: object) -> str:
    """How headers are compared: case, spaces, underscores and hyphens do not count."""
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


@dataclass(frozen=True)
class OrderLineFormat:
    """How one kind of order-lines file is read and written into Oscar."""

    name: str
    #: field -> the headers that hold it (the first is the one messages name)
    columns: Mapping[str, tuple[str, ...]]
    #: the fields a file must have
    required: tuple[str, ...] = ("order", "sku", "quantity", "date", "unit_price")
    #: order numbers starting with this are cancellations ("": none are)
    cancellation_prefix: str = ""
    #: order numbers that do not match this regular expression are skipped ("": any number)
    order_pattern: str = ""
    #: a ``strftime`` format tried for the dates ISO 8601 does not read ("": none)
    date_format: str = ""
    #: stock codes that are charges or fees, not goods: their products are not public
    non_merchandise: frozenset[str] = frozenset()
    #: (name, code) of the partner whose stock records the imported products get
    partner: tuple[str, str] = ("Order history", "order-history")
    #: (name, slug) of the product classes of goods and of non-merchandise
    product_class: tuple[str, str] = ("Imported product", "imported-product")
    service_class: tuple[str, str] = ("Non-merchandise", "non-merchandise")
    #: (name, slug) of the category the imported goods are put in
    category: tuple[str, str] = ("Imported", "imported")

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(FIELDS))
        if unknown:
            raise FormatError(f"unknown field(s) {', '.join(unknown)}: the fields are {', '.join(FIELDS)}")
        missing = [f for f in self.required if not self.columns.get(f)]
        if missing:
            raise FormatError(f"format {self.name!r} names no header for the required field(s) {', '.join(missing)}")
        keys: dict[str, str] = {}
        for name, headers in self.columns.items():
            for header in headers:
                other = keys.setdefault(header_key(header), name)
                if other != name:
                    raise FormatError(f"header {header!r} is given for both {other} and {name}")
        if self.order_pattern:
            try:
                re.compile(self.order_pattern)
            except re.error as exc:
                raise FormatError(f"order_pattern {self.order_pattern!r} is not a regular expression ({exc})") from exc

    # -- headers ------------------------------------------------------------------------------

    def header(self, name: str) -> str:
        """The header messages use for a field."""
        return self.columns[name][0]

    def header_names(self) -> list[str]:
        """Each field's first header, in field order: the header line the format expects."""
        return [self.header(f) for f in FIELDS if self.columns.get(f)]

    def lookup(self) -> dict[str, str]:
        """``{header_key(header): field}`` of every accepted header."""
        return {header_key(h): name for name, headers in self.columns.items() for h in headers}

    def describe_columns(self) -> str:
        """``InvoiceNo (or Invoice), StockCode, ...``: what the format reads, for the errors."""
        parts = []
        for name in FIELDS:
            headers = self.columns.get(name)
            if headers:
                alternatives = f" (or {', '.join(headers[1:])})" if len(headers) > 1 else ""
                optional = "" if name in self.required else ", optional"
                parts.append(f"{name}: {headers[0]}{alternatives}{optional}")
        return "; ".join(parts)

    # -- rules --------------------------------------------------------------------------------

    def is_cancellation(self, number: str) -> bool:
        return bool(self.cancellation_prefix) and number.startswith(self.cancellation_prefix)

    # -- variants -----------------------------------------------------------------------------

    def with_columns(self, columns: Mapping[str, str | Iterable[str]]) -> OrderLineFormat:
        """This format with other headers for some fields (``{"order": "Order ID"}``): they replace its own."""
        merged = dict(self.columns)
        for name, headers in columns.items():
            merged[name] = (headers,) if isinstance(headers, str) else tuple(headers)
        return dataclasses.replace(self, columns=merged)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: OrderLineFormat | None = None) -> OrderLineFormat:
        """A format from a JSON mapping: ``{"columns": {"order": "Order ID", ...}, "date_format": "%d/%m/%Y"}``.

        Keys left out are ``base``'s (default :data:`ORDER_LINES`); ``"format": "online-retail"``
        starts from a built-in format instead. ``columns`` replaces the base's headers of the
        fields it names.
        """
        data = dict(data)
        if "format" in data:
            name = data.pop("format")
            if name not in FORMATS:
                raise FormatError(f"unknown format {name!r} (built in: {', '.join(FORMATS)})")
            base = FORMATS[name]
        base = base or ORDER_LINES
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise FormatError(f"unknown key(s) {', '.join(unknown)} (allowed: format, {', '.join(sorted(allowed))})")
        columns = data.pop("columns", {})
        if not isinstance(columns, Mapping) or not all(
            isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(h, str) for h in v))
            for v in columns.values()
        ):
            raise FormatError('"columns" maps each field to a header or a list of headers')
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("partner", "product_class", "service_class", "category"):
                if not (isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)):
                    raise FormatError(f'"{key}" is [name, code], e.g. ["My shop", "my-shop"]')
                value = tuple(value)
            elif key == "required":
                if not (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
                    raise FormatError('"required" is a list of fields')
                value = tuple(value)
            elif key == "non_merchandise":
                if not (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
                    raise FormatError('"non_merchandise" is a list of stock codes')
                value = frozenset(value)
            elif not isinstance(value, str):
                raise FormatError(f'"{key}" is a string')
            changes[key] = value
        return dataclasses.replace(base, **changes).with_columns(columns)


#: a shop's own export: one line per order line, every line a sale
ORDER_LINES = OrderLineFormat(
    name="order-lines",
    columns={
        "order": ("order", "order_id", "order_number", "order_no", "invoice", "invoice_no"),
        "sku": ("sku", "product_sku", "upc", "stock_code", "product_code", "product_id"),
        "title": ("title", "product_title", "product_name", "description"),
        "quantity": ("quantity", "qty"),
        "date": ("date", "order_date", "date_placed", "created", "created_at", "invoice_date"),
        "unit_price": ("unit_price", "price", "price_incl_tax", "unit_price_incl_tax"),
        "customer": ("customer", "customer_id", "user_id", "customer_number"),
        "country": ("country",),
    },
)

#: the UCI Online Retail data set (Online Retail II's names too): ``C...`` invoices are cancellations
ONLINE_RETAIL = OrderLineFormat(
    name="online-retail",
    columns={
        "order": ("InvoiceNo", "Invoice"),
        "sku": ("StockCode",),
        "title": ("Description",),
        "quantity": ("Quantity",),
        "date": ("InvoiceDate",),
        "unit_price": ("UnitPrice", "Price"),
        "customer": ("CustomerID", "Customer ID"),
        "country": ("Country",),
    },
    required=("order", "sku", "title", "quantity", "date", "unit_price", "customer"),
    cancellation_prefix="C",
    order_pattern=r"^C?\d+$",
    date_format="%m/%d/%Y %H:%M",
    # postage, carriage, fees, manual adjustments, samples and discounts
    non_merchandise=frozenset(
        {
            "POST",
            "DOT",
            "C2",
            "M",
            "m",
            "D",
            "S",
            "B",
            "CRUK",
            "PADS",
            "AMAZONFEE",
            "BANK CHARGES",
            "ADJUST",
            "ADJUST2",
            "TEST001",
            "TEST002",
        }
    ),
    partner=("Online Retail", "online-retail"),
    product_class=("Gift", "gift"),
    category=("Gifts", "gifts"),
)

FORMATS: dict[str, OrderLineFormat] = {f.name: f for f in (ORDER_LINES, ONLINE_RETAIL)}
