"""Import a shop's order history (a file of order lines) into Oscar: ``manage.py import_order_history``.

A file of order lines (CSV, gzipped CSV or parquet) becomes Oscar's products, stock records,
customers, orders and order lines, so the recommender and segmentation learn from a shop's past
from the first night. ``README.md`` beside this file describes what is written; the code is
split by what it touches:

* :mod:`.formats`: :class:`OrderLineFormat`, which headers hold which field and the rules of one
  kind of file; ``order-lines`` (a shop's own export) and ``online-retail`` (the UCI data set)
  are built in;
* :mod:`.reader`: read, validate and clean the file (pandas only, no database);
* :mod:`.records`: the rows as named records (``NamedTuple``) and money helpers;
* :mod:`.result`: :class:`ImportResult`, the report of an import;
* :mod:`.writer`: :class:`OrderHistoryWriter`, one ``write_...`` method per entity;
* :mod:`.importer`: :class:`OrderHistoryImporter`, read then write in one transaction;
* :mod:`.sample`: :func:`write_sample`, a deterministic subset, and :data:`SAMPLE`, the shipped
  subset of the UCI Online Retail data (``data/``, CC BY 4.0).
"""

from personalization_core.order_history.formats import (
    FIELDS,
    FORMATS,
    ONLINE_RETAIL,
    ORDER_LINES,
    FormatError,
    OrderLineFormat,
)
from personalization_core.order_history.importer import OrderHistoryImporter
from personalization_core.order_history.reader import (
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
    ColumnError,
    ColumnLimits,
    OrderHistoryError,
    map_columns,
    normalize,
    read_order_lines,
)
from personalization_core.order_history.result import ImportResult
from personalization_core.order_history.sample import SAMPLE, write_sample
from personalization_core.order_history.writer import OrderHistoryWriter, ProgressFactory

__all__ = [
    "DEFAULT_ENCODING",
    "FIELDS",
    "FORMATS",
    "LIMIT_REASONS",
    "ONLINE_RETAIL",
    "ORDER_LINES",
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
    "SAMPLE",
    "ColumnError",
    "ColumnLimits",
    "FormatError",
    "ImportResult",
    "OrderHistoryError",
    "OrderHistoryImporter",
    "OrderHistoryWriter",
    "OrderLineFormat",
    "ProgressFactory",
    "map_columns",
    "normalize",
    "read_order_lines",
    "write_sample",
]
