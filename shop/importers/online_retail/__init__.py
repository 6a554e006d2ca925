"""Import the UCI *Online Retail* data set (and *Online Retail II*) into Oscar.

``shop/data/README.md`` describes the file, what is written into Oscar (partner,
products, customers, orders; cancellations as "Refunded" orders with negative totals,
guests as guest orders), which lines are skipped and why, and the idempotency and
atomicity rules. The code is split by what it touches:

* :mod:`.reader`: read, validate and clean the file (pandas only, no database);
* :mod:`.records`: the rows as named records (``NamedTuple``) and money helpers;
* :mod:`.result`: :class:`ImportResult`, the report of an import;
* :mod:`.writer`: :class:`OnlineRetailWriter`, one ``write_...`` method per entity;
* :mod:`.importer`: :class:`OnlineRetailImporter`, read then write in one transaction;
* :mod:`.sample`: :func:`write_sample`, the deterministic demo subset.

Every name below stays importable from ``shop.importers.online_retail``.
"""

from shop.importers.online_retail.importer import OnlineRetailImporter
from shop.importers.online_retail.reader import (
    CANONICAL_COLUMNS,
    DEFAULT_ENCODING,
    LIMIT_REASONS,
    R_ADJUSTMENT,
    R_AMOUNT_RANGE,
    R_BAD_DATE,
    R_BAD_PRICE,
    R_BAD_QTY,
    R_INVOICE_TOTAL,
    R_LONG_CUSTOMER,
    R_LONG_DESCRIPTION,
    R_LONG_INVOICE,
    R_LONG_STOCK,
    R_NEG_PRICE,
    R_NEG_QTY_SALE,
    R_NO_INVOICE,
    R_NO_STOCK,
    R_NUL,
    R_POS_QTY_CANCEL,
    R_PRICE_RANGE,
    R_QTY_RANGE,
    R_QTY_ZERO,
    R_ZERO_PRICE,
    REQUIRED_COLUMNS,
    ColumnLimits,
    OnlineRetailColumnError,
    OnlineRetailError,
    map_columns,
    normalize,
    read_online_retail,
)
from shop.importers.online_retail.result import ImportResult
from shop.importers.online_retail.sample import write_sample
from shop.importers.online_retail.writer import (
    CATEGORY,
    CURRENCY,
    GIFT_CLASS,
    NON_MERCHANDISE_CODES,
    NUM_IN_STOCK,
    PARTNER_CODE,
    PARTNER_NAME,
    REFUND_STATUS,
    SALE_STATUS,
    SERVICE_CLASS,
    SHIPPING_METHOD,
    OnlineRetailWriter,
    ProgressFactory,
)

__all__ = [
    "CANONICAL_COLUMNS",
    "CATEGORY",
    "CURRENCY",
    "DEFAULT_ENCODING",
    "GIFT_CLASS",
    "LIMIT_REASONS",
    "NON_MERCHANDISE_CODES",
    "NUM_IN_STOCK",
    "PARTNER_CODE",
    "PARTNER_NAME",
    "REFUND_STATUS",
    "REQUIRED_COLUMNS",
    "R_ADJUSTMENT",
    "R_AMOUNT_RANGE",
    "R_BAD_DATE",
    "R_BAD_PRICE",
    "R_BAD_QTY",
    "R_INVOICE_TOTAL",
    "R_LONG_CUSTOMER",
    "R_LONG_DESCRIPTION",
    "R_LONG_INVOICE",
    "R_LONG_STOCK",
    "R_NEG_PRICE",
    "R_NEG_QTY_SALE",
    "R_NO_INVOICE",
    "R_NO_STOCK",
    "R_NUL",
    "R_POS_QTY_CANCEL",
    "R_PRICE_RANGE",
    "R_QTY_RANGE",
    "R_QTY_ZERO",
    "R_ZERO_PRICE",
    "SALE_STATUS",
    "SERVICE_CLASS",
    "SHIPPING_METHOD",
    "ColumnLimits",
    "ImportResult",
    "OnlineRetailColumnError",
    "OnlineRetailError",
    "OnlineRetailImporter",
    "OnlineRetailWriter",
    "ProgressFactory",
    "map_columns",
    "normalize",
    "read_online_retail",
    "write_sample",
]
