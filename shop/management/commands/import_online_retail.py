"""``python manage.py import_online_retail PATH``: UCI Online Retail -> Oscar.

The logic is :mod:`shop.importers.online_retail`; what is written (cancellations
and guests included) is documented in ``shop/data/README.md``. ``--sample OUT`` writes the
deterministic demo subset shipped as ``shop/data/online_retail_sample.csv.gz``
instead of importing. A CSV file is read as UTF-8 (a byte order mark is allowed)
unless ``--encoding`` names its encoding; nothing is guessed.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shop.importers.online_retail import OnlineRetailError, OnlineRetailImporter, write_sample


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Import the UCI Online Retail (or Online Retail II) file PATH (CSV, CSV.gz or parquet) into Oscar."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="online_retail.csv[.gz] or .parquet")
        parser.add_argument(
            "--limit-customers",
            type=_positive,
            metavar="N",
            help="only the invoices of the first N customers (in file order); guest invoices are left out",
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
            "--sample", metavar="OUT", help="write the deterministic demo subset of PATH to OUT (.csv.gz) and stop"
        )
        parser.add_argument("--sample-customers", type=_positive, default=600, help="customers in --sample")
        parser.add_argument(
            "--sample-guest-percent", type=float, default=5.0, help="percent of guest invoices in --sample"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["sample"]:
                stats = write_sample(
                    options["path"],
                    options["sample"],
                    customers=options["sample_customers"],
                    guest_percent=options["sample_guest_percent"],
                    encoding=options["encoding"],
                )
                self.stdout.write(
                    f"Wrote {options['sample']}: "
                    + ", ".join(f"{value:,} {key.replace('_', ' ')}" for key, value in stats.items())
                )
                return
            progress = None
            if options["verbosity"] > 0 and not options["no_progress"]:
                from tqdm import tqdm

                def progress(iterable: Any, **kwargs: Any) -> Any:
                    return tqdm(iterable, file=sys.stderr, mininterval=1.0, **kwargs)

            importer = OnlineRetailImporter(
                options["path"],
                limit_rows=options["limit_rows"],
                limit_customers=options["limit_customers"],
                encoding=options["encoding"],
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
                progress=progress,
            )
            result = importer.run()
        except OnlineRetailError as exc:
            raise CommandError(str(exc)) from exc
        if options["verbosity"] > 0:
            self.stdout.write("\n".join(result.summary_lines()))
