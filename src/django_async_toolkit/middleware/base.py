"""``AsyncMiddleware``: the base class for middleware that runs natively under WSGI and ASGI.

See :class:`AsyncMiddleware`; the toolkit's own middleware is built on it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import types
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, NamedTuple, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from django_async_toolkit._validation import describe_value, qualname

__all__ = ["AsyncMiddleware", "GetResponse"]

logger = logging.getLogger("django_async_toolkit.middleware")

GetResponse = Callable[[HttpRequest], "HttpResponseBase | Awaitable[HttpResponseBase]"]
"""The next layer of the stack, as Django passes it to a middleware: sync or async."""


class _Hook(NamedTuple):
    """A ``process_request``/``process_response`` hook, prepared once for the middleware's mode."""

    func: Callable[..., Any]
    is_async: bool


class AsyncMiddleware:
    """Base class for middleware that runs natively in both modes, with no thread hop.

    Django builds the instance with ``get_response``, the next layer of the stack.
    The mode is decided once, here: when ``get_response`` is a coroutine function the instance is
    marked as one (``markcoroutinefunction``) and each request goes through :meth:`__acall__`;
    otherwise through the plain :meth:`__call__`.
    :attr:`async_mode` tells which.

    Subclasses write any of these hooks, each as ``async def`` or as a plain ``def``:

    - ``process_request(request)``: return ``None`` to continue, or a response to answer the
      request without calling the rest of the stack (``process_response`` still runs on it, as
      with Django's ``MiddlewareMixin``);
    - ``process_response(request, response)``: return a response (the one received, or another);
    - ``process_view``, ``process_template_response`` and ``process_exception``, as Django defines
      them: Django's handler finds them by their presence and calls them itself.

    A plain ``def`` hook is taken to be quick, non-blocking CPU work and runs inline in both modes:
    on the event loop's thread under ASGI, with no ``sync_to_async`` hop (for ``process_view`` and
    ``process_template_response`` too).
    An ``async def`` hook is awaited under ASGI; in a sync (WSGI) stack it runs through
    ``async_to_sync``.
    Django always calls ``process_exception`` on the sync side, also under ASGI.

    A hook that returns something other than a response (or ``None`` from ``process_response``)
    raises a :class:`TypeError` that names the middleware class and the hook.
    Per-request state belongs on the ``request`` or in local variables, never on ``self``: one
    instance serves every request, many of them at once under ASGI.
    Streaming responses pass through untouched, and ``asyncio.CancelledError`` propagates.
    """

    #: For a middleware whose work needs async mode: what is lost in sync mode (WSGI,
    #: runserver, or below a sync-only middleware under ASGI), said once in the log at the first
    #: request served that way.
    sync_mode_loses: ClassVar[str | None] = None

    sync_capable: ClassVar[bool] = True
    async_capable: ClassVar[bool] = True

    #: The next layer of the middleware stack.
    get_response: GetResponse
    #: ``True`` when the stack below is async (the instance is then a coroutine function).
    async_mode: bool

    def __init__(self, get_response: GetResponse) -> None:
        if get_response is None:
            raise TypeError(
                f"{qualname(type(self))}() requires get_response, the next layer of the "
                "middleware stack. Django passes it when it loads settings.MIDDLEWARE; when you "
                "build the middleware yourself, pass the callable that returns the response."
            )
        if not callable(get_response):
            raise TypeError(
                f"{qualname(type(self))}() requires a callable get_response (the next layer "
                f"of the middleware stack), not {describe_value(get_response)}."
            )
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
            self._run_inline_on_loop("process_view")
            self._run_inline_on_loop("process_template_response")
        self._request_hook = self._prepare_hook("process_request")
        self._response_hook = self._prepare_hook("process_response")

    def _prepare_hook(self, name: str) -> _Hook | None:
        hook = getattr(self, name, None)
        if hook is None:
            return None
        if not callable(hook):
            raise TypeError(
                f"{qualname(type(self))}.{name} must be a method (async def or def), "
                f"not {describe_value(hook)}."
            )
        if not iscoroutinefunction(hook):
            return _Hook(hook, False)
        if self.async_mode:
            return _Hook(hook, True)
        return _Hook(async_to_sync(hook), False)

    def _run_inline_on_loop(self, name: str) -> None:
        # Django adapts a sync process_view/process_template_response with sync_to_async under
        # ASGI; an async shim that calls the plain def directly keeps it on the loop's thread.
        hook = getattr(self, name, None)
        if hook is None or iscoroutinefunction(hook):
            return

        @functools.wraps(hook)
        async def inline(middleware: AsyncMiddleware, *args: Any, **kwargs: Any) -> Any:
            return hook(*args, **kwargs)

        # Bound like a method: Django reads ``__self__`` when it names a hook in an error.
        setattr(self, name, types.MethodType(inline, self))

    def _checked(
        self, hook: str, result: object, *, none_allowed: bool
    ) -> HttpResponseBase | None:
        if isinstance(result, HttpResponseBase) or (none_allowed and result is None):
            return result
        where = f"{qualname(type(self))}.{hook}()"
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError(
                f"{where} returned an awaitable ({describe_value(result)}) from a plain def; "
                "declare the hook with 'async def' so that the middleware awaits it."
            )
        expected = (
            "an HttpResponse to answer the request, or None to continue"
            if none_allowed
            else "an HttpResponse (the one it received, or a new one)"
        )
        raise TypeError(f"{where} returned {describe_value(result)}; it must return {expected}.")

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        """Handle one request: in async mode, return the coroutine of :meth:`__acall__`."""
        if self.async_mode:
            return self.__acall__(request)
        if self.sync_mode_loses is not None:
            _note_sync_mode(type(self), self.sync_mode_loses)
        response = None
        hook = self._request_hook
        if hook is not None:
            response = self._checked("process_request", hook.func(request), none_allowed=True)
        if response is None:
            response = cast(HttpResponseBase, self.get_response(request))
        hook = self._response_hook
        if hook is not None:
            result = hook.func(request, response)
            response = cast(
                HttpResponseBase, self._checked("process_response", result, none_allowed=False)
            )
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        """Handle one request in async mode: await ``async def`` hooks, call plain ones inline."""
        response = None
        hook = self._request_hook
        if hook is not None:
            result = hook.func(request)
            if hook.is_async:
                result = await result
            if result is not None:  # the common None costs no further call
                response = self._checked("process_request", result, none_allowed=True)
        if response is None:
            response = await cast(Awaitable[HttpResponseBase], self.get_response(request))
        hook = self._response_hook
        if hook is not None:
            result = hook.func(request, response)
            if hook.is_async:
                result = await result
            if result is not response:  # handing back the same response needs no check
                result = self._checked("process_response", result, none_allowed=False)
            response = cast(HttpResponseBase, result)
        return response


def _plain_response(text: str, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


_noted_sync_mode: set[type] = set()


def _note_sync_mode(cls: type, loses: str) -> None:
    if cls in _noted_sync_mode:
        return
    _noted_sync_mode.add(cls)
    logger.warning(
        "%s is serving requests in sync mode (WSGI, runserver, or below a sync-only "
        "middleware under ASGI): %s.",
        qualname(cls),
        loses,
    )
