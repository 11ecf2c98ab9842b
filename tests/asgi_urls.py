"""Views and URLconf for the ASGI handler tests (``tests/test_asgi*.py``).

Views that wait use the events in :data:`state`, which each test resets through the
``asgi_state`` fixture of ``tests/test_asgi.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connections
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.urls import path

from tests.models import Item


@dataclass
class State:
    """What the waiting views share with the test that drives them."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    wrappers: list[Any] = field(default_factory=list)
    file_path: Path | None = None


state = State()


def reset_state(file_path: Path | None = None) -> State:
    """Fresh events for the running loop."""
    global state
    state = State(file_path=file_path)
    return state


async def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"plain", content_type="text/plain")


async def echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body, content_type="application/octet-stream")


def sync_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(threading.current_thread().name)


def sync_orm(request: HttpRequest) -> HttpResponse:
    state.wrappers.append(connections["default"])
    return HttpResponse(str(Item.objects.count()))


async def orm(request: HttpRequest) -> HttpResponse:
    count = await Item.objects.acount()
    state.wrappers.append(await _current_wrapper())
    return HttpResponse(str(count))


async def _current_wrapper() -> Any:
    from asgiref.sync import sync_to_async

    return await sync_to_async(lambda: connections["default"])()


async def wait(request: HttpRequest) -> HttpResponse:
    """Waits until the test releases it; records its cancellation."""
    state.started.set()
    try:
        await state.release.wait()
    except asyncio.CancelledError:
        state.cancelled.set()
        raise
    return HttpResponse(b"released")


async def orm_then_wait(request: HttpRequest) -> HttpResponse:
    """Opens a connection on the request's thread, then waits like :func:`wait`."""
    await Item.objects.acount()
    state.wrappers.append(await _current_wrapper())
    return await wait(request)


async def stream_async(request: HttpRequest) -> StreamingHttpResponse:
    async def parts() -> AsyncIterator[bytes]:
        yield b"first,"
        await asyncio.sleep(0)
        yield b"second"

    return StreamingHttpResponse(parts())


async def stream_until_released(request: HttpRequest) -> StreamingHttpResponse:
    async def parts() -> AsyncIterator[bytes]:
        yield b"first,"
        state.started.set()
        await state.release.wait()
        yield b"second"

    return StreamingHttpResponse(parts())


async def stream_forever(request: HttpRequest) -> StreamingHttpResponse:
    """Streams until the client goes away (paced, so a disconnect is noticed between parts)."""

    async def parts() -> AsyncIterator[bytes]:
        while True:
            yield b"tick\n"
            await asyncio.sleep(0.01)

    return StreamingHttpResponse(parts())


def stream_sync(request: HttpRequest) -> StreamingHttpResponse:
    def parts() -> Iterator[bytes]:
        yield b"sync-first,"
        yield b"sync-second"

    return StreamingHttpResponse(parts())


async def file(request: HttpRequest) -> FileResponse:
    assert state.file_path is not None
    return FileResponse(state.file_path.open("rb"))


async def cookie(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(b"cookie")
    response.set_cookie("flavour", "oat", httponly=True)
    return response


async def swallow_cancellation(request: HttpRequest) -> HttpResponse:
    """Answers even when cancelled (a view may handle its cancellation)."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(60)
    return HttpResponse(b"answered after cancellation")


class ClosingResponse(HttpResponse):
    """A response whose own ``close()`` must run (as Django runs it: on the request's thread)."""

    closed_on: list[str] = []

    def close(self) -> None:
        self.closed_on.append(threading.current_thread().name)
        super().close()


async def custom_close(request: HttpRequest) -> HttpResponseBase:
    return ClosingResponse(b"custom")


urlpatterns = [
    path("plain/", plain),
    path("echo/", echo),
    path("sync/", sync_view),
    path("orm/", orm),
    path("sync-orm/", sync_orm),
    path("wait/", wait),
    path("orm-wait/", orm_then_wait),
    path("stream-async/", stream_async),
    path("stream-wait/", stream_until_released),
    path("stream-sync/", stream_sync),
    path("stream-forever/", stream_forever),
    path("file/", file),
    path("custom-close/", custom_close),
    path("cookie/", cookie),
    path("swallow-cancellation/", swallow_cancellation),
]
