"""``TimeoutMiddleware`` and ``request_timeout``: a deadline for every request under ASGI."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from django_async_toolkit._validation import describe_value, is_seconds
from django_async_toolkit.conf import conf
from django_async_toolkit.middleware.base import AsyncMiddleware, GetResponse, _plain_response

__all__ = ["TimeoutMiddleware", "request_timeout"]

logger = logging.getLogger("django_async_toolkit.middleware")

_ViewT = TypeVar("_ViewT", bound=Callable[..., Any])


_VIEW_TIMEOUT_ATTR = "_async_toolkit_request_timeout"
_DEADLINE_ATTR = "_async_toolkit_deadline"
_NO_OVERRIDE: Any = object()


def _check_seconds(seconds: object) -> float | None:
    if seconds is None:
        return None
    if callable(seconds):
        raise TypeError(
            "request_timeout() takes a number of seconds: write @request_timeout(30) "
            "(or @request_timeout(None) to turn the timeout off for the view), "
            "not a bare @request_timeout."
        )
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(
            f"request_timeout() takes a number of seconds or None, not {describe_value(seconds)}."
        )
    if not is_seconds(seconds):
        raise ValueError(
            f"request_timeout({seconds!r}): the timeout must be a number of seconds greater "
            "than 0, or None to turn the timeout off for the view."
        )
    return seconds


def request_timeout(seconds: float | None) -> Callable[[_ViewT], _ViewT]:
    """Give one view its own deadline, overriding ``ASYNC_TOOLKIT_REQUEST_TIMEOUT``.

    ``seconds`` is a number greater than 0, or ``None`` to turn the timeout off for the view
    (for a long poll, say).
    Decorate a function view (sync or async), a class-based view (the class, or its
    ``dispatch`` with ``method_decorator``), or the function that ``as_view()`` returns.
    :class:`TimeoutMiddleware` reads the value in ``process_view``, without a thread hop.
    The deadline still counts from when the request entered the middleware.
    """
    checked = _check_seconds(seconds)

    def decorator(view: _ViewT) -> _ViewT:
        if isinstance(view, type):
            setattr(view, _VIEW_TIMEOUT_ATTR, checked)
            return view
        if not callable(view):
            raise TypeError(
                f"request_timeout({seconds!r}) decorates a view (a function or a class-based "
                f"view), not {describe_value(view)}."
            )
        wrapper: Callable[..., Any]
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await view(*args, **kwargs)

        else:

            @functools.wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return view(*args, **kwargs)

        setattr(wrapper, _VIEW_TIMEOUT_ATTR, checked)
        return cast(_ViewT, wrapper)

    return decorator


def _view_timeout(view_func: object) -> float | None:
    seconds = getattr(view_func, _VIEW_TIMEOUT_ATTR, _NO_OVERRIDE)
    if seconds is _NO_OVERRIDE:
        view_class = getattr(view_func, "view_class", None)
        seconds = getattr(view_class, _VIEW_TIMEOUT_ATTR, _NO_OVERRIDE)
    return cast("float | None", seconds)


class _Deadline:
    """One request's deadline: kept on the request, never on the middleware."""

    __slots__ = ("loop", "started", "seconds", "timeout")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, started: float, seconds: float | None
    ) -> None:
        self.loop = loop
        self.started = started
        self.seconds = seconds
        self.timeout = asyncio.timeout_at(None if seconds is None else started + seconds)

    def change(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.timeout.reschedule(None if seconds is None else self.started + seconds)


class TimeoutMiddleware(AsyncMiddleware):
    """Answer 504 when a request runs past its deadline, cancelling the view.

    The deadline is ``ASYNC_TOOLKIT_REQUEST_TIMEOUT`` seconds (``None``, the default, turns it
    off), or the view's own, given with :func:`request_timeout`; it counts from when the request
    enters this middleware.
    Past it, the task running the rest of the stack is cancelled, so the view's ``finally`` blocks
    run; the client gets a plain-text 504 and a warning naming the path and the time is logged on
    ``django_async_toolkit.middleware``.
    A sync view (run in a thread by Django) cannot be interrupted: the client still gets the 504
    on time, and the thread finishes the view in the background.
    Only the production of the response is timed: a streaming response's body is not cut.

    Under WSGI (or below a sync-only middleware) nothing can be cancelled: the middleware passes
    requests through untouched, and a system check warns about a WSGI-only project.
    Place it high in ``MIDDLEWARE`` so that the deadline covers the middleware below it.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        if self.async_mode:
            # Set on the instance, and only in async mode: a sync stack does not pay for it.
            self.process_view = self._apply_view_timeout

    async def _apply_view_timeout(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        seconds = _view_timeout(view_func)
        if seconds is _NO_OVERRIDE:
            return
        deadline: _Deadline | None = getattr(request, _DEADLINE_ATTR, None)
        if deadline is None:
            return
        if deadline.loop is asyncio.get_running_loop():
            deadline.change(seconds)
        else:
            deadline.loop.call_soon_threadsafe(deadline.change, seconds)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        loop = asyncio.get_running_loop()
        deadline = _Deadline(loop, loop.time(), conf.REQUEST_TIMEOUT)
        setattr(request, _DEADLINE_ATTR, deadline)
        try:
            async with deadline.timeout:
                return await super().__acall__(request)
        except TimeoutError:
            if not deadline.timeout.expired():
                raise
        elapsed = loop.time() - deadline.started
        seconds = cast(float, deadline.seconds)
        logger.warning(
            "Request %s %s timed out after %.3f s (limit %g s): cancelled, answered 504.",
            request.method,
            request.path,
            elapsed,
            seconds,
            extra={"request": request, "status_code": 504},
        )
        return self.timeout_response(request, seconds)

    def timeout_response(self, request: HttpRequest, seconds: float) -> HttpResponseBase:
        """The response sent when the deadline passed; override it to change the 504."""
        return _plain_response(
            f"Gateway Timeout: the server did not answer within {seconds:g} seconds.\n",
            status=504,
        )
