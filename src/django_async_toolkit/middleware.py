"""Middleware that runs natively under both WSGI and ASGI, with no thread hop.

:class:`AsyncMiddleware` is the base class; :class:`TimeoutMiddleware` and
:class:`ConcurrencyLimitMiddleware` are built on it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import threading
import types
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, ClassVar, NamedTuple, TypeVar, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from django_async_toolkit.conf import conf

__all__ = [
    "AsyncMiddleware",
    "ConcurrencyLimitMiddleware",
    "TimeoutMiddleware",
    "request_timeout",
]

logger = logging.getLogger("django_async_toolkit.middleware")

GetResponse = Callable[[HttpRequest], "HttpResponseBase | Awaitable[HttpResponseBase]"]
"""The next layer of the stack, as Django passes it to a middleware: sync or async."""

_ViewT = TypeVar("_ViewT", bound=Callable[..., Any])


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe(value: object) -> str:
    if value is None:
        return "None"
    return f"a {type(value).__module__}.{type(value).__qualname__} object"


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

    sync_capable: ClassVar[bool] = True
    async_capable: ClassVar[bool] = True

    #: The next layer of the middleware stack.
    get_response: GetResponse
    #: ``True`` when the stack below is async (the instance is then a coroutine function).
    async_mode: bool

    def __init__(self, get_response: GetResponse) -> None:
        if get_response is None:
            raise TypeError(
                f"{_class_path(type(self))}() requires get_response, the next layer of the "
                "middleware stack. Django passes it when it loads settings.MIDDLEWARE; when you "
                "build the middleware yourself, pass the callable that returns the response."
            )
        if not callable(get_response):
            raise TypeError(
                f"{_class_path(type(self))}() requires a callable get_response (the next layer "
                f"of the middleware stack), not {_describe(get_response)}."
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
                f"{_class_path(type(self))}.{name} must be a method (async def or def), "
                f"not {_describe(hook)}."
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
        where = f"{_class_path(type(self))}.{hook}()"
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError(
                f"{where} returned an awaitable ({_describe(result)}) from a plain def; "
                "declare the hook with 'async def' so that the middleware awaits it."
            )
        expected = (
            "an HttpResponse to answer the request, or None to continue"
            if none_allowed
            else "an HttpResponse (the one it received, or a new one)"
        )
        raise TypeError(f"{where} returned {_describe(result)}; it must return {expected}.")

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        """Handle one request: in async mode, return the coroutine of :meth:`__acall__`."""
        if self.async_mode:
            return self.__acall__(request)
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
            f"request_timeout() takes a number of seconds or None, not {_describe(seconds)}."
        )
    if not math.isfinite(seconds) or seconds <= 0:
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
                f"view), not {_describe(view)}."
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


class _Waiter:
    """A request waiting for a slot; ``granted`` is written under the limiter's lock only."""

    __slots__ = ("limit", "granted")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.granted = False

    def wake(self) -> bool:
        raise NotImplementedError


class _ThreadWaiter(_Waiter):
    __slots__ = ("event",)

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.event = threading.Event()

    def wake(self) -> bool:
        self.event.set()
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _TaskWaiter(_Waiter):
    __slots__ = ("loop", "future")

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit)
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()

    def wake(self) -> bool:
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:  # its loop is closed: nobody is waiting any more
            return False
        return True


class _Slot:
    """A held place in the limit; releasing it twice is harmless."""

    __slots__ = ("limiter", "held")

    def __init__(self, limiter: _Limiter) -> None:
        self.limiter = limiter
        self.held = True

    def release(self) -> None:
        self.limiter.release(self)


class _Limiter:
    """One process-wide count of requests in flight, shared by threads and event loops.

    A free slot is taken at once; otherwise the request queues (first come, first served) for
    at most ``wait`` seconds, and a released slot passes straight to the first waiter.
    The lock is only held for a few attribute updates, never while waiting, so taking it on an
    event loop does not block the loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()
        self.in_flight = 0

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _take(self, limit: int) -> bool:
        if self.in_flight < limit and not self._waiters:
            self.in_flight += 1
            return True
        return False

    def acquire(self, limit: int, wait: float) -> _Slot | None:
        """Take a slot, blocking this thread for at most ``wait`` seconds."""
        with self._lock:
            if self._take(limit):
                return _Slot(self)
            if wait <= 0:
                return None
            waiter = _ThreadWaiter(limit)
            self._waiters.append(waiter)
        try:
            waiter.event.wait(wait)
        finally:
            slot = self._settle(waiter)
        return slot

    async def acquire_async(self, limit: int, wait: float) -> _Slot | None:
        """Take a slot, waiting on the running loop for at most ``wait`` seconds."""
        with self._lock:
            if self._take(limit):
                return _Slot(self)
            if wait <= 0:
                return None
            waiter = _TaskWaiter(limit, asyncio.get_running_loop())
            self._waiters.append(waiter)
        try:
            async with asyncio.timeout(wait):
                await waiter.future
        except TimeoutError:
            pass
        except BaseException:
            slot = self._settle(waiter)
            if slot is not None:
                slot.release()
            raise
        return self._settle(waiter)

    def _settle(self, waiter: _Waiter) -> _Slot | None:
        # The wait is over (granted, timed out or interrupted): either the waiter was handed a
        # slot, which it now holds, or it leaves the queue.
        with self._lock:
            if waiter.granted:
                return _Slot(self)
            self._waiters.remove(waiter)
            return None

    def release(self, slot: _Slot) -> None:
        with self._lock:
            if not slot.held:
                return
            slot.held = False
            self.in_flight -= 1
            while self._waiters and self.in_flight < self._waiters[0].limit:
                waiter = self._waiters.popleft()
                if waiter.wake():
                    waiter.granted = True
                    self.in_flight += 1
                    return


_limiter = _Limiter()


class _ReleasingIterator:
    """A sync streaming body that frees its slot when it ends or the response is closed."""

    def __init__(self, iterator: Iterator[bytes], slot: _Slot) -> None:
        self._iterator = iterator
        self._slot = slot

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._iterator)
        except BaseException:
            self._slot.release()
            raise

    def close(self) -> None:
        self._slot.release()


class _AsyncReleasingIterator:
    """An async streaming body that frees its slot when it ends or the response is closed."""

    def __init__(self, iterator: AsyncIterator[bytes], slot: _Slot) -> None:
        self._iterator = iterator
        self._slot = slot

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._iterator.__anext__()
        except BaseException:
            self._slot.release()
            raise

    def close(self) -> None:
        self._slot.release()


def _release_when_done(response: HttpResponseBase, slot: _Slot) -> HttpResponseBase:
    if isinstance(response, FileResponse) and response.file_to_stream is not None:
        # Replacing a file response's content would lose the server's sendfile path
        # (wsgi.file_wrapper): free the slot when the response is closed instead.
        response._resource_closers.append(slot.release)  # type: ignore[attr-defined]
    elif isinstance(response, StreamingHttpResponse):
        # Django calls close() on the new iterator when it closes the response (after the body,
        # or when the client went away), so the slot is freed in every case.
        content = response.streaming_content
        if response.is_async:
            response.streaming_content = _AsyncReleasingIterator(
                cast(AsyncIterator[bytes], content), slot
            )
        else:
            response.streaming_content = _ReleasingIterator(cast(Iterator[bytes], content), slot)
    else:
        slot.release()
    return response


class ConcurrencyLimitMiddleware(AsyncMiddleware):
    """Bound the requests in flight in this process; shed the excess with 503.

    At most ``ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS`` requests (``None``, the default, means no
    limit) are inside the stack below this middleware at once, counted per process across every
    instance, thread and event loop.
    A request that finds no free slot waits up to ``ASYNC_TOOLKIT_CONCURRENCY_WAIT`` seconds for
    one (first come, first served; 0 means no wait), then gets a plain-text 503 with a
    ``Retry-After: <ASYNC_TOOLKIT_RETRY_AFTER>`` header: the queue never grows past that wait.
    Works in both modes: under WSGI the waiting worker thread blocks, under ASGI the request's task
    waits without blocking the loop.
    A slot is always released: when the response is returned, on errors and cancellation, and for
    a streaming response only when its body ends or the response is closed (client gone).
    Settings are read on each request, so ``override_settings`` applies at once.
    """

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        limit = conf.MAX_CONCURRENT_REQUESTS
        if limit is None:
            return super().__call__(request)
        slot = _limiter.acquire(limit, conf.CONCURRENCY_WAIT)
        if slot is None:
            return self.rejected_response(request)
        try:
            response = cast(HttpResponseBase, super().__call__(request))
        except BaseException:
            slot.release()
            raise
        return _release_when_done(response, slot)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        limit = conf.MAX_CONCURRENT_REQUESTS
        if limit is None:
            return await super().__acall__(request)
        slot = await _limiter.acquire_async(limit, conf.CONCURRENCY_WAIT)
        if slot is None:
            return self.rejected_response(request)
        try:
            response = await super().__acall__(request)
        except BaseException:
            slot.release()
            raise
        return _release_when_done(response, slot)

    def rejected_response(self, request: HttpRequest) -> HttpResponseBase:
        """The response sent when no slot freed up in time; override it to change the 503."""
        response = _plain_response(
            "Service Unavailable: the server is handling too many requests; retry later.\n",
            status=503,
        )
        response["Retry-After"] = str(conf.RETRY_AFTER)
        return response

    @staticmethod
    def in_flight() -> int:
        """How many requests hold a slot in this process right now (for metrics and tests)."""
        return _limiter.in_flight

    @staticmethod
    def waiting() -> int:
        """How many requests are waiting for a slot in this process right now."""
        return _limiter.waiting


# --- BlockingDetectorMiddleware ---

from django_async_toolkit.blocking import BlockingDetector, start_process_detector  # noqa: E402

__all__ += ["BlockingDetectorMiddleware"]

#: The ``Server-Timing`` metric name of the event loop lag seen during a request.
SERVER_TIMING_METRIC = "loop-lag"


class BlockingDetectorMiddleware(AsyncMiddleware):
    """Run the process's blocking detector, and optionally report the loop lag of each request.

    Under ASGI, the first request starts the process-wide
    :class:`~django_async_toolkit.blocking.BlockingDetector` on the server's event loop (with
    ``ASYNC_TOOLKIT_BLOCKING_THRESHOLD``), unless the ASGI lifespan already did: from then on,
    each stall of the loop is logged on the ``django_async_toolkit.blocking`` logger with the line
    that blocked.
    With ``ASYNC_TOOLKIT_SERVER_TIMING = True`` each response also gets a ``Server-Timing`` entry,
    ``loop-lag;dur=<milliseconds>``: how long the event loop was stalled while the request was
    handled (by this request or by any other one), up to the moment the response is returned
    (a streaming body is not counted).

    Under WSGI there is no event loop to watch: the middleware passes requests through untouched.
    Place it first in ``MIDDLEWARE`` so that the lag covers the whole stack.
    """

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        detector = start_process_detector()
        if not conf.SERVER_TIMING or detector.loop is not asyncio.get_running_loop():
            return await cast(Awaitable[HttpResponseBase], self.get_response(request))
        lag_before = detector.lag_total()
        response = await cast(Awaitable[HttpResponseBase], self.get_response(request))
        add_server_timing(response, detector, lag_before)
        return response


def add_server_timing(
    response: HttpResponseBase, detector: BlockingDetector, lag_before: float
) -> None:
    """Append the ``loop-lag`` entry (the lag since ``lag_before``) to ``Server-Timing``."""
    lag_ms = max(0.0, detector.lag_total() - lag_before) * 1000
    entry = f'{SERVER_TIMING_METRIC};dur={lag_ms:.1f};desc="event loop lag"'
    existing = response.get("Server-Timing")
    response["Server-Timing"] = f"{existing}, {entry}" if existing else entry
