"""``ConcurrencyLimitMiddleware``: both paths, direct units, a real server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import django
import httpx
import pytest
from django.core.asgi import get_asgi_application
from django.core.signals import request_finished
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.test import AsyncClient, Client, RequestFactory
from pytest_django.fixtures import Settings as SettingsWrapper

from django_async_toolkit.middleware import ConcurrencyLimitMiddleware
from django_async_toolkit.middleware import concurrency as mw
from tests.hanging import cancel_and_check, start_never_answering
from tests.middleware_views import State
from tests.servers import serve_asgi

pytestmark = pytest.mark.urls("tests.middleware_urls")

LIMIT = "django_async_toolkit.middleware.ConcurrencyLimitMiddleware"


@pytest.fixture(autouse=True)
def middleware_state(settings: SettingsWrapper) -> Iterator[None]:
    State.reset()
    settings.MIDDLEWARE = [LIMIT]
    settings.ASYNC_TOOLKIT_CONCURRENCY_WAIT = 0
    yield
    State.gate.open()
    assert ConcurrencyLimitMiddleware.in_flight() == 0
    assert ConcurrencyLimitMiddleware.waiting() == 0


def close_like_the_test_client(response: HttpResponseBase) -> None:
    """Close ``response`` as Django's test client does: without ``close_old_connections``.

    ``request_finished`` runs ``close_old_connections``, which checks the connection a previous
    test left open in this thread, and pytest-django forbids that database access in a test
    without the ``django_db`` mark; the test client disconnects it for the same reason.
    """
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def wait_until(predicate: Callable[[], bool]) -> None:
    """Wait for a condition that another thread makes true (checked, not slept on)."""
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.001)


async def await_until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not predicate():
            await asyncio.sleep(0)


def assert_rejected(response: HttpResponseBase, retry_after: str = "1") -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == retry_after
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.startswith(b"Service Unavailable")  # type: ignore[attr-defined]


# Async path


async def test_no_limit_by_default(async_client: AsyncClient) -> None:
    response = await async_client.get("/async/")
    assert response.status_code == 200
    assert ConcurrencyLimitMiddleware.in_flight() == 0


async def test_over_the_limit_is_rejected(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 2
    settings.ASYNC_TOOLKIT_RETRY_AFTER = 7
    held = [asyncio.ensure_future(async_client.get("/gated/")) for _ in range(2)]
    await State.gate.wait_arrivals_async(2)
    assert ConcurrencyLimitMiddleware.in_flight() == 2
    assert_rejected(await async_client.get("/async/"), "7")
    State.gate.open()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
    assert ConcurrencyLimitMiddleware.in_flight() == 0
    assert (await async_client.get("/async/")).status_code == 200


async def test_waiter_gets_the_released_slot(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    settings.ASYNC_TOOLKIT_CONCURRENCY_WAIT = 30
    first = asyncio.ensure_future(async_client.get("/gated/"))
    await State.gate.wait_arrivals_async(1)
    second = asyncio.ensure_future(async_client.get("/async/"))
    await await_until(lambda: ConcurrencyLimitMiddleware.waiting() == 1)
    State.gate.open()
    assert (await first).status_code == 200
    assert (await second).status_code == 200


async def test_wait_runs_out(async_client: AsyncClient, settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    settings.ASYNC_TOOLKIT_CONCURRENCY_WAIT = 0.05
    first = asyncio.ensure_future(async_client.get("/gated/"))
    await State.gate.wait_arrivals_async(1)
    assert_rejected(await async_client.get("/async/"))
    assert ConcurrencyLimitMiddleware.waiting() == 0
    State.gate.open()
    assert (await first).status_code == 200


async def test_errors_release_the_slot(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    async_client.raise_request_exception = False  # type: ignore[attr-defined]
    response = await async_client.get("/fail/")
    assert response.status_code == 500
    assert ConcurrencyLimitMiddleware.in_flight() == 0


async def test_async_streaming_holds_the_slot_until_the_body_ends(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    response = await async_client.get("/astream/")
    assert ConcurrencyLimitMiddleware.in_flight() == 1
    assert_rejected(await async_client.get("/async/"))
    chunks = [chunk async for chunk in response.streaming_content]  # type: ignore[union-attr]
    assert b"".join(chunks) == b"first,second"
    assert ConcurrencyLimitMiddleware.in_flight() == 0


async def test_async_streaming_closed_early_releases(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    response = await async_client.get("/astream/")
    assert ConcurrencyLimitMiddleware.in_flight() == 1
    close_like_the_test_client(response)  # what the server does when the client goes away
    assert ConcurrencyLimitMiddleware.in_flight() == 0


async def test_cancelled_request_releases_its_slot(settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    task = await start_never_answering(ConcurrencyLimitMiddleware)
    assert ConcurrencyLimitMiddleware.in_flight() == 1
    await cancel_and_check(task)
    assert ConcurrencyLimitMiddleware.in_flight() == 0


async def test_cancelled_waiter_leaves_the_queue(settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    settings.ASYNC_TOOLKIT_CONCURRENCY_WAIT = 30
    entered = asyncio.Event()
    release = asyncio.Event()

    async def get_response(request: HttpRequest) -> HttpResponse:
        entered.set()
        await release.wait()
        return HttpResponse("done")

    middleware = ConcurrencyLimitMiddleware(get_response)
    first = asyncio.ensure_future(middleware(RequestFactory().get("/")))  # type: ignore[arg-type]
    await entered.wait()
    second = asyncio.ensure_future(middleware(RequestFactory().get("/")))  # type: ignore[arg-type]
    await await_until(lambda: ConcurrencyLimitMiddleware.waiting() == 1)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert ConcurrencyLimitMiddleware.waiting() == 0
    release.set()
    assert (await first).status_code == 200


async def test_cancelled_after_being_granted_passes_the_slot_on() -> None:
    """A waiter cancelled in the instant it was handed a slot gives the slot back."""
    limiter = mw._Limiter()
    slot = limiter.acquire(1, 0)
    assert slot is not None
    waiter_task = asyncio.ensure_future(limiter.acquire_async(1, 30))
    await await_until(lambda: limiter.waiting == 1)
    slot.release()  # grants the slot to the waiter; its wake-up is scheduled, not yet run
    waiter_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter_task
    assert limiter.in_flight == 0
    assert limiter.waiting == 0


def test_waiter_on_a_closed_loop_is_skipped() -> None:
    limiter = mw._Limiter()
    slot = limiter.acquire(1, 0)
    assert slot is not None
    loop = asyncio.new_event_loop()
    dead = mw._TaskWaiter(1, loop)
    loop.close()
    limiter._waiters.append(dead)
    slot.release()
    assert limiter.in_flight == 0
    assert not dead.granted
    assert limiter.waiting == 0


def test_lowered_limit_is_respected_on_release() -> None:
    limiter = mw._Limiter()
    slots = [limiter.acquire(2, 0) for _ in range(2)]
    waiter = mw._ThreadWaiter(1)  # queued under a new limit of 1
    limiter._waiters.append(waiter)
    slots[0].release()  # type: ignore[union-attr]
    assert not waiter.granted  # one request is still in flight: the limit of 1 is full
    slots[1].release()  # type: ignore[union-attr]
    assert waiter.granted
    assert limiter.in_flight == 1


def test_release_twice_is_harmless() -> None:
    limiter = mw._Limiter()
    slot = limiter.acquire(1, 0)
    assert slot is not None
    slot.release()
    slot.release()
    assert limiter.in_flight == 0


# Sync path


def test_sync_path_no_limit(client: Client) -> None:
    assert client.get("/sync/").status_code == 200


def run_in_thread(path: str, results: list[HttpResponseBase]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(Client().get(path)))
    thread.start()
    return thread


def test_sync_path_over_the_limit_is_rejected(client: Client, settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    results: list[HttpResponseBase] = []
    thread = run_in_thread("/gated-sync/", results)
    State.gate.wait_arrivals(1)
    assert ConcurrencyLimitMiddleware.in_flight() == 1
    assert_rejected(client.get("/sync/"))
    State.gate.open()
    thread.join(timeout=30)
    assert results[0].status_code == 200
    assert ConcurrencyLimitMiddleware.in_flight() == 0


def test_sync_path_waiter_gets_the_released_slot(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    settings.ASYNC_TOOLKIT_CONCURRENCY_WAIT = 30
    first: list[HttpResponseBase] = []
    second: list[HttpResponseBase] = []
    first_thread = run_in_thread("/gated-sync/", first)
    State.gate.wait_arrivals(1)
    second_thread = run_in_thread("/sync/", second)
    wait_until(lambda: ConcurrencyLimitMiddleware.waiting() == 1)
    State.gate.open()
    first_thread.join(timeout=30)
    second_thread.join(timeout=30)
    assert first[0].status_code == 200
    assert second[0].status_code == 200


def test_sync_path_wait_runs_out(client: Client, settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    settings.ASYNC_TOOLKIT_CONCURRENCY_WAIT = 0.05
    results: list[HttpResponseBase] = []
    thread = run_in_thread("/gated-sync/", results)
    State.gate.wait_arrivals(1)
    assert_rejected(client.get("/sync/"))
    assert ConcurrencyLimitMiddleware.waiting() == 0
    State.gate.open()
    thread.join(timeout=30)


def test_sync_path_errors_release_the_slot(client: Client, settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    client.raise_request_exception = False
    assert client.get("/fail/").status_code == 500
    assert ConcurrencyLimitMiddleware.in_flight() == 0


def test_sync_streaming_holds_the_slot_until_the_body_ends(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    response = client.get("/stream/")
    assert ConcurrencyLimitMiddleware.in_flight() == 1
    assert_rejected(client.get("/sync/"))
    assert b"".join(response.streaming_content) == b"first,second"  # type: ignore[arg-type]
    assert ConcurrencyLimitMiddleware.in_flight() == 0


def test_sync_streaming_closed_early_releases(client: Client, settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    response = client.get("/stream/")
    assert ConcurrencyLimitMiddleware.in_flight() == 1
    close_like_the_test_client(response)
    assert ConcurrencyLimitMiddleware.in_flight() == 0


def test_file_response_keeps_its_file_and_holds_the_slot_until_closed(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    from tests.middleware_views import file_view

    direct = ConcurrencyLimitMiddleware(file_view)(RequestFactory().get("/"))
    # Still a file for the server (wsgi.file_wrapper / sendfile), and the slot is held.
    assert direct.file_to_stream is not None  # type: ignore[union-attr]
    assert ConcurrencyLimitMiddleware.in_flight() == 1
    close_like_the_test_client(direct)
    assert ConcurrencyLimitMiddleware.in_flight() == 0

    response = client.get("/file/")
    assert ConcurrencyLimitMiddleware.in_flight() == 1
    assert b"".join(response.streaming_content) == b"file body"  # type: ignore[arg-type]
    assert ConcurrencyLimitMiddleware.in_flight() == 0


async def test_file_response_async_path(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    response = await async_client.get("/file/")
    assert ConcurrencyLimitMiddleware.in_flight() == 1
    assert b"".join(response.streaming_content) == b"file body"  # type: ignore[arg-type]
    assert ConcurrencyLimitMiddleware.in_flight() == 0


def test_sync_exception_releases_the_slot(settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1

    def raises(request: HttpRequest) -> HttpResponse:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ConcurrencyLimitMiddleware(raises)(RequestFactory().get("/"))
    assert ConcurrencyLimitMiddleware.in_flight() == 0


def test_sync_streaming_error_releases(settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1

    def broken() -> Iterator[bytes]:
        yield b"one"
        raise ValueError("broken body")

    response = ConcurrencyLimitMiddleware(lambda request: StreamingHttpResponse(broken()))(
        RequestFactory().get("/")
    )
    assert ConcurrencyLimitMiddleware.in_flight() == 1
    with pytest.raises(ValueError, match="broken body"):
        list(response)  # type: ignore[call-overload]
    assert ConcurrencyLimitMiddleware.in_flight() == 0


async def test_one_limit_for_both_modes_in_one_process(settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    settings.ASYNC_TOOLKIT_CONCURRENCY_WAIT = 30
    entered = threading.Event()
    release = threading.Event()

    def blocking_view(request: HttpRequest) -> HttpResponse:
        entered.set()
        release.wait(timeout=30)
        return HttpResponse("sync done")

    sync_middleware = ConcurrencyLimitMiddleware(blocking_view)
    results: list[HttpResponseBase] = []
    thread = threading.Thread(
        target=lambda: results.append(sync_middleware(RequestFactory().get("/")))  # type: ignore[arg-type]
    )
    thread.start()
    await asyncio.to_thread(entered.wait, 30)

    async def async_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("async done")

    async_middleware = ConcurrencyLimitMiddleware(async_view)
    waiting = asyncio.ensure_future(async_middleware(RequestFactory().get("/")))  # type: ignore[arg-type]
    await await_until(lambda: ConcurrencyLimitMiddleware.waiting() == 1)
    release.set()  # the sync request ends on its thread and hands its slot to the task
    response = await waiting
    assert response.content == b"async done"
    await asyncio.to_thread(thread.join, 30)
    assert results[0].content == b"sync done"  # type: ignore[attr-defined]


# A real server


async def test_real_server_n_plus_one_requests(settings: SettingsWrapper) -> None:
    limit = 4
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = limit
    with serve_asgi(get_asgi_application()) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            held = [asyncio.ensure_future(http.get("/gated/")) for _ in range(limit)]
            await State.gate.wait_arrivals_async(limit)
            extra = await http.get("/async/")
            assert extra.status_code == 503
            assert extra.headers["Retry-After"] == "1"
            State.gate.open()
            statuses = [response.status_code for response in await asyncio.gather(*held)]
            assert statuses == [200] * limit
            assert ConcurrencyLimitMiddleware.in_flight() == 0
            assert (await http.get("/async/")).status_code == 200
    assert ConcurrencyLimitMiddleware.in_flight() == 0


@pytest.mark.skipif(
    django.VERSION < (5, 0),
    reason="Django 4.2's ASGI handler keeps iterating a body after the client has gone",
)
def test_real_server_client_disconnect_during_stream_releases(settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    with serve_asgi(get_asgi_application()) as url:
        # Leaving the block closes the connection mid-body.
        with (
            httpx.Client(base_url=url, timeout=30) as http,
            http.stream("GET", "/gated-stream/") as response,
        ):
            body = response.iter_raw()  # kept referenced: dropping it would close the stream
            assert next(body) == b"first chunk\n"
            assert ConcurrencyLimitMiddleware.in_flight() == 1
        wait_until(lambda: ConcurrencyLimitMiddleware.in_flight() == 0)


def test_real_server_stream_to_the_end_releases(settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 1
    with serve_asgi(get_asgi_application()) as url:
        State.gate.open()
        response = httpx.get(url + "/gated-stream/", timeout=30)
        assert response.text == "first chunk\nlast chunk\n"
        wait_until(lambda: ConcurrencyLimitMiddleware.in_flight() == 0)
