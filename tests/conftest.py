"""Shared fixtures and the rules for tests that need outside services or data.

* ``@pytest.mark.redis`` / ``@pytest.mark.postgres`` tests need REDIS_URL / a
  PostgreSQL DATABASE_URL. Without them they are skipped with the reason, except
  when ``CI=true``: then a missing service is an error, never a skip.
* ``@pytest.mark.data`` tests read ``../shared/data`` (or ``SHARED_DATA_DIR``) and
  are skipped, with the reason, in a clone that has no such folder. A data test reads its
  files through :func:`shared_data_path`: a missing file skips the test with the reason, and
  with ``CI=true`` fails it with the reason (CI never skips a data test).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() == "true"
TESTS = REPO / "tests"
# the pure ML tests: no database and no Django settings, so no settings fixture or cache either
PURE_ML = (TESTS / "recommender" / "ml", TESTS / "segmentation" / "ml")


def pytest_configure(config: pytest.Config) -> None:
    """The test database's tables come straight from the models (35 s less per run; ``--migrations``
    applies them instead): ``make test`` checks that no model change lacks its migration, and
    tests/system/test_packaging.py applies every migration with ``migrate`` in the README's project.
    Set here rather than in ``addopts`` so that the pure ML tests still run with ``-p no:django``."""
    if config.pluginmanager.hasplugin("django") and "--migrations" not in config.invocation_params.args:
        config.option.nomigrations = True


def _missing_services() -> dict[str, str]:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        engine = settings.DATABASES["default"]["ENGINE"]
    except ImproperlyConfigured:  # run with -p no:django (the pure ML tests)
        engine = ""
    missing = {}
    if not os.environ.get("REDIS_URL"):
        missing["redis"] = "REDIS_URL is not set (set it to a Redis server to run this test)"
    if engine != "django.db.backends.postgresql":
        missing["postgres"] = "DATABASE_URL does not name a PostgreSQL database"
    if not SHARED_DATA.is_dir():
        missing["data"] = f"{SHARED_DATA} is absent (the public data sets live beside the repository)"
    return missing


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = _missing_services()
    if IN_CI and missing:
        raise pytest.UsageError("CI=true but required services/data are missing: " + "; ".join(missing.values()))
    for item in items:
        for marker, reason in missing.items():
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


def shared_data_path(*parts: str) -> Path:
    """``SHARED_DATA / parts``, for a data test to read. When it is absent the test is skipped with
    the reason, or with ``CI=true`` it fails with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        reason = f"{path} is absent (the public data sets live beside the repository; set SHARED_DATA_DIR)"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_data() -> Path:
    return shared_data_path()


@pytest.fixture(scope="session", autouse=True)
def _no_search_indexing(request: pytest.FixtureRequest):
    """Oscar turns on Haystack's realtime indexing: every product a test saves would be written to
    the search index on disk (a Whoosh commit per save, on an index that grows over the session).
    No test searches, so products are not indexed; the catalogue page reads an empty index."""
    if not request.config.pluginmanager.hasplugin("django"):
        yield
        return
    from django.apps import apps

    if not apps.is_installed("haystack"):
        yield
        return
    processor = apps.get_app_config("haystack").signal_processor
    processor.teardown()
    yield
    processor.setup()


@pytest.fixture(autouse=True)
def _documented_defaults(request: pytest.FixtureRequest):
    """Django tests run on the apps' documented defaults (not the demo's choices), a fast
    password hasher and an empty cache."""
    if not request.config.pluginmanager.hasplugin("django") or _is_pure_ml(request.node.path):
        yield
        return
    from django.core.cache import cache

    settings = request.getfixturevalue("settings")
    settings.RECOMMENDER = {}
    settings.SEGMENTATION = {}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from recommender.cache import reset_breakers

    reset_breakers()  # a Redis hiccup in an earlier test does not leave this one without its cache
    _clear_cache(cache)
    yield
    _clear_cache(cache)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item):  # type: ignore[no-untyped-def]
    """Before any fixture is torn down: the rows of this test's pages written (a transactional test's
    tables are emptied next) and the measurement writer's connection closed (the test database is
    dropped at the end)."""
    if item.config.pluginmanager.hasplugin("django") and not _is_pure_ml(item.path):
        from recommender.measurement import writer

        writer.release()
    yield


def _is_pure_ml(path: Path) -> bool:
    return any(path.resolve().is_relative_to(folder) for folder in PURE_ML)


def _clear_cache(cache) -> None:  # type: ignore[no-untyped-def]
    """Empty Django's cache (and the serving's per-process copy of it); on Redis only the cache's
    own keys, never FLUSHDB (the broker and other users of the shared Redis keep theirs)."""
    from recommender.serving.generations import forget_catalogue_generation
    from recommender.serving.stores import forget_local

    forget_local()
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()
    # the process's copy of the catalogue generation would outlive the emptied cache by up to two
    # seconds, and a test's warm caches turn cold when it is read again mid-test
    forget_catalogue_generation()
