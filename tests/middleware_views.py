"""Views, middleware and synchronisation helpers for ``tests/test_middleware*.py``."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import SimpleTemplateResponse
from django.utils.decorators import method_decorator
from django.views import View

from django_async_toolkit.middleware import AsyncMiddleware, request_timeout


class Gate:
    """Views wait here until the test opens it; the test can wait for arrivals.

    Works across threads and event loops (the test's, uvicorn's, the WSGI client's threads).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.arrived = 0
        self.is_open = False
        self._wakeups: list[Callable[[], None]] = []

    def _changed(self) -> None:
        self._cond.notify_all()
        for wakeup in list(self._wakeups):
            wakeup()

    async def _until(self, predicate: Callable[[], bool]) -> None:
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wakeup() -> None:
            loop.call_soon_threadsafe(changed.set)

        with self._cond:
            if predicate():
                return
            self._wakeups.append(wakeup)
        try:
            while True:
                await changed.wait()
                changed.clear()
                with self._cond:
                    if predicate():
                        return
        finally:
            with self._cond:
                self._wakeups.remove(wakeup)

    def _arrive(self) -> None:
        with self._cond:
            self.arrived += 1
            self._changed()

    async def pass_async(self) -> None:
        self._arrive()
        await self._until(lambda: self.is_open)

    def pass_sync(self) -> None:
        self._arrive()
        with self._cond:
            assert self._cond.wait_for(lambda: self.is_open, timeout=30), "gate never opened"

    def open(self) -> None:
        with self._cond:
            self.is_open = True
            self._changed()

    def wait_arrivals(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.arrived >= count, timeout=30), self.arrived

    async def wait_arrivals_async(self, count: int) -> None:
        async with asyncio.timeout(30):
            await self._until(lambda: self.arrived >= count)


class State:
    """What the views saw; reset by the ``middleware_state`` fixture."""

    gate = Gate()
    cleaned_up = threading.Event()
    started = threading.Event()
    threads: dict[str, int] = {}
    log: list[str] = []

    @classmethod
    def reset(cls) -> None:
        cls.gate = Gate()
        cls.cleaned_up = threading.Event()
        cls.started = threading.Event()
        cls.threads = {}
        cls.log = []


def sync_view(request: HttpRequest) -> HttpResponse:
    State.log.append("view")
    return HttpResponse(f"sync {request.GET.get('id', '')}")


async def async_view(request: HttpRequest) -> HttpResponse:
    State.threads["view"] = threading.get_ident()
    State.log.append("view")
    await asyncio.sleep(0)
    return HttpResponse(f"async {request.GET.get('id', '')}")


def failing_view(request: HttpRequest) -> HttpResponse:
    raise ValueError("view failed")


class FixedTemplateResponse(SimpleTemplateResponse):
    """A template response that needs no template engine."""

    @property
    def rendered_content(self) -> str:
        return f"rendered for {self.context_data['who']}"  # type: ignore[index]


def template_view(request: HttpRequest) -> SimpleTemplateResponse:
    return FixedTemplateResponse(None, {"who": "view"})


async def hanging_view(request: HttpRequest) -> HttpResponse:
    """Waits at the gate (forever unless opened); its ``finally`` records the cleanup."""
    State.started.set()
    try:
        await State.gate.pass_async()
        return HttpResponse("finished")
    finally:
        State.cleaned_up.set()


async def stubborn_view(request: HttpRequest) -> HttpResponse:
    """Catches its cancellation and goes on: waits at the gate, or returns at once (``?quick``)."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        State.log.append("cancelled, going on")
        if "quick" not in request.GET:
            await State.gate.pass_async()
    State.cleaned_up.set()
    return HttpResponse("late")


def hanging_sync_view(request: HttpRequest) -> HttpResponse:
    State.started.set()
    try:
        State.gate.pass_sync()
        return HttpResponse("finished")
    finally:
        State.cleaned_up.set()


async def gated_view(request: HttpRequest) -> HttpResponse:
    await State.gate.pass_async()
    return HttpResponse("through the gate")


def gated_sync_view(request: HttpRequest) -> HttpResponse:
    State.gate.pass_sync()
    return HttpResponse("through the gate")


@request_timeout(0.05)
async def short_deadline_view(request: HttpRequest) -> HttpResponse:
    return await hanging_view(request)


@request_timeout(None)
async def no_deadline_view(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0.2)
    return HttpResponse("took its time")


@request_timeout(0.05)
class ShortDeadlineClassView(View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return await hanging_view(request)


@method_decorator(request_timeout(0.05), name="dispatch")
class ShortDeadlineDispatchView(View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return await hanging_view(request)


def _chunks() -> Iterator[bytes]:
    State.log.append("stream started")
    yield b"first,"
    yield b"second"


async def _achunks() -> AsyncIterator[bytes]:
    State.log.append("stream started")
    yield b"first,"
    await asyncio.sleep(0)
    yield b"second"


def streaming_view(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_chunks())


async def async_streaming_view(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_achunks())


async def _gated_chunks() -> AsyncIterator[bytes]:
    yield b"first chunk\n"
    await State.gate.pass_async()
    yield b"last chunk\n"


def file_view(request: HttpRequest) -> FileResponse:
    return FileResponse(io.BytesIO(b"file body"), filename="body.txt")


async def gated_streaming_view(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_gated_chunks())


async def slow_streaming_view(request: HttpRequest) -> StreamingHttpResponse:
    """A body that takes longer than the request timeout: it must not be cut."""

    async def chunks() -> AsyncIterator[bytes]:
        for number in range(3):
            await asyncio.sleep(0.4)
            yield b"chunk %d\n" % number

    return StreamingHttpResponse(chunks())


class RecordingMiddleware(AsyncMiddleware):
    """Plain ``def`` hooks: record the thread they ran on and tag the response."""

    def process_request(self, request: HttpRequest) -> None:
        State.threads["process_request"] = threading.get_ident()
        State.log.append("process_request")
        request.tag = request.GET.get("id", "")  # type: ignore[attr-defined]

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        State.threads["process_view"] = threading.get_ident()
        State.log.append("process_view")

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        State.threads["process_response"] = threading.get_ident()
        State.log.append("process_response")
        response["X-Tag"] = request.tag  # type: ignore[attr-defined]
        return response


class AsyncRecordingMiddleware(AsyncMiddleware):
    """``async def`` hooks that yield to the loop between reading and writing request data."""

    async def process_request(self, request: HttpRequest) -> None:
        State.threads["async process_request"] = threading.get_ident()
        State.log.append("async process_request")
        await asyncio.sleep(0)
        request.async_tag = request.GET.get("id", "")  # type: ignore[attr-defined]

    async def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        State.threads["async process_view"] = threading.get_ident()
        State.log.append("async process_view")

    async def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        State.threads["async process_response"] = threading.get_ident()
        State.log.append("async process_response")
        await asyncio.sleep(0)
        response["X-Async-Tag"] = request.async_tag  # type: ignore[attr-defined]
        return response


class ShortCircuitMiddleware(AsyncMiddleware):
    async def process_request(self, request: HttpRequest) -> HttpResponseBase | None:
        if "stop" in request.GET:
            return HttpResponse("stopped early", status=403)
        return None

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response["X-Seen"] = "yes"
        return response


class ExceptionMiddleware(AsyncMiddleware):
    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse:
        State.log.append(f"process_exception {exception}")
        return HttpResponse("handled", status=418)


class AsyncExceptionMiddleware(AsyncMiddleware):
    async def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse:
        State.log.append(f"async process_exception {exception}")
        await asyncio.sleep(0)
        return HttpResponse("handled async", status=418)


class TemplateResponseMiddleware(AsyncMiddleware):
    def process_template_response(
        self, request: HttpRequest, response: SimpleTemplateResponse
    ) -> SimpleTemplateResponse:
        State.threads["process_template_response"] = threading.get_ident()
        State.log.append("process_template_response")
        response.context_data = {"who": "middleware"}
        return response


class HeaderOnlyMiddleware(AsyncMiddleware):
    """Touches headers of every response, streaming ones included, without reading bodies."""

    async def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response["X-Streaming"] = str(response.streaming)
        return response


class WrongRequestHookMiddleware(AsyncMiddleware):
    def process_request(self, request: HttpRequest) -> str:
        return "not a response"


class NoneResponseHookMiddleware(AsyncMiddleware):
    async def process_response(self, request: HttpRequest, response: HttpResponseBase) -> None:
        return None


class CoroutineFromDefMiddleware(AsyncMiddleware):
    def process_request(self, request: HttpRequest) -> Any:
        return sync_to_async(lambda: None)()
