"""``TimeoutMiddleware`` and ``request_timeout``: a deadline for every request under ASGI."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from django_async_toolkit import _compat
from django_async_toolkit._validation import describe_value, is_seconds, qualname
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

    __slots__ = ("loop", "started", "seconds", "timeout", "view")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, started: float, seconds: float | None
    ) -> None:
        self.loop = loop
        self.started = started
        self.seconds = seconds
        #: Entered once the rest of the stack has suspended (an eager start may run
        #: ``process_view``, which changes the deadline, before that).
        self.timeout: asyncio.Timeout | None = None
        #: The view that serves the request, once ``process_view`` has seen it.
        self.view: object = None

    def when(self) -> float | None:
        return None if self.seconds is None else self.started + self.seconds

    def change(self, seconds: float | None) -> None:
        self.seconds = seconds
        if self.timeout is not None:
            self.timeout.reschedule(self.when())


class TimeoutMiddleware(AsyncMiddleware):
    """Answer 504 when a request runs past its deadline, cancelling the view.

    The deadline is ``ASYNC_TOOLKIT_REQUEST_TIMEOUT`` seconds (``None``, the default, turns it
    off), or the view's own, given with :func:`request_timeout`; it counts from when the request
    enters this middleware.
    Past it, the task running the rest of the stack is cancelled, so the view's ``finally`` blocks
    run (for at most :attr:`cancel_grace` seconds); the client gets a plain-text 504 and a warning
    naming the path and the time is logged on ``django_async_toolkit.middleware``.
    The deadline holds whatever the view does: one that catches its cancellation and goes on
    still gets its client a 504 once the grace has passed, and is named in a second warning.
    A sync view (run in a thread by Django) cannot be interrupted: the client still gets the 504
    on time, and the thread finishes the view in the background.
    Only the production of the response is timed: a streaming response's body is not cut.

    Under WSGI (or below a sync-only middleware) nothing can be cancelled: the middleware passes
    requests through untouched, and a system check warns about a WSGI-only project.
    Place it high in ``MIDDLEWARE`` so that the deadline covers the middleware below it.
    """

    #: Seconds the cancelled view is given to clean up (its ``finally`` blocks) before the 504
    #: goes out; a view that is still running then, or that returned instead of letting its
    #: cancellation propagate, is named in a warning.
    cancel_grace: ClassVar[float] = 1.0

    sync_mode_loses = (
        "it passes requests through, so no request is cancelled at its deadline and "
        "ASYNC_TOOLKIT_REQUEST_TIMEOUT has no effect"
    )

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
        deadline: _Deadline | None = getattr(request, _DEADLINE_ATTR, None)
        if deadline is None:
            return
        deadline.view = view_func
        seconds = _view_timeout(view_func)
        if seconds is _NO_OVERRIDE:
            return
        if deadline.loop is asyncio.get_running_loop():
            deadline.change(seconds)
        else:
            deadline.loop.call_soon_threadsafe(deadline.change, seconds)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        loop = asyncio.get_running_loop()
        deadline = _Deadline(loop, loop.time(), conf.REQUEST_TIMEOUT)
        setattr(request, _DEADLINE_ATTR, deadline)
        # The rest of the stack runs in a task of its own, so that the deadline holds even for
        # a view that catches its cancellation and goes on; it shares a copy of this context,
        # whose changes are adopted here (as if it had run in this task).
        context = contextvars.copy_context()
        inner = _compat.start_task(super().__acall__(request), context)
        try:
            if not inner.done():  # (an eager task may be done already)
                deadline.timeout = asyncio.timeout_at(deadline.when())
                async with deadline.timeout:
                    await asyncio.shield(inner)
        except TimeoutError:
            if deadline.timeout is None or not deadline.timeout.expired():
                raise
        except asyncio.CancelledError:
            # Cancelled from outside (the client went away): so is the rest of the stack, and
            # its cleanup runs before the cancellation goes on up.
            inner.cancel()
            await asyncio.wait({inner}, timeout=self.cancel_grace)
            _keep_until_done(inner)
            raise
        else:
            _compat.adopt_context(context)
            return inner.result()
        return await self._time_out(request, deadline, inner)

    async def _time_out(
        self, request: HttpRequest, deadline: _Deadline, inner: asyncio.Task[HttpResponseBase]
    ) -> HttpResponseBase:
        """Cancel the rest of the stack, give it ``cancel_grace`` to clean up, answer 504."""
        inner.cancel()
        await asyncio.wait({inner}, timeout=self.cancel_grace)
        loop = deadline.loop
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
        if not inner.done() or not inner.cancelled():
            view = qualname(deadline.view) if deadline.view is not None else "The view"
            still = "is still running" if not inner.done() else "returned anyway"
            logger.warning(
                "%s ignored its cancellation at the deadline of %s %s: it %s after a grace of "
                "%g s. Let asyncio.CancelledError propagate (re-raise it after cleaning up).",
                view,
                request.method,
                request.path,
                still,
                self.cancel_grace,
                extra={"request": request, "status_code": 504},
            )
            _keep_until_done(inner)
        return self.timeout_response(request, seconds)

    def timeout_response(self, request: HttpRequest, seconds: float) -> HttpResponseBase:
        """The response sent when the deadline passed; override it to change the 504."""
        return _plain_response(
            f"Gateway Timeout: the server did not answer within {seconds:g} seconds.\n",
            status=504,
        )


#: Requests' tasks that outlived their middleware (a view that ignored its cancellation): held
#: until they end, so that they are not garbage-collected mid-run (the loop holds tasks weakly).
_outliving: set[asyncio.Task[Any]] = set()


def _keep_until_done(task: asyncio.Task[Any]) -> None:
    if task.done():
        _retrieve(task)
        return
    _outliving.add(task)
    task.add_done_callback(_outliving.discard)
    task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error(
            "A timed-out request's view failed after its 504 was sent: %r",
            task.exception(),
            exc_info=task.exception(),
        )
