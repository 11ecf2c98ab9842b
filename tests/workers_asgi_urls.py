"""Views for ``tests/test_workers_asgi.py``: the worker pool through the toolkit's handler."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from tests.models import Item


@dataclass
class State:
    """What the views share with the test that drives them (reset by each test)."""

    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    outcome: list[object] = field(default_factory=list)


state = State()


def reset_state() -> State:
    global state
    state = State()
    return state


async def free(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"free")


def hold(request: HttpRequest) -> HttpResponse:
    """A sync view that keeps its worker until the test releases it."""
    state.holding.set()
    state.release.wait(30)
    return HttpResponse(threading.current_thread().name)


async def orm_once(request: HttpRequest) -> HttpResponse:
    """An async view that makes one thread-sensitive call (an ORM query), and no other."""
    return HttpResponse(str(await Item.objects.acount()))


@csrf_exempt
def read_when_released(request: HttpRequest) -> HttpResponse:
    """A sync view that reads its body only when the test releases it (its request may be gone
    by then); records the body, or the error reading it raised."""
    state.holding.set()
    state.release.wait(30)
    try:
        state.outcome.append(request.body)
    except Exception as error:
        state.outcome.append(error)
    return HttpResponse(b"read")


def queries(request: HttpRequest) -> JsonResponse:
    """How many queries this worker's connection logged before and after one of its own."""
    before = len(connection.queries)
    Item.objects.count()
    return JsonResponse({"before": before, "after": len(connection.queries)})


async def _thread_name() -> str:
    return await sync_to_async(lambda: threading.current_thread().name)()


def nested(request: HttpRequest) -> JsonResponse:
    """A sync view that goes async and back to sync: it must come back to this worker."""
    return JsonResponse(
        {"view": threading.current_thread().name, "nested": async_to_sync(_thread_name)()}
    )


async def leaves_a_task(request: HttpRequest) -> HttpResponse:
    """An async view that leaves a task behind which uses the ORM after the response."""

    async def later() -> tuple[int, str]:
        await state.go.wait()
        count = await Item.objects.acount()
        return count, await _thread_name()

    state.tasks.append(asyncio.create_task(later()))
    await Item.objects.acount()
    return HttpResponse(b"left a task")


async def orm_then_stream(request: HttpRequest) -> StreamingHttpResponse:
    """An async view that uses the ORM, then streams until the test says stop."""
    count = await Item.objects.acount()

    async def body() -> AsyncIterator[bytes]:
        yield f"{count}:".encode()
        await state.go.wait()
        yield (await _thread_name()).encode()

    return StreamingHttpResponse(body())


urlpatterns = [
    path("free/", free),
    path("orm-once/", orm_once),
    path("read-when-released/", read_when_released),
    path("hold/", hold),
    path("queries/", queries),
    path("nested/", nested),
    path("leaves-a-task/", leaves_a_task),
    path("orm-then-stream/", orm_then_stream),
]
