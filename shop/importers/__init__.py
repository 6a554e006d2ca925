"""Batch importers of public data sets into the demo shop's Oscar tables.

The logic lives in plain classes (testable without a command line); the management
commands in :mod:`shop.management.commands` are thin wrappers around them.
"""

from shop.importers.online_retail import (
    ImportResult,
    OnlineRetailError,
    OnlineRetailImporter,
    read_online_retail,
    write_sample,
)

__all__ = [
    "ImportResult",
    "OnlineRetailError",
    "OnlineRetailImporter",
    "read_online_retail",
    "write_sample",
]
