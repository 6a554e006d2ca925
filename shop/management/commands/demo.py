"""``python manage.py demo``: set up the demo shop on real data and serve it.

Steps (each idempotent, so running it again is cheap): migrate, import the UCI
Online Retail sample into Oscar, generate browsing around its last orders
(:mod:`shop.browsing`: the data has orders only), run the pipelines that exist (segmentation,
model training), make a staff login, then run a Celery worker, Celery beat and
the web server side by side until Ctrl-C.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sites.models import Site
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Max
from oscar.core.loading import get_model

from personalization_core.order_history import SAMPLE

ADMIN_USERNAME = "admin"
ADMIN_EMAIL = "admin@example.com"
#: pipelines run after the import when their app provides the command
PIPELINES = ("segment_customers", "train_recommenders")


class Command(BaseCommand):
    help = "Set up the demo shop (migrate, import, pipelines, admin login) and serve it with Celery."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", default=str(SAMPLE), help="file to import (default: the shipped sample)")
        parser.add_argument("--addr", default="127.0.0.1:8000", help="address:port to serve on")
        parser.add_argument("--no-serve", action="store_true", help="set up only")

    def handle(self, *args: Any, data: str, addr: str, no_serve: bool, **options: Any) -> None:
        self.step("Migrating the database")
        call_command("migrate", interactive=False, verbosity=0)
        self.prepare_site(addr)

        self.step(f"Importing {data}")
        call_command("import_online_retail", data, stdout=self.stdout, stderr=self.stderr)
        self.step("Indexing the catalogue for browsing and search")
        call_command("update_index", verbosity=0, remove=True)
        from shop.browsing import generate_browsing

        self.step("Generating browsing around the last 60 days of orders (the data has orders only)")
        self.stdout.write(f"{generate_browsing()} events written")

        # The demo's orders are from 2010-2011: run the pipelines as of the day after the last one,
        # as a shop would see them the next morning (the nightly tasks use today's date).
        last = get_model("order", "Order").objects.aggregate(last=Max("date_placed"))["last"]
        as_of = (last + timedelta(days=1)).date().isoformat() if last else None
        available = get_commands()
        for name in PIPELINES:
            if name in available:
                self.step(f"Running {name}" + (f" as of {as_of}" if as_of else ""))
                call_command(name, *(["--as-of", as_of] if as_of else []), stdout=self.stdout, stderr=self.stderr)

        from recommender.measurement.assignment import running_experiment, start_experiment

        if running_experiment() is None:
            # the report page (/dashboard/recommendations/report/) then compares the arms of the
            # demo's own browsing: 10 % of its visitors see best sellers in the blocks
            self.step("Starting an A/B experiment of the recommendations against best sellers")
            start_experiment("demo")

        password = self.reset_admin_password()
        self.stdout.write(
            self.style.SUCCESS(
                f"\nStaff login: {ADMIN_USERNAME} / {password}  (http://{addr}/admin/ and http://{addr}/dashboard/)\n"
                f"Broker: {settings.CELERY_BROKER_URL}  Database: {settings.DATABASES['default']['ENGINE']}\n"
            )
        )
        if not no_serve:
            self.serve(addr)

    def step(self, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"==> {text}"))

    def prepare_site(self, addr: str) -> None:
        Site.objects.update_or_create(pk=settings.SITE_ID, defaults={"domain": addr, "name": "Demo shop"})
        Country = get_model("address", "Country")
        Country.objects.update_or_create(
            iso_3166_1_a2="GB",
            defaults={
                "iso_3166_1_a3": "GBR",
                "iso_3166_1_numeric": "826",
                "name": "United Kingdom of Great Britain and Northern Ireland",
                "printable_name": "United Kingdom",
                "is_shipping_country": True,
            },
        )

    def reset_admin_password(self) -> str:
        """A fresh random password each run, printed once; the demo never ships a known password."""
        password = secrets.token_urlsafe(9)
        User = get_user_model()
        user, _ = User.objects.get_or_create(username=ADMIN_USERNAME, defaults={"email": ADMIN_EMAIL})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return password

    def serve(self, addr: str) -> None:
        from recommender.conf import app_settings

        python = sys.executable
        queues = f"celery,{app_settings.TRAINING_QUEUE}"  # the nightly training has its own queue
        base = Path(settings.BASE_DIR)
        commands = {
            "worker": [python, "-m", "celery", "-A", "shop", "worker", "--pool=solo", "-Q", queues, "-l", "info"],
            "beat": [python, "-m", "celery", "-A", "shop", "beat", "-l", "info"],
            "web": [python, "manage.py", "runserver", addr, "--noreload"],
        }
        procs = {name: subprocess.Popen(cmd, cwd=base) for name, cmd in commands.items()}
        self.stdout.write(self.style.SUCCESS(f"Serving http://{addr}/ with a Celery worker and beat; Ctrl-C stops."))
        try:
            while all(p.poll() is None for p in procs.values()):
                time.sleep(1)
            stopped = [n for n, p in procs.items() if p.poll() is not None]
            self.stderr.write(f"{', '.join(stopped)} stopped; shutting the demo down.")
        except KeyboardInterrupt:
            pass
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p in procs.values():
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
