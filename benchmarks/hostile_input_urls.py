"""The demo shop's URLs plus ``boom/``, whose view always raises (a server error on demand) for
``benchmarks/hostile_input.py``."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from shop.urls import urlpatterns as shop_patterns


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("benchmarks.hostile_input: a server error on purpose")


urlpatterns = [path("boom/", boom), *shop_patterns]
