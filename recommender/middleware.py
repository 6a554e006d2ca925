"""Makes the current request visible to signal receivers and sets the visitor cookie."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from recommender.conf import app_settings
from recommender.tracking import current_request


class VisitorMiddleware:
    """Add after Oscar's ``BasketMiddleware``.

    Sets the pseudonymous visitor cookie only when an event was recorded for a
    new anonymous visitor, so untracked visitors (Sec-GPC, no consent, bots) get
    no cookie from us.
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
        if new_visitor:
            response.set_cookie(
                app_settings.VISITOR_COOKIE,
                new_visitor,
                max_age=app_settings.VISITOR_COOKIE_AGE,
                secure=app_settings.VISITOR_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
