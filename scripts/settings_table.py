"""README.md's settings tables, rendered from the declarations in ``recommender/conf.py`` and
``segmentation/conf.py`` (each key's name, type, default and one-line doc).

    python scripts/settings_table.py            # print both tables
    python scripts/settings_table.py --check    # exit 1 when README.md's tables differ from the declarations
    python scripts/settings_table.py --write    # rewrite the tables in README.md

A table sits between ``<!-- settings-table NAME -->`` and ``<!-- end settings-table -->``;
``tests/system/test_settings_table.py`` fails when one differs from its declarations.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"

#: the settings dict each README table documents, and the module that declares its keys
TABLES = {"RECOMMENDER": "recommender.conf", "SEGMENTATION": "segmentation.conf"}

BLOCK = re.compile(r"(<!-- settings-table (\w+) -->\n)(.*?)(<!-- end settings-table -->)", re.DOTALL)


def table(name: str) -> str:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from personalization_core.conf import settings_table

    return settings_table(importlib.import_module(TABLES[name]).SETTINGS)


def render_readme(text: str) -> str:
    """``text`` with every settings table replaced by the one its declarations give."""
    found: list[str] = []

    def replace(match: re.Match[str]) -> str:
        found.append(match[2])
        return match[1] + table(match[2]) + match[4]

    rendered = BLOCK.sub(replace, text)
    if sorted(found) != sorted(TABLES):
        raise SystemExit(f"README.md needs one settings-table block for each of {sorted(TABLES)}; found {found}")
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 when README.md's tables differ")
    group.add_argument("--write", action="store_true", help="rewrite the tables in README.md")
    args = parser.parse_args(argv)
    if not (args.check or args.write):
        for name in TABLES:
            print(f"### `{name}` settings\n\n{table(name)}")
        return 0
    current = README.read_text()
    rendered = render_readme(current)
    if args.write:
        if rendered != current:
            README.write_text(rendered)
        return 0
    if rendered != current:
        print("README.md's settings tables differ from the declarations: run python scripts/settings_table.py --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
