"""An order-history import from end to end: :class:`OrderHistoryImporter`.

Phase 1 reads and validates the whole file (:mod:`~personalization_core.order_history.reader`,
no database); phase 2 writes everything in ONE transaction
(:class:`~personalization_core.order_history.writer.OrderHistoryWriter`), so a failure leaves
the database as it was and the resume story is "run it again". What is written is
described in ``personalization_core/order_history/README.md``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from django.db import transaction

from personalization_core.order_history.formats import ORDER_LINES, OrderLineFormat
from personalization_core.order_history.reader import (
    LIMIT_REASONS,
    customer_table,
    invoice_table,
    normalize,
    product_table,
    read_order_lines,
    select_customers,
)
from personalization_core.order_history.records import cents
from personalization_core.order_history.result import ImportResult
from personalization_core.order_history.writer import OrderHistoryWriter, ProgressFactory

__all__ = ["OrderHistoryImporter"]


class OrderHistoryImporter(OrderHistoryWriter):
    """Validate a file of order lines and write it into Oscar's tables.

    ``OrderHistoryImporter(path, fmt=ONLINE_RETAIL).run()`` does it all;
    ``personalization_core/order_history/README.md`` describes the mapping. ``progress`` is a
    ``tqdm``-like callable (``progress(iterable, total=..., desc=..., unit=...)``) or None for
    silence. The ``write_...`` steps are inherited from :class:`OrderHistoryWriter`.
    """

    product_table = staticmethod(product_table)
    invoice_table = staticmethod(invoice_table)

    def __init__(
        self,
        path: str | Path,
        *,
        fmt: OrderLineFormat = ORDER_LINES,
        limit_rows: int | None = None,
        limit_customers: int | None = None,
        encoding: str | None = None,
        public_products: bool = True,
        batch_size: int = 2000,
        dry_run: bool = False,
        progress: ProgressFactory | None = None,
    ) -> None:
        super().__init__(fmt=fmt, public_products=public_products, batch_size=batch_size, progress=progress)
        self.path = Path(path)
        self.limit_rows = limit_rows
        self.limit_customers = limit_customers
        self.encoding = encoding  # None: UTF-8 (reader.DEFAULT_ENCODING); never guessed
        self.dry_run = dry_run

    # -- phase 1: read and validate everything ------------------------------------

    def load(self, result: ImportResult) -> pd.DataFrame:
        """Read + validate; fill the read/skip part of ``result``; return importable lines."""
        t0 = time.perf_counter()
        frame, unknown = read_order_lines(self.path, self.fmt, self.limit_rows, encoding=self.encoding)
        result.unknown_columns = unknown
        result.rows_read = len(frame)
        limits = self.column_limits()
        lines = normalize(frame, limits, self.fmt)
        del frame
        if self.limit_customers is not None:
            lines = select_customers(lines, self.limit_customers)
        result.rows_selected = len(lines)
        result.revenue_file = cents(int(lines["amount_cents"].sum()))
        bad = lines[lines["reason"] != ""]
        if len(bad):
            result.skipped.update(bad["reason"].value_counts().to_dict())
            result.skipped_invoices.update(bad.groupby("reason")["invoice"].nunique().to_dict())
            result.skipped_examples.update(
                {reason: sorted(group.nsmallest(5).tolist()) for reason, group in bad.groupby("reason")["line"]}
            )
            result.revenue_skipped = cents(int(bad["amount_cents"].sum()))
            if not set(result.skipped).isdisjoint(LIMIT_REASONS):
                result.column_limits = limits.describe()
        valid = lines[lines["reason"] == ""].reset_index(drop=True)
        result.rows_valid = len(valid)
        result.seconds["read+validate"] = time.perf_counter() - t0
        return valid

    # -- phase 2: write --------------------------------------------------------------

    def run(self) -> ImportResult:
        """Read, validate and (unless ``dry_run``) write; return what happened."""
        result = ImportResult(path=str(self.path), format=self.fmt.name, currency=self.currency, dry_run=self.dry_run)
        valid = self.load(result)
        t0 = time.perf_counter()
        products = self.product_table(valid)
        invoices = self.invoice_table(valid)
        result.seconds["plan"] = time.perf_counter() - t0
        if valid.empty:  # nothing to write: not even the partner or the product classes
            return result
        if self.dry_run:
            existing_orders = self.existing_orders(list(invoices["invoice"]))
            new = invoices[~invoices["invoice"].isin(existing_orders)]
            result.count_orders(new, self.fmt.cancellation_prefix)
            result.created.clear()
            result.existing["orders"] = len(existing_orders)
            return result
        t0 = time.perf_counter()
        with transaction.atomic():
            self._write(result, valid, products, invoices)
        result.seconds["write"] = time.perf_counter() - t0
        return result

    def _write(self, result: ImportResult, valid: pd.DataFrame, products: pd.DataFrame, invoices: pd.DataFrame) -> None:
        """Every entity in turn; each step gets the ids the earlier ones wrote."""
        catalogue = self.write_catalogue()
        product_ids = self.write_products(result, products, catalogue)
        stock = self.write_stock_records(result, products, catalogue.partner, product_ids)
        user_ids = self.write_customers(result, customer_table(valid))
        order_ids = self.write_orders(result, invoices, user_ids)
        titles = dict(zip(products["stock"], products["title"], strict=True))
        self.write_lines(valid, order_ids, product_ids, stock, titles)
        self.write_analytics_records(result, list(user_ids.values()), list(product_ids.values()))
