"""Schemathesis over the project's OpenAPI schema (``/api/schema/``): no input gives a server error.

The schema is the one staff are served, and requests go to the Django WSGI application (the
real URL conf, middleware and views, on the test database); every operation is sent a bounded number of generated
requests, valid (``positive``) and invalid (``negative``) ones, with their generated headers
(``Authorization: Basic`` included), as a staff user and anonymously, and each response is
checked: never a 5xx, and a documented status conforms to its schema and
content type. With ``DEBUG`` off no ERROR record reaches the ``django.request`` logger.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from oscar.test.factories import UserFactory
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from segmentation import services
from segmentation.testing import make_order
from tests.helpers import BROWSER, make_product

pytestmark = pytest.mark.django_db

#: generated requests per operation and generation mode, for each caller (anonymous callers get
#: 403 from the four staff-only operations, so fewer of theirs are sent)
EXAMPLES = {"staff": 5, "anonymous": 2}
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    caller: str,
    cookies: dict[str, str],
    sent: Counter,
    statuses: Counter,
    failures: list[str],
) -> None:
    """Send ``EXAMPLES[caller]`` generated requests to ``operation``; count them and collect every failed check."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[caller],
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        # the schema documents session and basic auth: the generated headers are sent, Basic
        # credentials included (never valid ones: 401/403, or 400 for a NUL in them), beside the
        # caller's own session cookie (staff) or none (anonymous)
        case.cookies = {}
        response = case.call(headers={"User-Agent": BROWSER}, cookies=cookies)
        sent[caller] += 1
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # every failure is collected, then reported at once
            failures.append(f"{caller} {mode.value} {case.method} {case.formatted_path} {case.query}: {exc}")

    fuzz()


def test_no_generated_request_gets_a_server_error(
    client: Any, caplog: pytest.LogCaptureFixture, capsys: Any, request: pytest.FixtureRequest
) -> None:
    caplog.set_level(logging.WARNING, logger="django.request")
    users = [UserFactory(email=f"f{i}@example.com") for i in range(3)]
    for i, user in enumerate(users):
        for n in range(i + 1):
            make_order(user=user, total=10 + 5 * i + n, placed=f"2024-0{1 + n}-1{i}")
    services.run_segmentation(date(2024, 6, 30))
    make_product("Blue mug")
    client.force_login(UserFactory(is_staff=True))
    callers = {
        "staff": {"sessionid": client.cookies["sessionid"].value},
        "anonymous": {},
    }

    # staff are served every operation (anonymous callers only the public ones); read
    # through the test client before its signal handling is changed below
    schema = schemathesis.openapi.from_dict(client.get("/api/schema/", {"format": "json"}).json())
    schema.app, schema.location = WSGIHandler(), "/api/schema/"
    # the WSGI handler closes the database connection after each request; the test client does
    # not (it would end the test's transaction): do as the test client does
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
        request.addfinalizer(lambda signal=signal: signal.connect(close_old_connections))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/api/recommendations/{placement}/",
        "/api/recommendations/preview/{user_id}/{placement}/",
        "/api/segmentation/memberships/",
        "/api/segmentation/runs/{id}/",
    }
    sent: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for operation in operations:
        # an operation that takes nothing (the visitor's own purchase intent) has no invalid input
        takes = any(operation.iter_parameters()) or bool(operation.get_request_payload_content_types())
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE][: 1 + takes]
        for mode in modes:
            for caller, cookies in callers.items():
                _fuzz(operation, mode, caller, cookies, sent, statuses, failures)
    errors = [r.getMessage() for r in caplog.records if r.name == "django.request" and r.levelno >= logging.ERROR]
    server_errors = sum(n for code, n in statuses.items() if code >= 500)
    with capsys.disabled():
        print(
            f"\nschemathesis: {sum(sent.values())} requests ({dict(sent)}) over {len(operations)} operations; "
            f"statuses {dict(sorted(statuses.items()))}; server errors {server_errors}"
        )
    assert server_errors == 0 and not errors, errors
    assert not failures, "\n".join(failures[:10])
    assert sum(sent.values()) >= len(operations) * 2  # something was really sent
