"""``ConcurrencyLimitMiddleware``: a bound on the requests in flight per process (load shedding).

The limiter is shared by the sync (WSGI threads) and async (event loop) paths of every instance in
the process: a slot taken by a thread and one taken by a task count against the same bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import cast

from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase

from django_async_toolkit.conf import conf
from django_async_toolkit.middleware.base import AsyncMiddleware, _plain_response

__all__ = ["ConcurrencyLimitMiddleware"]


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
