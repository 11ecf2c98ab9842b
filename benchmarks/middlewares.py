"""Five middleware of each kind, each doing the same small work (a request attribute, a header)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

from django_async_toolkit.middleware import AsyncMiddleware

COUNT = 5


class ToolkitAsyncHooks(AsyncMiddleware):
    async def process_request(self, request: HttpRequest) -> None:
        request.seen = True  # type: ignore[attr-defined]

    async def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response["X-Bench"] = "1"
        return response


class ToolkitDefHooks(AsyncMiddleware):
    def process_request(self, request: HttpRequest) -> None:
        request.seen = True  # type: ignore[attr-defined]

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response["X-Bench"] = "1"
        return response


class HandWrittenAsync:
    """The hand-written pure async middleware that the base class is measured against."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.seen = True  # type: ignore[attr-defined]
        response = await self.get_response(request)
        response["X-Bench"] = "1"
        return response


class Mixin(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> None:
        request.seen = True  # type: ignore[attr-defined]

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response["X-Bench"] = "1"
        return response


def sync_only(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    def middleware(request: HttpRequest) -> Any:
        request.seen = True  # type: ignore[attr-defined]
        response = get_response(request)
        response["X-Bench"] = "1"
        return response

    return middleware


STACKS = {
    "toolkit_async_hooks": "benchmarks.middlewares.ToolkitAsyncHooks",
    "toolkit_def_hooks": "benchmarks.middlewares.ToolkitDefHooks",
    "hand_written_async": "benchmarks.middlewares.HandWrittenAsync",
    "middleware_mixin": "benchmarks.middlewares.Mixin",
    "sync_only": "benchmarks.middlewares.sync_only",
}


def stack(kind: str) -> list[str]:
    return [STACKS[kind]] * COUNT
