"""A server error is written once to stderr, with its traceback and the id of its request."""

from __future__ import annotations

import logging
import re
import sys

import pytest
from django.urls import reverse

from recommender.serving import service
from tests.helpers import browser


@pytest.mark.django_db
def test_a_500_is_logged_once_with_its_traceback_and_request_id(settings, monkeypatch, capsys):
    settings.DEBUG = False
    # the demo's handler writes to the stderr of when logging was configured: this test's, here
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler) and h.filters]
    assert len(handlers) == 1
    previous = handlers[0].setStream(sys.stderr)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a view")

    monkeypatch.setattr(service, "recommend", broken)
    client = browser()
    client.raise_request_exception = False
    url = reverse("recommender-api:recommendations", kwargs={"placement": "trending"})
    capsys.readouterr()
    try:
        response = client.get(url)
        err = capsys.readouterr().err
    finally:
        handlers[0].setStream(previous)
    assert response.status_code == 500
    rid = response["X-Request-ID"]
    assert err.count("Traceback (most recent call last)") == 1 and "RuntimeError: a bug in a view" in err
    assert re.search(rf"ERROR django.request \[{rid}\] Internal Server Error: {url}", err), err[-2000:]
    # a proxy's request id is kept when it is a plain token, replaced when it is not
    assert client.get(url, HTTP_X_REQUEST_ID="edge-42:a")["X-Request-ID"] == "edge-42:a"
    assert client.get(url, HTTP_X_REQUEST_ID="bad id\nforged")["X-Request-ID"] != "bad id\nforged"
