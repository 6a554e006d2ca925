"""Makes the current request visible to signal receivers and sets the signed visitor cookie."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from recommender.conf import app_settings
from recommender.tracking import VISITOR_COOKIE_SALT, current_request, should_track, visitor_cookie_value


class VisitorMiddleware:
    """Add after Oscar's ``BasketMiddleware``.

    Sets the signed pseudonymous visitor cookie only when an event was recorded for a
    new anonymous visitor, so untracked visitors (Sec-GPC, no consent, bots) get no
    cookie from us; and after a login or logout (:func:`recommender.tracking.rotate_visitor`)
    replaces it with a fresh, non-mergeable id (deletes it when the request is not tracked).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        new_visitor = getattr(request, "_recommender_new_visitor", None)
        if getattr(request, "_recommender_rotate", False):
            if should_track(request):
                self._set(response, new_visitor or secrets.token_hex(16), mergeable=False)
            else:
                response.delete_cookie(app_settings.VISITOR_COOKIE, samesite="Lax")
        elif new_visitor:
            self._set(response, new_visitor, mergeable=getattr(request, "_recommender_mergeable", False))
        return response

    @staticmethod
    def _set(response: HttpResponse, vid: str, mergeable: bool) -> None:
        response.set_signed_cookie(
            app_settings.VISITOR_COOKIE,
            visitor_cookie_value(vid, mergeable),
            salt=VISITOR_COOKIE_SALT,
            max_age=app_settings.VISITOR_COOKIE_AGE,
            secure=app_settings.VISITOR_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
