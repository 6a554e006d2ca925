"""Time ``manage.py import_online_retail`` on the full UCI Online Retail file.

For each backend it makes a fresh scratch database (PostgreSQL: ``CREATE DATABASE``
on the server of ``--pg-url``, dropped afterwards; SQLite: a temporary
``SHOP_VAR_DIR``), runs ``migrate`` (timed separately), then times the import in a
subprocess (wall clock, process start included), and a second, idempotent run.
Prints a markdown table and writes JSON::

    .venv/bin/python benchmarks/import_online_retail.py                      # PostgreSQL
    .venv/bin/python benchmarks/import_online_retail.py --backend postgres sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))
DEFAULT_PATH = SHARED / "online-retail" / "online_retail.csv.gz"
COUNT_SQL = {
    "orders": "SELECT COUNT(*) FROM order_order",
    "refund_orders": "SELECT COUNT(*) FROM order_order WHERE status = 'Refunded'",
    "guest_orders": "SELECT COUNT(*) FROM order_order WHERE user_id IS NULL",
    "lines": "SELECT COUNT(*) FROM order_line",
    "products": "SELECT COUNT(*) FROM catalogue_product",
    "users": "SELECT COUNT(*) FROM auth_user",
    "revenue": "SELECT SUM(total_incl_tax) FROM order_order",
}


def _manage(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout


def _run(backend: str, env: dict[str, str], path: Path, extra: list[str], counts: Any) -> dict[str, Any]:
    migrate_s, _ = _manage(["migrate", "-v0"], env)
    import_s, out = _manage(["import_online_retail", str(path), "--no-progress", *extra], env)
    rerun_s, rerun_out = _manage(["import_online_retail", str(path), "--no-progress", *extra], env)
    read = int(re.search(r"\| read \| ([\d,]+) \|", out).group(1).replace(",", ""))
    figures = counts()
    assert "| order lines | 0 |" in rerun_out, "the second run wrote lines"
    return {
        "backend": backend,
        "rows": read,
        **figures,
        "migrate_s": round(migrate_s, 1),
        "import_s": round(import_s, 1),
        "rows_per_s": round(read / import_s),
        "rerun_s": round(rerun_s, 1),
        "report": out,
    }


def bench_postgres(path: Path, pg_url: str, extra: list[str]) -> dict[str, Any]:
    import psycopg

    name = f"oscar_import_bench_{os.getpid()}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url.rsplit("/", 1)[0] + f"/{name}"
    env = {**os.environ, "DATABASE_URL": url}
    try:

        def counts() -> dict[str, Any]:
            with psycopg.connect(url) as conn:
                return {k: conn.execute(q).fetchone()[0] for k, q in COUNT_SQL.items()}

        result = _run("PostgreSQL", env, path, extra, counts)
        with psycopg.connect(pg_url) as conn:
            result["server"] = conn.execute("SHOW server_version").fetchone()[0]
        return result
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_sqlite(path: Path, extra: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="oscar-import-bench-") as var:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["SHOP_VAR_DIR"] = var

        def counts() -> dict[str, Any]:
            with sqlite3.connect(Path(var) / "db.sqlite3") as conn:
                return {k: conn.execute(q).fetchone()[0] for k, q in COUNT_SQL.items()}

        result = _run("SQLite", env, path, extra, counts)
        result["server"] = sqlite3.sqlite_version
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--backend", nargs="+", choices=["postgres", "sqlite"], default=["postgres"])
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--limit-rows", type=int, help="pass --limit-rows to the import (smoke runs)")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "import_online_retail.json")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        print(f"no data file at {args.path} (set SHARED_DATA_DIR or --path)", file=sys.stderr)
        return 2
    extra = ["--limit-rows", str(args.limit_rows)] if args.limit_rows else []
    results = []
    for backend in args.backend:
        if backend == "postgres":
            results.append(bench_postgres(args.path, args.pg_url, extra))
        else:
            results.append(bench_sqlite(args.path, extra))
    print(f"Import of {args.path.name} ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)\n")
    print("| backend | rows | orders | lines | revenue GBP | migrate s | import s | rows/s | re-run s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['backend']} {r['server']} | {r['rows']:,} | {r['orders']:,} | {r['lines']:,} | "
            f"{float(r['revenue']):,.2f} | {r['migrate_s']} | {r['import_s']} | {r['rows_per_s']:,} | {r['rerun_s']} |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "path": str(args.path),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "results": [{k: (float(v) if k == "revenue" else v) for k, v in r.items()} for r in results],
    }
    args.json.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
