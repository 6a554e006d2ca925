"""Every log record of a request carries that request's id, so a 500's traceback can be found.

:class:`RequestIdFilter` adds ``record.request_id``: the request's ``X-Request-ID`` header when a
proxy in front sets one (letters, digits and ``-_.:``, at most 64), else an id made for the
request by :class:`recommender.middleware.VisitorMiddleware`; ``-`` outside a request. Use it in
``LOGGING`` (the README's "Logging" shows the whole dict)::

    "filters": {"request_id": {"()": "recommender.logs.RequestIdFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

_SAFE_ID = re.compile(r"[A-Za-z0-9\-_.:]{1,64}")


def request_id(request: Any) -> str:
    """The request's id, made on first use and kept on the request."""
    rid = getattr(request, "_recommender_request_id", None)
    if rid is None:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        rid = given if _SAFE_ID.fullmatch(given) else secrets.token_hex(8)
        request._recommender_request_id = rid
    return rid


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            from recommender.tracking import current_request

            request = current_request.get() or getattr(record, "request", None)
            record.request_id = request_id(request) if hasattr(request, "META") else "-"
        return True
