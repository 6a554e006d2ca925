"""``python manage.py import_order_history PATH``: a file of order lines -> Oscar's orders.

The logic is :mod:`personalization_core.order_history`; what is written is described in its
``README.md``. ``--format`` picks a built-in format (``order-lines``, a shop's own export;
``online-retail``, the UCI data set), ``--mapping FILE.json`` and ``--columns FIELD=HEADER``
describe another; ``--sample`` imports the shipped subset of the UCI Online Retail data.
A CSV file is read as UTF-8 (a byte order mark is allowed) unless ``--encoding`` names its
encoding; nothing is guessed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from personalization_core.order_history import (
    FIELDS,
    FORMATS,
    ONLINE_RETAIL,
    SAMPLE,
    FormatError,
    OrderHistoryError,
    OrderHistoryImporter,
    OrderLineFormat,
    write_sample,
)
from personalization_core.order_history.formats import FIELD_DOCS


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _column(value: str) -> tuple[str, str]:
    field, sep, header = value.partition("=")
    if not sep or not header.strip():
        raise ValueError(value)
    return field.strip(), header.strip()


class Command(BaseCommand):
    help = (
        "Import a file of order lines (CSV, CSV.gz or parquet: one line per order line) into Oscar's catalogue, "
        "customers and orders, or with --sample the shipped subset of the UCI Online Retail data."
    )
    #: the format without --format (``import_online_retail`` reads the UCI data set by default)
    default_format = "order-lines"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", help="the file of order lines (.csv, .csv.gz or .parquet)")
        parser.add_argument(
            "--sample",
            action="store_true",
            help=f"import the shipped sample of the UCI Online Retail data set ({SAMPLE.name}, CC BY 4.0) instead "
            "of PATH",
        )
        parser.add_argument(
            "--format",
            choices=sorted(FORMATS),
            default=self.default_format,
            help=f"the built-in format to start from (default {self.default_format}): order-lines reads "
            + ", ".join(f"{f} ({' or '.join(FORMATS['order-lines'].columns[f][:2])})" for f in FIELDS)
            + "; online-retail the UCI data set, whose C... invoices are cancellations",
        )
        parser.add_argument(
            "--mapping",
            metavar="FILE.json",
            help='a JSON format over --format\'s: {"columns": {"order": "Order ID", ...}, "date_format": '
            '"%%d/%%m/%%Y %%H:%%M", "cancellation_prefix": "R", "non_merchandise": ["SHIPPING"], "partner": '
            '["My shop", "my-shop"], ...}',
        )
        parser.add_argument(
            "--columns",
            type=_column,
            nargs="+",
            metavar="FIELD=HEADER",
            default=[],
            help="the header that holds a field, e.g. order='Order ID' sku=SKU; fields: "
            + "; ".join(f"{name}: {doc}" for name, doc in FIELD_DOCS.items()),
        )
        parser.add_argument("--date-format", metavar="FORMAT", help="strftime format of dates that are not ISO 8601")
        parser.add_argument(
            "--hidden-products",
            action="store_true",
            help="products the import creates (codes that are not in the catalogue) are not public",
        )
        parser.add_argument(
            "--limit-customers",
            type=_positive,
            metavar="N",
            help="only the orders of the first N customers (in file order); guest orders are left out",
        )
        parser.add_argument("--limit-rows", type=_positive, metavar="N", help="only read the first N data lines")
        parser.add_argument(
            "--encoding",
            metavar="NAME",
            help="the CSV file's text encoding, e.g. cp1252 or latin-1 (default: UTF-8, with or without a byte "
            "order mark; never guessed: a byte that does not decode stops the import with its line)",
        )
        parser.add_argument("--batch-size", type=_positive, default=2000, help="rows per INSERT (default 2000)")
        parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
        parser.add_argument(
            "--write-sample",
            metavar="OUT",
            help="write a deterministic subset of PATH to OUT (.csv.gz) and stop (how the shipped sample was made)",
        )
        parser.add_argument("--sample-customers", type=_positive, default=600, help="customers in --write-sample")
        parser.add_argument(
            "--sample-guest-percent", type=float, default=5.0, help="percent of guest invoices in --write-sample"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = self.path_of(options)
        fmt = self.format_of(options)
        try:
            if options["write_sample"]:
                stats = write_sample(
                    path,
                    options["write_sample"],
                    customers=options["sample_customers"],
                    guest_percent=options["sample_guest_percent"],
                    encoding=options["encoding"],
                    fmt=fmt,
                )
                self.stdout.write(
                    f"Wrote {options['write_sample']}: "
                    + ", ".join(f"{value:,} {key.replace('_', ' ')}" for key, value in stats.items())
                )
                return
            importer = OrderHistoryImporter(
                path,
                fmt=fmt,
                limit_rows=options["limit_rows"],
                limit_customers=options["limit_customers"],
                encoding=options["encoding"],
                public_products=not options["hidden_products"],
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
                progress=self.progress(options),
            )
            result = importer.run()
        except OrderHistoryError as exc:
            raise CommandError(str(exc)) from exc
        if options["verbosity"] > 0:
            self.stdout.write("\n".join(result.summary_lines()))

    @staticmethod
    def path_of(options: dict[str, Any]) -> Path:
        if options["sample"]:
            if options["path"]:
                raise CommandError("give PATH or --sample, not both")
            if options["write_sample"]:
                raise CommandError("--write-sample writes a subset of PATH: give PATH")
            return SAMPLE
        if not options["path"]:
            raise CommandError("give the file of order lines (PATH), or --sample to import the shipped sample")
        return Path(options["path"])

    @staticmethod
    def format_of(options: dict[str, Any]) -> OrderLineFormat:
        """--format, then --mapping over it, then --columns and --date-format over that."""
        fmt = ONLINE_RETAIL if options["sample"] else FORMATS[options["format"]]
        try:
            if options["mapping"]:
                try:
                    data = json.loads(Path(options["mapping"]).read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise CommandError(f"--mapping {options['mapping']}: not a readable JSON file ({exc})") from exc
                if not isinstance(data, dict):
                    raise CommandError(f"--mapping {options['mapping']}: a JSON object is expected")
                fmt = OrderLineFormat.from_dict(data, base=fmt)
            if options["columns"]:
                fmt = fmt.with_columns(dict(options["columns"]))
            if options["date_format"]:
                fmt = OrderLineFormat.from_dict({"date_format": options["date_format"]}, base=fmt)
        except FormatError as exc:
            raise CommandError(str(exc)) from exc
        return fmt

    @staticmethod
    def progress(options: dict[str, Any]) -> Any:
        if options["verbosity"] == 0 or options["no_progress"]:
            return None
        from tqdm import tqdm

        def progress(iterable: Any, **kwargs: Any) -> Any:
            return tqdm(iterable, file=sys.stderr, mininterval=1.0, **kwargs)

        return progress
