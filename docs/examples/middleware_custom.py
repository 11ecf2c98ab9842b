"""Two middleware written on AsyncMiddleware: each runs under WSGI and ASGI with no thread hop."""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from django_async_toolkit.middleware import AsyncMiddleware


class RequestIdMiddleware(AsyncMiddleware):
    """Give each request an id (the client's X-Request-ID, or a new one) and echo it back.

    The hooks are plain ``def``: quick CPU work, so they run inline in both modes.
    """

    def process_request(self, request: HttpRequest) -> None:
        # Per-request state goes on the request, never on self.
        request.request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex  # type: ignore[attr-defined]

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response


class MaintenanceMiddleware(AsyncMiddleware):
    """Answer 503 while the cache key "maintenance" is set.

    The hook does I/O, so it is ``async def``: awaited on the event loop under ASGI, run through
    ``async_to_sync`` under WSGI.
    """

    async def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if await cache.aget("maintenance"):
            return HttpResponse("Down for maintenance.\n", status=503, content_type="text/plain")
        return None
