"""One table from several ``benchmarks.next_item`` JSON files of the same data set, e.g. seeds run
side by side on the two cores:

    python -m benchmarks.merge_next_item a.json b.json [--json merged.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.next_item import markdown_table


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = [json.loads(f.read_text()) for f in args.files]
    sources = {r["dataset"]["data_dir"] for r in results}
    if len(sources) != 1:
        raise SystemExit(f"the files are from different data sets: {sorted(sources)}")
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        for name, model_runs in r["runs"].items():
            runs.setdefault(name, []).extend(model_runs)
    table = markdown_table(runs)
    print(table)
    if args.json:
        merged = {
            "dataset": results[0]["dataset"],
            "runs": runs,
            "table": table,
            "commands": [r["command"] for r in results],
        }
        args.json.write_text(json.dumps(merged, indent=2, default=float))
    return table


if __name__ == "__main__":
    main()
