"""Hostile input against the demo shop as it is deployed: NUL characters, a copied visitor cookie,
repeated server errors and a forged ``X-Forwarded-For`` against the API throttle.

The demo shop's settings (``DJANGO_DEBUG=0``, a random ``DJANGO_SECRET_KEY``, its ``LOGGING`` untouched)
on PostgreSQL (scratch database ``bench_hostile_input``: migrated, a few products, a staff user and a
customer made for each run), served by gunicorn (``--workers``, default 4) whose stderr goes to a
file, with a ``redis-server`` of its own on a free port as cache (the shared Redis is never touched).
``benchmarks/hostile_input_settings.py`` only adds ``boom/`` (``benchmarks/hostile_input_urls.py``),
a view that always raises. The sections run in this order:

1. NUL characters: the public APIs with ``Authorization: Basic`` credentials holding a NUL, and the
   staff pages (signed in through ``/accounts/login/``) with ``%00`` in the query string.
2. A copied visitor cookie: browser A views 2 products, only A's ``oscar_visitor`` cookie is copied
   into browser B, B reads its ``recently_viewed`` block, B views 1 product, A views 3 more, B signs
   in as a customer: the events that now belong to that customer.
3. Server errors: ``--errors`` (default 20) identical 500s; tracebacks and request ids in the log.
4. The API throttle (last: every API call counts against the one address, 127.0.0.1): ``--calls``
   (default 200) sequential calls without cookies, each with another forged ``X-Forwarded-For``,
   then as many from ``--callers`` (default 8) threads; the throttle's counts in the private Redis
   are cleared before each of the two.

    .venv/bin/python benchmarks/hostile_input.py [--workers 4] [--calls 200] [--callers 8] [--errors 20]
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.report import write_json  # noqa: E402
from tests.redis_server import RedisServer, free_port  # noqa: E402

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
DB_NAME = "bench_hostile_input"
TIMEOUT = 120

# run by ``manage.py shell`` against the scratch database: products, a staff user, a customer
SETUP = """
import json, os
from decimal import Decimal
from django.contrib.auth import get_user_model
from oscar.core.loading import get_model
from oscar.test.factories import create_product

Product = get_model("catalogue", "Product")
products = list(Product.objects.filter(title__startswith="Hostile input mug ").order_by("pk"))
for i in range(len(products), 6):
    products.append(create_product(title=f"Hostile input mug {i}", price=Decimal("9.99"), num_in_stock=10000))
people = json.loads(os.environ["BENCH_PEOPLE"])
ids = {}
for role, (email, password) in people.items():
    user = get_user_model().objects.create_user(
        username=email.split("@")[0], email=email, password=password,
        is_staff=role == "staff", is_superuser=role == "staff",
    )
    ids[role] = user.pk
print("BENCH " + json.dumps({"products": [p.get_absolute_url() for p in products], "users": ids}))
"""


def _env(pg_url: str, redis_url: str, var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": pg_url.rsplit("/", 1)[0] + "/" + DB_NAME,
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "benchmarks.hostile_input_settings",
        "SHOP_VAR_DIR": str(var_dir),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "PYTHONPATH": str(REPO),
    }


def prepare_database(pg_url: str, env: dict[str, str], people: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Create the scratch database once, migrate it, and add this run's people (and products once)."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], env=env, cwd=REPO, check=True)
    done = subprocess.run(
        [*manage, "shell", "-c", SETUP],
        env={**env, "BENCH_PEOPLE": json.dumps(people)},
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("BENCH "))
    return json.loads(line[len("BENCH ") :])


class Gunicorn:
    """``gunicorn shop.wsgi`` with its stderr (gunicorn's and Django's log) in a file of its own."""

    def __init__(self, env: dict[str, str], workers: int, var_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = var_dir / "gunicorn-stderr.log"
        with self.log.open("w") as err, (var_dir / "gunicorn-stdout.log").open("w") as out:
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
                stderr=err,
            )
        deadline = time.monotonic() + 180
        while True:
            try:
                requests.get(self.base + "/accounts/login/", headers={"User-Agent": UA}, timeout=30)
                break
            except requests.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("gunicorn did not start:\n" + self.log.read_text()[-3000:]) from None
                time.sleep(0.5)
        # every worker imports the project on its first request: one round each before measuring
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda _: requests.get(self.base + "/api/schema/", timeout=TIMEOUT), range(2 * workers)))

    def log_text(self, since: int = 0) -> str:
        return self.log.read_bytes()[since:].decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log.stat().st_size

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def browser() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = UA
    return session


def sign_in(session: requests.Session, base: str, email: str, password: str) -> None:
    """Oscar's login form, as a browser posts it (CSRF token from the form page's cookie)."""
    session.get(f"{base}/accounts/login/", timeout=TIMEOUT).raise_for_status()
    response = session.post(
        f"{base}/accounts/login/",
        data={
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "login-username": email,
            "login-password": password,
            "login_submit": "Log In",
        },
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    if response.status_code != 302:
        raise RuntimeError(f"login of {email} failed: {response.status_code}")


def _nul_row(request: str, status: requests.Response, plain: requests.Response) -> dict[str, Any]:
    return {
        "request": request,
        "status": status.status_code,
        "without_nul": plain.status_code,
        "x_request_id": status.headers.get("X-Request-ID", ""),
    }


def nul_bytes(server: Gunicorn, staff: tuple[str, str]) -> dict[str, Any]:
    """Each request's status (and the same request without the NUL), and how the refusals were logged."""
    base, offset = server.base, server.log_size()
    basic = "Basic " + base64.b64encode(b"a\x00b:x").decode()
    rows = []
    for path in ("/api/recommendations/for_you/", "/api/schema/", "/api/segmentation/runs/"):
        status = requests.get(base + path, headers={"User-Agent": UA, "Authorization": basic}, timeout=TIMEOUT)
        plain = requests.get(base + path, headers={"User-Agent": UA}, timeout=TIMEOUT)
        rows.append(_nul_row(f"GET {path}, Basic credentials `a\\0b:x`", status, plain))
    session = browser()
    sign_in(session, base, *staff)
    for path, query in (
        ("/dashboard/recommendations/models/", "product"),
        ("/dashboard/recommendations/models/", "customer"),
        ("/admin/recommender/event/", "visitor_id"),
    ):
        status = session.get(f"{base}{path}?{query}=%00", timeout=TIMEOUT, allow_redirects=False)
        plain = session.get(f"{base}{path}?{query}=x", timeout=TIMEOUT, allow_redirects=False)
        rows.append(_nul_row(f"GET {path}?{query}=%00 (staff)", status, plain))
    time.sleep(2)  # the workers' stderr reaches the file
    log = server.log_text(offset)
    refused = re.findall(r"INFO recommender\.middleware \[([^\]]+)\] refused", log)
    bad = re.findall(r"WARNING django\.request \[([^\]]+)\] Bad Request", log)
    return {
        "rows": rows,
        "refusals_logged": len(refused),
        "refusals_logged_with_an_id": sum(i != "-" for i in refused),
        "bad_request_lines_with_an_id": sum(i != "-" for i in bad),
        "responses_with_x_request_id": sum(bool(r["x_request_id"]) for r in rows),
    }


def _block_size(session: requests.Session, base: str, placement: str) -> int:
    response = session.get(f"{base}/api/recommendations/{placement}/", timeout=TIMEOUT)
    response.raise_for_status()
    return len(response.json()["results"])


def copied_cookie(
    base: str, db_url: str, products: list[str], customer: tuple[str, str], customer_id: int
) -> dict[str, Any]:
    import psycopg

    a, b = browser(), browser()
    for url in products[:2]:
        a.get(base + url, timeout=TIMEOUT).raise_for_status()
    a_recent = _block_size(a, base, "recently_viewed")
    cookie = next(c for c in a.cookies if c.name == "oscar_visitor")
    b.cookies.set_cookie(copy.copy(cookie))
    b_recent = _block_size(b, base, "recently_viewed")
    b.get(base + products[2], timeout=TIMEOUT).raise_for_status()
    for url in products[3:6]:
        a.get(base + url, timeout=TIMEOUT).raise_for_status()
    sign_in(b, base, *customer)
    with psycopg.connect(db_url) as conn:
        kinds = dict(
            conn.execute(
                "SELECT kind, count(*) FROM recommender_event WHERE user_id = %s GROUP BY kind", (customer_id,)
            ).fetchall()
        )
        a_vid = cookie.value.strip('"').split(":")[0].split("|")[0]
        a_left = conn.execute(
            "SELECT count(*) FROM recommender_event WHERE visitor_id = %s AND user_id IS NULL", (a_vid,)
        ).fetchone()[0]
    return {
        "a_recently_viewed": a_recent,
        "b_recently_viewed_after_copy": b_recent,
        "customer_events": sum(kinds.values()),
        "customer_events_by_kind": kinds,
        "a_events_still_anonymous": a_left,
    }


def server_errors(server: Gunicorn, n: int) -> dict[str, Any]:
    offset = server.log_size()
    statuses, ids = [], []
    for _ in range(n):
        response = requests.get(server.base + "/boom/", headers={"User-Agent": UA}, timeout=TIMEOUT)
        statuses.append(response.status_code)
        ids.append(response.headers.get("X-Request-ID", ""))
    time.sleep(2)  # the workers' stderr reaches the file
    log = server.log_text(offset)
    logged_ids = re.findall(r"ERROR django\.request \[([^\]]+)\] Internal Server Error: /boom/", log)
    return {
        "statuses": dict(Counter(statuses)),
        "tracebacks": log.count("Traceback (most recent call last)"),
        "error_lines": len(logged_ids),
        "distinct_ids_logged": len(set(logged_ids)),
        "response_ids": sum(bool(i) for i in ids),
        "response_ids_in_log": sum(bool(i) and f"[{i}]" in log for i in ids),
        "example_id": ids[0],
        "example_id_in_log": bool(ids[0]) and f"[{ids[0]}]" in log,
        "log_bytes": len(log.encode()),
    }


def reset_throttle(redis_url: str) -> int:
    """Clear the throttle's counts in the benchmark's own redis-server."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match="*throttle_*"))
    if keys:
        client.delete(*keys)
    client.close()
    return len(keys)


def throttle(base: str, redis_url: str, calls: int, callers: int) -> dict[str, Any]:
    def call(i: int) -> int:
        forged = f"198.51.{i // 250}.{i % 250 + 1}"
        headers = {"User-Agent": UA, "X-Forwarded-For": forged}
        return requests.get(f"{base}/api/recommendations/for_you/", headers=headers, timeout=TIMEOUT).status_code

    out: dict[str, Any] = {}
    reset_throttle(redis_url)
    started = time.monotonic()
    out["sequential"] = dict(Counter(call(i) for i in range(calls)))
    out["sequential_seconds"] = round(time.monotonic() - started, 1)
    reset_throttle(redis_url)
    started = time.monotonic()
    with ThreadPoolExecutor(callers) as pool:
        out["concurrent"] = dict(Counter(pool.map(call, range(calls, 2 * calls))))
    out["concurrent_seconds"] = round(time.monotonic() - started, 1)
    return out


def codes(counts: dict[int, int]) -> str:
    """``{200: 120, 429: 80}`` as "120 200s, 80 429s"."""
    return ", ".join(f"{n} {status}s" for status, n in sorted(counts.items()))


def table(r: dict[str, Any], args: argparse.Namespace) -> str:
    t = r["throttle"]
    seq, conc = t["sequential"], t["concurrent"]
    lines = [
        "| finding | measured |",
        "|---|---|",
        f"| throttle, {args.calls} sequential calls, no cookies, forged X-Forwarded-For each | "
        f"{codes({200: 0, 429: 0, **seq})} ({t['sequential_seconds']} s) |",
        f"| throttle, {args.calls} calls from {args.callers} threads, the same | "
        f"{codes({200: 0, 429: 0, **conc})} ({t['concurrent_seconds']} s) |",
    ]
    n = r["nul"]
    for row in n["rows"]:
        lines.append(f"| NUL: {row['request']} | {row['status']} (without the NUL: {row['without_nul']}) |")
    lines.append(
        f"| NUL 400s: responses with X-Request-ID / refusals logged (`recommender.middleware`, INFO) with an id "
        f"/ `Bad Request` lines (`django.request`) with an id | {n['responses_with_x_request_id']} of "
        f"{len(n['rows'])} / {n['refusals_logged_with_an_id']} of {n['refusals_logged']} / "
        f"{n['bad_request_lines_with_an_id']} |"
    )
    e = r["errors"]
    lines += [
        f"| {args.errors} identical 500s: responses / tracebacks in the log / distinct request ids logged | "
        f"{codes(e['statuses'])} / {e['tracebacks']} / "
        f"{e['distinct_ids_logged']} |",
        f"| X-Request-ID of a 500, found in the log | `{e['example_id']}`, "
        f"{'found' if e['example_id_in_log'] else 'NOT found'} ({e['response_ids_in_log']} of {args.errors} "
        f"responses' ids found) |",
    ]
    c = r["copied_cookie"]
    lines += [
        f"| copied cookie: items in B's recently_viewed right after the copy | {c['b_recently_viewed_after_copy']} "
        f"(A's own: {c['a_recently_viewed']}) |",
        f"| copied cookie: events of B's customer after B signs in | {c['customer_events']} "
        f"({', '.join(f'{n} {k}' for k, n in c['customer_events_by_kind'].items())}; A's 5 views still "
        f"anonymous: {c['a_events_still_anonymous']}) |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--calls", type=int, default=200, help="API calls per throttle phase")
    parser.add_argument("--callers", type=int, default=8, help="threads of the concurrent throttle phase")
    parser.add_argument("--errors", type=int, default=20, help="server errors to trigger")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "hostile_input.json")
    args = parser.parse_args(argv)
    started = time.monotonic()
    var_dir = REPO / "var" / "bench_hostile_input"
    var_dir.mkdir(parents=True, exist_ok=True)
    run = secrets.token_hex(4)
    people = {
        "staff": (f"staff-{run}@example.com", secrets.token_urlsafe(16)),
        "customer": (f"customer-{run}@example.com", secrets.token_urlsafe(16)),
    }
    results: dict[str, Any] = {}
    with RedisServer() as redis:
        env = _env(args.pg_url, redis.url, var_dir)
        print("preparing the database (migrate, products, a staff user, a customer) ...", flush=True)
        made = prepare_database(args.pg_url, env, people)
        print(f"starting gunicorn with {args.workers} workers ...", flush=True)
        server = Gunicorn(env, args.workers, var_dir)
        try:
            print("NUL characters ...", flush=True)
            results["nul"] = nul_bytes(server, people["staff"])
            print("a copied visitor cookie ...", flush=True)
            results["copied_cookie"] = copied_cookie(
                server.base, env["DATABASE_URL"], made["products"], people["customer"], made["users"]["customer"]
            )
            print(f"{args.errors} server errors ...", flush=True)
            results["errors"] = server_errors(server, args.errors)
            print("the throttle ...", flush=True)
            results["throttle"] = throttle(server.base, redis.url, args.calls, args.callers)
        finally:
            server.stop()
    results["seconds"] = round(time.monotonic() - started, 1)
    results["log"] = str(server.log.relative_to(REPO))
    print(table(results, args))
    print(f"\n{results['seconds']} s in all; gunicorn's stderr: {results['log']}")
    write_json(args.json, {"args": {k: str(v) for k, v in vars(args).items()}, **results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
