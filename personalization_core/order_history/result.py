"""What an order-history import read, skipped and wrote: :class:`ImportResult` (no database)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

from personalization_core.order_history.records import cents

__all__ = ["ImportResult"]


@dataclass
class ImportResult:
    """What an import read, skipped and wrote (``created`` is empty on a dry run)."""

    path: str
    #: the name of the file's format (:class:`~.formats.OrderLineFormat`)
    format: str = "order-lines"
    currency: str = "GBP"
    rows_read: int = 0
    rows_selected: int = 0
    rows_valid: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_invoices: Counter[str] = field(default_factory=Counter)
    skipped_examples: dict[str, list[int]] = field(default_factory=dict)  # reason -> its first file lines (5)
    column_limits: str = ""  # the database limits, in words, when a line was skipped for one
    unknown_columns: list[str] = field(default_factory=list)
    created: Counter[str] = field(default_factory=Counter)
    existing: Counter[str] = field(default_factory=Counter)
    revenue_file: Decimal = Decimal("0.00")
    revenue_skipped: Decimal = Decimal("0.00")
    revenue_imported: Decimal = Decimal("0.00")  # sum of total_incl_tax of the orders created
    dry_run: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        """A human-readable report (markdown tables)."""
        out = [
            f"Order history import of {self.path} ({self.format} format)"
            + (" (dry run: nothing written)" if self.dry_run else ""),
            "",
            "| lines | count |",
            "|---|---:|",
            f"| read | {self.rows_read:,} |",
        ]
        if self.rows_selected != self.rows_read:
            out.append(f"| not selected (--limit-customers) | {self.rows_read - self.rows_selected:,} |")
        out += [
            f"| skipped | {sum(self.skipped.values()):,} |",
            f"| importable | {self.rows_valid:,} |",
            "",
        ]
        if self.skipped:
            out += ["| skipped because | lines | invoices | first lines |", "|---|---:|---:|---:|"]
            for reason, count in self.skipped.most_common():
                first = ", ".join(str(line) for line in self.skipped_examples[reason])
                out.append(f"| {reason} | {count:,} | {self.skipped_invoices[reason]:,} | {first} |")
            out.append("")
            if self.column_limits:
                out += [f"Column limits: {self.column_limits}.", ""]
        out += ["| object | created | already present |", "|---|---:|---:|"]
        for key in (
            "products",
            "stock records",
            "users",
            "orders",
            "sales orders",
            "refund orders (cancellations)",
            "guest orders",
            "order lines",
            "user analytics records",
            "product analytics records",
        ):
            present = f"{self.existing[key]:,}" if key in self.existing else "-"
            out.append(f"| {key} | {self.created[key]:,} | {present} |")
        out += [
            "",
            f"Revenue in the selected lines: {self.revenue_file:,.2f} {self.currency}; skipped lines: "
            f"{self.revenue_skipped:,.2f}; in the orders created: {self.revenue_imported:,.2f}.",
        ]
        if self.unknown_columns:
            out.append(f"Ignored unknown column(s): {', '.join(self.unknown_columns)}.")
        if self.seconds:
            out.append("Seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()) + ".")
        return out

    def count_orders(self, new: pd.DataFrame, cancellation_prefix: str = "") -> None:
        """Record the orders about to be created: ``new`` holds their rows of the invoice table."""
        if cancellation_prefix:
            refunds = new["invoice"].str.startswith(cancellation_prefix)
        else:
            refunds = pd.Series(False, index=new.index)
        self.created["orders"] = len(new)
        self.created["refund orders (cancellations)"] = int(refunds.sum())
        self.created["sales orders"] = int((~refunds).sum())
        self.created["guest orders"] = int((new["customer"] == "").sum())
        self.created["order lines"] = int(new["lines"].sum())
        self.revenue_imported = cents(int(new["total_cents"].sum()))
