"""The example's own middleware, written twice: for the toolkit, and the way WSGI projects do.

``RequestIdMiddleware`` is an :class:`~django_async_toolkit.middleware.AsyncMiddleware`: its hooks
are plain ``def`` (no I/O), so they run inline under ASGI and WSGI alike, without a thread hop.

``sync_request_id_middleware`` and ``sync_timing_middleware`` are classic function middleware,
sync-only: under ASGI Django runs each of them behind ``sync_to_async`` (a hop in, a hop out).
They make the ``stock`` stack that ``scripts/demo`` compares with the toolkit's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from django_async_toolkit.middleware import AsyncMiddleware

HEADER = "X-Request-ID"


def request_id_for(request: HttpRequest) -> str:
    """The caller's request id when it sent a sane one, else a new one."""
    given = request.headers.get(HEADER, "")
    if given and len(given) <= 64 and given.isascii() and given.isprintable():
        return given
    return uuid.uuid4().hex


class RequestIdMiddleware(AsyncMiddleware):
    """Tags each request with an id (``request.request_id``) and echoes it in ``X-Request-ID``."""

    def process_request(self, request: HttpRequest) -> None:
        request.request_id = request_id_for(request)  # type: ignore[attr-defined]

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response[HEADER] = getattr(request, "request_id", "")
        return response


Handler = Callable[[HttpRequest], HttpResponseBase]


def sync_request_id_middleware(get_response: Handler) -> Handler:
    """The same request id, as sync-only function middleware."""

    def middleware(request: HttpRequest) -> HttpResponseBase:
        request.request_id = request_id_for(request)  # type: ignore[attr-defined]
        response = get_response(request)
        response[HEADER] = request.request_id  # type: ignore[attr-defined]
        return response

    return middleware


def sync_timing_middleware(get_response: Handler) -> Handler:
    """A ``Server-Timing: app`` entry with the time spent below it, as sync-only middleware."""

    def middleware(request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = get_response(request)
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    return middleware
