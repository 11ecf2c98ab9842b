"""Middleware of every shape, for the audit's tests: the audit must charge what Django pays."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from django_async_toolkit.middleware import AsyncMiddleware

#: Thread names seen by the layers of the last request, in order (tests reset it).
SEEN: list[str] = []


def record(label: str) -> None:
    SEEN.append(f"{label}@{threading.current_thread().name}")


class SyncOnly:
    """Not async_capable: Django runs it sync, adapting around it under ASGI."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        record("sync-only")
        return self.get_response(request)


class OtherSyncOnly(SyncOnly):
    pass


class AsyncOnly:
    """Not sync_capable: Django runs it async, adapting around it under WSGI."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        record("async-only")
        return await self.get_response(request)


class Hybrid:
    """Both capable, with its own __call__: no hop of its own in either mode."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        record("hybrid")
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        record("hybrid")
        return await self.get_response(request)  # type: ignore[no-any-return]


class MixinBoth(MiddlewareMixin):
    """Both hooks: under ASGI each runs through sync_to_async."""

    def process_request(self, request: HttpRequest) -> None:
        record("mixin-request")

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        record("mixin-response")
        return response


class MixinRequestOnly(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> None:
        record("mixin-request-only")


class MixinViewHook(MiddlewareMixin):
    """No request/response hook, a sync process_view (adapted under ASGI)."""

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        record("mixin-view-hook")
        return None


class AsyncViewHook(Hybrid):
    """An async process_view (adapted under WSGI) and a sync process_exception."""

    async def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        record("async-view-hook")
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        return None


class NotUsed:
    """Raises MiddlewareNotUsed: Django leaves it out of the chain."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Any) -> None:
        raise MiddlewareNotUsed("not in this configuration")


class Neither:
    sync_capable = False
    async_capable = False


def function_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Any:
    """A function-based middleware, sync-only by default."""

    def middleware(request: HttpRequest) -> HttpResponse:
        record("function")
        return get_response(request)

    return middleware


SYNC_ONLY = "tests.audit_middleware.SyncOnly"
OTHER_SYNC_ONLY = "tests.audit_middleware.OtherSyncOnly"
ASYNC_ONLY = "tests.audit_middleware.AsyncOnly"
HYBRID = "tests.audit_middleware.Hybrid"
MIXIN_BOTH = "tests.audit_middleware.MixinBoth"
MIXIN_REQUEST_ONLY = "tests.audit_middleware.MixinRequestOnly"
MIXIN_VIEW_HOOK = "tests.audit_middleware.MixinViewHook"
ASYNC_VIEW_HOOK = "tests.audit_middleware.AsyncViewHook"
NOT_USED = "tests.audit_middleware.NotUsed"
FUNCTION = "tests.audit_middleware.function_middleware"


class TemplateHooks(MiddlewareMixin):
    """A sync process_template_response, adapted under ASGI on template responses only."""

    def process_template_response(self, request: HttpRequest, response: Any) -> Any:
        record("template-hook")
        return response


class AsyncTemplateHook(Hybrid):
    """An async process_template_response, adapted under WSGI on template responses only."""

    async def process_template_response(self, request: HttpRequest, response: Any) -> Any:
        record("async-template-hook")
        return response


class AnswersErrors(Hybrid):
    """An async process_exception that answers: always adapted to sync by Django."""

    async def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse:
        record("answers-errors")
        return HttpResponse("handled", status=200)


TEMPLATE_HOOKS = "tests.audit_middleware.TemplateHooks"
ASYNC_TEMPLATE_HOOK = "tests.audit_middleware.AsyncTemplateHook"
ANSWERS_ERRORS = "tests.audit_middleware.AnswersErrors"


class ToolkitHooks(AsyncMiddleware):
    """The toolkit's hybrid: an async request hook (async_to_sync under WSGI), plain others."""

    async def process_request(self, request: HttpRequest) -> None:
        record("toolkit-request")

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        record("toolkit-response")
        return response

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        record("toolkit-view-hook")
        return None


TOOLKIT_HOOKS = "tests.audit_middleware.ToolkitHooks"
TIMEOUT = "django_async_toolkit.middleware.TimeoutMiddleware"
CONCURRENCY = "django_async_toolkit.middleware.ConcurrencyLimitMiddleware"
