"""A sync-only middleware that costs two thread hops per request under ASGI, and its fix."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from django_async_toolkit.middleware import AsyncMiddleware


class LegacyPoweredByMiddleware:
    """Old-style middleware: not async_capable, so Django runs it sync (async_toolkit.W001).

    Under ASGI the handler wraps it in sync_to_async and the layer below it in async_to_sync:
    two thread hops on every request, for one header.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response["X-Powered-By"] = "orders"
        return response


class PoweredByMiddleware(AsyncMiddleware):
    """The same header, with no hop under ASGI or WSGI: a plain hook runs inline in both modes."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response["X-Powered-By"] = "orders"
        return response
