"""Makes the current request visible to signal receivers, sets the signed visitor cookie, and turns
away requests carrying NUL characters."""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from recommender.conf import app_settings
from recommender.logs import request_id
from recommender.measurement.capture import flush as flush_impressions
from recommender.tracking import (
    VISITOR_COOKIE_SALT,
    bind_session,
    current_request,
    should_track,
    visitor_cookie_value,
)

logger = logging.getLogger(__name__)


def nul_in_request(request: HttpRequest) -> str:
    """Where the request carries a NUL character ("" when nowhere): the path, a query parameter, a
    header or cookie, or the credentials inside ``Authorization: Basic``. No form or database
    accepts one (PostgreSQL refuses NUL in text), so it is never a shopper's input."""
    if "\x00" in request.path:
        return "the path"
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in v for v in values):
            return "the query string"
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            return f"the {key[5:].replace('_', '-').title()} header"
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = auth.partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            if b"\x00" in base64.b64decode(encoded.strip(), validate=True):
                return "the Basic credentials"
        except (binascii.Error, ValueError):
            pass  # not base64: the authentication class answers that with its own 401
    return ""


class VisitorMiddleware:
    """Add after Oscar's ``BasketMiddleware``.

    A request with a NUL character in its path, query string, headers or Basic credentials gets a
    400 before any view runs (it would otherwise reach a database query and fail with a 500).

    Sets the signed pseudonymous visitor cookie only when an event was recorded for a
    new anonymous visitor, so untracked visitors (Sec-GPC, no consent, bots) get no
    cookie from us; and after a login or logout (:func:`recommender.tracking.rotate_visitor`)
    replaces it with a fresh, non-mergeable id (deletes it when the request is not tracked).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # every response names its request, and every log record of the request carries the same id
        # (Django's own "Bad Request" or "Internal Server Error" lines included)
        rid = request_id(request)
        where = nul_in_request(request)
        if where:
            logger.info("refused a request with a NUL character in %s", where, extra={"request_id": rid})
            response: HttpResponse = HttpResponseBadRequest(
                f"A NUL character in {where} is not allowed.", content_type="text/plain"
            )
            response.headers["X-Request-ID"] = rid
            return response
        token = current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        flush_impressions(request)  # the blocks the page showed, in one insert (before the cookie is set)
        response.headers.setdefault("X-Request-ID", rid)
        new_visitor = getattr(request, "_recommender_new_visitor", None)
        if getattr(request, "_recommender_rotate", False):
            if should_track(request):
                vid = new_visitor or secrets.token_hex(16)
                bind_session(request, vid)  # the session after the login or logout records under it
                self._set(request, response, vid, mergeable=False)
            else:
                response.delete_cookie(app_settings.VISITOR_COOKIE, samesite="Lax")
        elif new_visitor:
            self._set(request, response, new_visitor, mergeable=getattr(request, "_recommender_mergeable", False))
        return response

    @staticmethod
    def _set(request: HttpRequest, response: HttpResponse, vid: str, mergeable: bool) -> None:
        secure = app_settings.VISITOR_COOKIE_SECURE

        response.set_signed_cookie(
            app_settings.VISITOR_COOKIE,
            visitor_cookie_value(vid, mergeable),
            salt=VISITOR_COOKIE_SALT,
            max_age=app_settings.VISITOR_COOKIE_AGE,
            secure=request.is_secure() if secure is None else secure,
            httponly=True,
            samesite="Lax",
        )
