"""The demo shop with its Redis up, paused (SIGSTOP: hung) and killed (SIGKILL: dead), side by side.

The demo shop's settings on PostgreSQL, served by gunicorn (``--workers``, default 4), with a
``redis-server`` of its own on a free port of 127.0.0.1 as cache and broker (the shared Redis is
never touched). For each condition a fresh gunicorn is started and warmed up with Redis up, then
Redis is paused or killed (or left alone), then ``--clients`` threads (default 4) each with its own
basket of three lines request the catalogue, a product and the basket page in turn, ``--requests``
of each page in all. The table gives p50/p95 per page and condition, the 5xx (and failed)
responses, and what gunicorn's processes logged meanwhile (lines and bytes).

``--compare-plain`` adds the same conditions with a plain django-redis cache, without the circuit
breaker (``benchmarks/redis_outage_settings.py``): pass a small ``--plain-requests``, each paused
request of that arm waits seconds.

The first run creates the database ``bench_redis_outage`` and imports the shipped Online Retail
sample into it (migrate, import, search index: a few minutes); later runs reuse it.

    .venv/bin/python benchmarks/redis_outage.py [--requests 300] [--compare-plain --plain-requests 24]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.redis_server import RedisServer, free_port  # noqa: E402

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
DB_NAME = "bench_redis_outage"
DATA = REPO / "personalization_core" / "order_history" / "data" / "online_retail_sample.csv.gz"
PAGES = ("catalogue", "product", "basket")


def _env(pg_url: str, redis_url: str, var_dir: Path, cache: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": pg_url.rsplit("/", 1)[0] + "/" + DB_NAME,
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "benchmarks.redis_outage_settings",
        "SHOP_VAR_DIR": str(var_dir),
        "DJANGO_DEBUG": "0",
        "BENCH_CACHE": cache,
        "PYTHONPATH": str(REPO),
    }


def prepare_database(pg_url: str, env: dict[str, str]) -> list[int]:
    """Create and fill the benchmark's database once; return ids of products a shopper can buy."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    manage = [sys.executable, str(REPO / "manage.py")]
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        filled = (
            conn.execute("SELECT to_regclass('catalogue_product') IS NOT NULL").fetchone()[0]
            and conn.execute("SELECT count(*) FROM catalogue_product").fetchone()[0]
        )
    if not filled:
        print("preparing the database (migrate, import the Online Retail sample, search index) ...", flush=True)
        for command in (["migrate", "--verbosity", "0"], ["import_online_retail", str(DATA)], ["update_index"]):
            subprocess.run([*manage, *command], env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        rows = conn.execute(
            "SELECT p.id FROM catalogue_product p JOIN partner_stockrecord s ON s.product_id = p.id "
            "WHERE p.is_public AND s.num_in_stock > 10 AND p.structure = 'standalone' ORDER BY p.id LIMIT 40"
        ).fetchall()
    return [r[0] for r in rows]


class Gunicorn:
    """``gunicorn shop.wsgi`` in its own process group, its output in a log file."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.base = f"http://127.0.0.1:{self.port}"
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "shop.wsgi:application",
                    "--workers",
                    str(workers),
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--timeout",
                    "120",
                    "--graceful-timeout",
                    "5",
                    "--no-control-socket",
                ],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(self.base + "/catalogue/", timeout=30).read()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start:\n" + log.read_text()[-3000:]) from None
                time.sleep(0.5)

    def log_size(self) -> tuple[int, int]:
        text = self.log.read_bytes()
        return len(text), text.count(b"\n")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Shopper:
    """One browser: its own cookies (session, basket, visitor), a basket of three lines."""

    def __init__(self, base: str, product_ids: list[int], index: int) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.addheaders = [("User-Agent", UA)]
        picks = [product_ids[(3 * index + k) % len(product_ids)] for k in range(3)]
        self.product_url = self._product_url(product_ids[(7 * index + 5) % len(product_ids)])
        for pk in picks:
            self.add_to_basket(pk)

    def _product_url(self, pk: int) -> str:
        """Oscar's product URL (``/catalogue/<slug>_<pk>/``) through its redirect from the bare id."""
        response = self.opener.open(f"{self.base}/catalogue/x_{pk}/", timeout=60)
        return response.geturl()

    def add_to_basket(self, pk: int) -> None:
        self.opener.open(self._product_url(pk), timeout=60).read()
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "quantity": 1}).encode()
        self.opener.open(f"{self.base}/basket/add/{pk}/", data=data, timeout=60).read()

    def get(self, page: str) -> tuple[float, int]:
        url = {"catalogue": f"{self.base}/catalogue/", "product": self.product_url, "basket": f"{self.base}/basket/"}[
            page
        ]
        t = time.perf_counter()
        try:
            with self.opener.open(url, timeout=120) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status = 0  # no response at all
        return time.perf_counter() - t, status


def run_condition(shoppers: list[Shopper], requests: int) -> dict[str, list[tuple[float, int]]]:
    """Each page ``requests`` times in all, spread over the shoppers' threads, pages in turn."""
    results: dict[str, list[tuple[float, int]]] = {p: [] for p in PAGES}
    lock = threading.Lock()
    per_shopper = [requests // len(shoppers) + (i < requests % len(shoppers)) for i in range(len(shoppers))]

    def work(shopper: Shopper, n: int) -> None:
        for _ in range(n):
            for page in PAGES:
                outcome = shopper.get(page)
                with lock:
                    results[page].append(outcome)

    threads = [threading.Thread(target=work, args=(s, n)) for s, n in zip(shoppers, per_shopper, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def summarise(results: dict[str, list[tuple[float, int]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    every = [o for outcomes in results.values() for o in outcomes]
    for page, outcomes in [*results.items(), ("all", every)]:
        ms = np.array([t for t, _ in outcomes]) * 1000
        codes = [c for _, c in outcomes]
        out[page] = {
            "n": len(outcomes),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "max_ms": round(float(ms.max()), 1),
            "5xx": sum(500 <= c < 600 for c in codes),
            "no_response": codes.count(0),
            "other_non_200": sum(c not in (0, 200) and not 500 <= c < 600 for c in codes),
        }
    return out


def measure(args: argparse.Namespace, cache: str, requests: int, var_dir: Path) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with RedisServer() as redis:
        env = _env(args.pg_url, redis.url, var_dir, cache)
        product_ids = prepare_database(args.pg_url, env)
        for condition in ("up", "paused", "killed"):
            if condition != "up" and redis.proc is not None and redis.proc.poll() is not None:
                redis = RedisServer().start()  # after "killed" nothing follows, but stay safe
                env = _env(args.pg_url, redis.url, var_dir, cache)
            server = Gunicorn(env, args.workers, var_dir / f"gunicorn-{cache}-{condition}.log")
            try:
                shoppers = [Shopper(server.base, product_ids, i) for i in range(args.clients)]
                run_condition(shoppers, 4 * args.workers)  # warm: every worker has served the pages
                if condition == "paused":
                    redis.pause()
                elif condition == "killed":
                    redis.kill()
                before = server.log_size()
                started = time.monotonic()
                results = run_condition(shoppers, requests)
                elapsed = time.monotonic() - started
                after = server.log_size()
                if condition == "paused":
                    redis.resume()
            finally:
                server.stop()
            summary = summarise(results)
            summary["log_bytes"] = after[0] - before[0]
            summary["log_lines"] = after[1] - before[1]
            summary["seconds"] = round(elapsed, 1)
            rows[condition] = summary
            print(f"  {cache:9} {condition:7} done in {elapsed:.0f} s", flush=True)
    return rows


def table(all_rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| cache | Redis | page | n | p50 ms | p95 ms | max ms | 5xx | no response | log lines | log kB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cache, rows in all_rows.items():
        for condition, summary in rows.items():
            for page in (*PAGES, "all"):
                s = summary[page]
                log = (str(summary["log_lines"]), f"{summary['log_bytes'] / 1024:.1f}") if page == "all" else ("", "")
                lines.append(
                    f"| {cache} | {condition} | {page} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['max_ms']} "
                    f"| {s['5xx']} | {s['no_response']} | {log[0]} | {log[1]} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--requests", type=int, default=300, help="requests of each page per condition")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=4, help="concurrent shoppers")
    parser.add_argument("--compare-plain", action="store_true", help="also measure the cache without the breaker")
    parser.add_argument("--plain-requests", type=int, default=24)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "redis_outage.json")
    args = parser.parse_args(argv)
    var_dir = REPO / "var" / "bench_redis_outage"
    var_dir.mkdir(parents=True, exist_ok=True)
    all_rows = {"resilient": measure(args, "resilient", args.requests, var_dir)}
    if args.compare_plain:
        all_rows["plain"] = measure(args, "plain", args.plain_requests, var_dir)
    print(table(all_rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": all_rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
