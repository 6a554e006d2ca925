"""Installable as a retailer expects: the wheel and sdist, the README's recipe, torch optional.

The README's install section is the project in ``tests/readme_project/``: every snippet marked
``<!-- readme_project: FILE -->`` must be in that file. Installing the built wheel into a fresh
virtualenv without torch is ``make wheel-check`` (``scripts/check_wheel.sh``), which needs the
package registry; these tests need no network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.core.management import get_commands
from django.test import override_settings
from django.urls import reverse

from recommender import checks
from tests.conftest import REPO

README = REPO / "README.md"
PROJECT = REPO / "tests" / "readme_project"
APPS = ("recommender", "segmentation")


def ids(messages):
    return sorted({m.id for m in messages})


def readme_snippets() -> list[tuple[str, str, str]]:
    """(file, mode, code) of every README code block marked as a file of the README project."""
    pattern = r"<!-- readme_project: (\S+)(?: \((whole file|each line)\))? -->\n```\w*\n(.*?)```"
    return [(f, mode or "part", code) for f, mode, code in re.findall(pattern, README.read_text(), re.S)]


def test_readme_snippets_are_the_readme_projects_files():
    snippets = readme_snippets()
    covered = {f for f, _, _ in snippets}
    assert covered == {
        "yourshop/settings.py",
        "yourshop/__init__.py",
        "yourshop/urls.py",
        "templates/oscar/catalogue/detail.html",
        "templates/oscar/basket/basket.html",
        "templates/oscar/catalogue/browse.html",
    }
    for name, mode, code in snippets:
        text = (PROJECT / name).read_text()
        if mode == "whole file":
            assert code.strip() == text.strip(), name
        elif mode == "each line":
            assert all(line in text.splitlines() for line in code.splitlines()), name
        else:
            assert code.strip() in text, f"{name} lacks README's snippet starting {code.strip()[:60]!r}"


@pytest.mark.slow
def test_readme_install_is_ten_lines_and_the_shops_pages_show_blocks(tmp_path):
    """At most 10 settings lines and 1 url line; the sample imports; product page, basket and home show a block."""
    shop = tmp_path / "shop"  # a copy, as scripts/check_wheel.sh makes: its media and database stay out of the repo
    shutil.copytree(PROJECT, shop, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # a Redis nobody listens on: the shared one keeps no key of this project (and a page never needs Redis)
    env.update(PYTHONPATH=str(REPO), SHOP_DB=str(tmp_path / "shop.sqlite3"), REDIS_URL="redis://127.0.0.1:9/0")
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_readme_project.py"), str(README), str(shop)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "install: 2 settings line(s), 1 url line(s)" in proc.stdout
    assert re.search(r"product page /catalogue/\S+: also_bought \([1-4] products\)", proc.stdout), proc.stdout
    assert "/api/schema/ title: 'Oscar personalisation API'" in proc.stdout


# Run in a subprocess with torch made unimportable: the README project's `manage.py check`, then what
# a shop without torch does with the models.
NO_TORCH = r"""
import importlib.machinery, json, logging, sys, tempfile


class NoTorch(importlib.machinery.PathFinder):  # torch is not on any path: as if it were not installed
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.partition(".")[0] == "torch" else super().find_spec(name, path, target)


sys.meta_path = [NoTorch if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
sys.path.insert(0, sys.argv[1])
import django
from django.core.management import call_command

django.setup()
call_command("check", fail_level="WARNING")  # raises SystemCheckError on any warning
from django.test import override_settings

from recommender import checks
from recommender.ml.data import SessionData
from recommender.ml.registry import available_models, get_model_class, load_model
from recommender.services import training

out = {"models": available_models(), "default": training.next_item_model_name()}
with override_settings(RECOMMENDER={"NEXT_ITEM_MODEL": "blend"}):
    out["blend_check"] = [m.id for m in checks.check_training_settings()]
try:
    get_model_class("gru")
except KeyError as exc:
    out["gru_error"] = str(exc)
logs = []
handler = logging.Handler()
handler.emit = lambda record: logs.append(record.getMessage())
logging.getLogger("recommender.services.training").addHandler(handler)
name, model = training.build_model("next_item")
model.fit(SessionData([[0, 1, 2], [1, 2, 3], [0, 2, 3, 4], [2, 3, 4]], n_items=5))
with tempfile.TemporaryDirectory() as d:
    model.save(d)
    top = load_model(d).recommend([0, 1], k=2)[0]
out.update(built=name, logs=logs, top=[int(i) for i in top], torch="torch" in sys.modules)
print("RESULT " + json.dumps(out))
"""


def test_readme_project_passes_checks_and_trains_light_models_without_torch():
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL")}
    # a shop's own secret key, as in production (the project's fallback is a published one: W004)
    env.update(DJANGO_SETTINGS_MODULE="yourshop.settings", PYTHONPATH=str(REPO), DJANGO_SECRET_KEY="s" + "x7Kp" * 16)
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(PROJECT)], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert out["torch"] is False
    assert {"gru", "lstm"}.isdisjoint(out["models"]) and {"hybrid", "itemknn", "pop"} <= set(out["models"])
    assert out["default"] == "hybrid" and out["built"] == "hybrid"
    assert any("torch is not installed" in line and "hybrid" in line for line in out["logs"])
    assert out["blend_check"] == ["recommender.E008"]
    assert "torch is not installed" in out["gru_error"]
    assert len(out["top"]) == 2 and all(0 <= i < 5 for i in out["top"])  # saved, loaded and scored


def _build(tmp_path: Path) -> tuple[Path, Path]:
    """sdist and wheel of the working tree (tracked and new files, not ignored ones), built offline."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to know which files are the project's")
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    src = tmp_path / "src"
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    return next(dist.glob("*.tar.gz")), next(dist.glob("*.whl"))


def test_sdist_and_wheel_carry_templates_static_and_migrations(tmp_path):
    sdist, wheel = _build(tmp_path)
    expected = {
        str(p.relative_to(REPO))
        for app in APPS
        for pattern in ("templates/**/*", "static/**/*", "migrations/*.py", "templatetags/*.py", "**/commands/*.py")
        for p in (REPO / app).glob(pattern)
        if p.is_file()
    }
    assert any(name.endswith(".html") for name in expected) and any("/migrations/0001" in n for n in expected)
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert expected <= in_wheel, sorted(expected - in_wheel)
    assert not any(n.startswith(("shop/", "tests/", "benchmarks/")) for n in in_wheel)
    assert "personalization_core/pgcopy.py" in in_wheel  # the shared infrastructure both apps import
    # the importer of a shop's history and the sample it imports (import_order_history --sample)
    assert {
        "personalization_core/order_history/importer.py",
        "personalization_core/order_history/README.md",
        "personalization_core/order_history/data/README.md",
        "personalization_core/order_history/data/online_retail_sample.csv.gz",
        "recommender/management/commands/import_order_history.py",
    } <= in_wheel
    root = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as tar:
        in_sdist = {n.removeprefix(root + "/") for n in tar.getnames()}
    assert expected | {"README.md", "pyproject.toml"} <= in_sdist, sorted(expected - in_sdist)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in in_wheel if n.endswith("/METADATA"))).decode()
    torch_reqs = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: torch")]
    assert torch_reqs and all('extra == "torch"' in line for line in torch_reqs)  # optional, never required


def test_per_process_cache_as_task_lock_is_reported(settings):
    settings.DEBUG = True
    for backend in ("django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache"):
        with override_settings(CACHES={"default": {"BACKEND": backend}}):
            assert ids(checks.check_task_lock_cache()) == ["recommender.W002"]
            settings.DEBUG = False
            assert ids(checks.check_task_lock_cache()) == ["recommender.E011"]
            settings.DEBUG = True
    shared = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}  # never connected
    with override_settings(CACHES={"default": shared}):
        assert checks.check_task_lock_cache() == []


def test_missing_or_unusable_broker_is_reported(settings):
    settings.DEBUG = True
    del settings.CELERY_BROKER_URL
    assert ids(checks.check_broker()) == ["recommender.W003"]
    settings.DEBUG = False
    assert ids(checks.check_broker()) == ["recommender.E004"]
    for debug in (True, False):
        settings.DEBUG = debug
        settings.CELERY_BROKER_URL = "reddis://127.0.0.1:6379/0"
        messages = checks.check_broker()
        assert ids(messages) == ["recommender.E010"] and "redis" in messages[0].msg
        settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
        assert checks.check_broker() == []


def test_readme_documents_every_template_tag_filter_and_command():
    from django.template.backends.django import get_installed_libraries

    readme = README.read_text()
    names = []
    for library, module in get_installed_libraries().items():
        if module.startswith(APPS):
            lib = __import__(module, fromlist=["register"]).register
            names += [library, *lib.tags, *lib.filters]
    assert {"segment_promotions", "customer_segment_row", "recommendations"} <= set(names)
    assert [n for n in names if f"`{n}" not in readme and f"{{% {n} " not in readme] == []
    commands = [cmd for cmd, app in get_commands().items() if app in (*APPS, "shop")]
    assert {"segment_customers", "train_recommenders"} <= set(commands)
    assert [c for c in commands if f"manage.py {c}" not in readme] == []


@pytest.mark.django_db
def test_demo_serves_jquery_itself(client):
    html = client.get(reverse("basket:summary")).content.decode()
    assert "ajax.googleapis.com" not in html
    assert '<script src="/static/oscar/js/jquery/jquery.min.js"></script>' in html
    assert (Path(__import__("oscar").__file__).parent / "static/oscar/js/jquery/jquery.min.js").is_file()
