"""Real browser journeys: Playwright drives Debian's ``chromium`` against pytest-django's live server.

* One headless Chromium per session (``/usr/bin/chromium``, or ``CHROMIUM_PATH``); each test gets
  a fresh browser context (its own cookies) with a normal desktop user agent, since the default
  bot filter rightly treats ``HeadlessChrome`` as a bot.
* Nothing leaves the machine: every request to another host than the live server is aborted
  (Oscar's templates load jQuery from a CDN and fall back to their local copy), and so are
  images and fonts, which no journey looks at.
* A failing test leaves a full-page screenshot and the page's HTML in
  ``<pytest basetemp>/browser-failures/``; the failure report prints their paths.
* Without Chromium or Playwright the tests are skipped with the reason, except under
  ``CI=true``, where that is a failure. ``pytest -m "not browser"`` deselects them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.helpers import BROWSER as DESKTOP_USER_AGENT

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
TIMEOUT_MS = 15_000


def _unavailable(reason: str) -> None:
    hint = "install it with `make chromium` (apt-get install chromium), or deselect with -m 'not browser'"
    if IN_CI:
        pytest.fail(f"CI=true and {reason}: {hint}", pytrace=False)
    pytest.skip(f"{reason}: {hint}")


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """One headless Chromium for all the browser tests, closed when they are done.

    Playwright's sync API keeps an asyncio loop running in this thread, which makes Django refuse
    ORM calls from it (``SynchronousOnlyOperation``); the tests and the live server never share a
    connection across threads, so the check is switched off while the browser is open, and only then.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -r requirements-dev.txt)")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            yield browser
            browser.close()


@pytest.fixture
def server_url(request: pytest.FixtureRequest) -> str:
    """Where the pages are served: pytest-django's ``live_server`` (a transactional test: the
    database is flushed after it). A module that shares one committed shop between its tests
    overrides this fixture with :func:`module_live_server`'s URL."""
    return request.getfixturevalue("live_server").url


@contextmanager
def module_live_server() -> Iterator[str]:
    """A live server for one module's tests over data the module committed itself (the tests then
    use ``db``, not ``transactional_db``, so nothing is flushed between them); yields its URL.

    As in Django's ``LiveServerTestCase``, an in-memory SQLite database is served through the
    tests' own connection (another connection would find its tables locked by the test's
    transaction); PostgreSQL gets connections of its own, which commit.
    """
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.db import connections
    from django.test.testcases import LiveServerThread

    shared = {c.alias: c for c in connections.all() if c.vendor == "sqlite" and c.is_in_memory_db()}
    for connection in shared.values():
        connection.inc_thread_sharing()
    server = LiveServerThread("localhost", StaticFilesHandler, connections_override=shared, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    try:
        if server.error:
            raise server.error
        yield f"http://localhost:{server.port}"
    finally:
        server.terminate()
        for connection in shared.values():
            connection.dec_thread_sharing()


@pytest.fixture
def open_page(
    chromium: Any, server_url: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """``open_page()`` opens a page in a new browser context (a new shopper with no cookies).

    Relative URLs go to the live server; requests to any other host are aborted.
    """
    contexts: list[Any] = []
    pages: list[Any] = []
    origin = server_url

    def block_other_hosts(route: Any) -> None:
        # images and fonts are left out too: nothing is asserted on them and they cost each page
        if route.request.url.startswith(origin + "/") and route.request.resource_type not in ("image", "font"):
            route.continue_()
        else:
            route.abort()

    def make() -> Any:
        context = chromium.new_context(
            base_url=origin, user_agent=DESKTOP_USER_AGENT, viewport={"width": 1280, "height": 900}, locale="en-GB"
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", block_other_hosts)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    request.node._browser_pages = pages  # for the screenshots on failure
    request.node._browser_failures = tmp_path_factory.getbasetemp() / "browser-failures"
    yield make
    for context in contexts:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Save a screenshot and the HTML of every open page when a browser test fails."""
    report = yield
    pages = getattr(item, "_browser_pages", None)
    if report.failed and report.when == "call" and pages:
        folder = item._browser_failures  # type: ignore[attr-defined]
        folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name)
        saved = []
        for n, page in enumerate(pages):
            try:
                shot = folder / f"{name}-{n}.png"
                page.screenshot(path=str(shot), full_page=True)
                (folder / f"{name}-{n}.html").write_text(page.content())
                saved.append(f"{page.url} -> {shot}")
            except Exception as exc:  # a closed or crashed page: report it, keep the original failure
                saved.append(f"page {n}: no screenshot ({exc})")
        report.sections.append(("browser screenshots", "\n".join(saved)))
    return report
