"""The Online Retail reader needs no Django: no settings, no app registry, no database.

``personalization_core/order_history/reader.py`` (and the format, record, result and sample
modules it shares with the writer) import neither Django nor Oscar, and reading, cleaning and
tabulating a file in a fresh interpreter leaves Django unconfigured.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "personalization_core" / "order_history"
NO_DJANGO = ("formats", "reader", "records", "result", "sample")

LINES = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country,Remark
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom,x
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,0,17850,United Kingdom,x
C536379,D,Discount,-1,12/1/2010 9:41,27.50,14527,United Kingdom,x
536381,22139,RETROSPOT TEA SET CERAMIC 11 PC,3,2010-12-01 09:50:00,4.95,,United Kingdom,x
"""

SCRIPT = """
import json, sys
from personalization_core.order_history import ONLINE_RETAIL, reader
from personalization_core.order_history.records import InvoiceRow, ProductRow, rows_of

frame, unknown = reader.read_order_lines(sys.argv[1], ONLINE_RETAIL)
lines = reader.normalize(frame, fmt=ONLINE_RETAIL)
valid = lines[lines["reason"] == ""]
invoices = [row[:1] + row[2:] for row in rows_of(reader.invoice_table(valid), InvoiceRow)]
products = list(rows_of(reader.product_table(valid), ProductRow))

from django.apps import apps
from django.conf import settings

print(json.dumps({
    "unknown": unknown,
    "reasons": list(lines["reason"]),
    "invoices": invoices,
    "products": products,
    "customers": list(reader.customer_table(valid)["customer"]),
    "django set up": apps.ready,
    "settings read": settings.configured,
}))
"""


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_reader_side_modules_import_neither_django_nor_oscar() -> None:
    for name in NO_DJANGO:
        imported = _imported_modules(PACKAGE / f"{name}.py")
        assert not {m for m in imported if m.split(".")[0] in {"django", "oscar"}}, name
        own = {m.rsplit(".", 1)[-1] for m in imported if m.startswith("personalization_core.")}
        assert own <= set(NO_DJANGO), (name, own)


def test_reading_a_file_needs_no_django_setup(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text(LINES)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "unknown": ["Remark"],
        "reasons": ["", "zero unit price", "", ""],
        # invoice, customer ('' = guest), total in pence, lines
        "invoices": [["536365", "17850", 1530, 1], ["C536379", "14527", -2750, 1], ["536381", "", 1485, 1]],
        "products": [
            ["85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2550],
            ["D", "Discount", 27500],
            ["22139", "RETROSPOT TEA SET CERAMIC 11 PC", 4950],
        ],
        "customers": ["17850", "14527"],
        "django set up": False,
        "settings read": False,
    }
