"""The toolkit's ASGI handler, driven directly: Django's behaviour, without needless hops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from pathlib import Path
from typing import Any

import django
import pytest
from asgiref.sync import ThreadSensitiveContext, async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.core.signals import request_finished, request_started
from django.db import connections
from django.test import override_settings

from django_async_toolkit import _compat
from django_async_toolkit.asgi import ASGIHandler, get_asgi_application
from tests import asgi_urls
from tests.asgi_helpers import (
    TIMEOUT,
    CloseSpy,
    ExecutorCounter,
    call,
    http_scope,
    read_response,
    receivers,
    settle_pool,
)

pytestmark = pytest.mark.urls("tests.asgi_urls")

listens_for_disconnect = pytest.mark.skipif(
    django.VERSION < (5, 0), reason="Django 4.2's handler does not listen for a disconnect"
)
has_asend = pytest.mark.skipif(
    django.VERSION < (5, 0), reason="Django 4.2 calls async receivers synchronously"
)


@pytest.fixture
def state(tmp_path: Path) -> asgi_urls.State:
    file_path = tmp_path / "served.txt"
    file_path.write_bytes(b"file contents " * 1000)
    return asgi_urls.reset_state(file_path)


@pytest.fixture
def executors(monkeypatch: pytest.MonkeyPatch) -> ExecutorCounter:
    return ExecutorCounter(monkeypatch)


@pytest.fixture
def close_spy(monkeypatch: pytest.MonkeyPatch) -> Any:
    spy = CloseSpy(monkeypatch)
    yield spy
    spy.stop()


def test_get_asgi_application() -> None:
    app = get_asgi_application()
    assert isinstance(app, ASGIHandler)
    assert isinstance(app, DjangoASGIHandler)


# --- the hop count --------------------------------------------------------------------------


async def test_db_free_async_view_creates_no_thread(
    executors: ExecutorCounter, state: asgi_urls.State
) -> None:
    with receivers(sync=False) if _compat.HAS_SIGNAL_ASEND else _no_receivers() as log:
        response = await call(ASGIHandler(), "/plain/")
    assert response.status == 200
    assert response.body == b"plain"
    assert executors.created == 0
    if log is not None:
        # Async receivers run on the loop, once each.
        assert len(log.started) == len(log.finished) == 1
        assert log.finished[0]["thread"] == threading.current_thread().name


async def test_stock_handler_creates_a_thread_for_the_same_view(
    executors: ExecutorCounter, state: asgi_urls.State
) -> None:
    # What the previous test saves: Django's handler creates the request's thread anyway.
    response = await call(DjangoASGIHandler(), "/plain/")
    assert response.status == 200
    assert executors.created == 1


@pytest.mark.django_db(transaction=True)
async def test_orm_view_connection_closed_at_end(
    executors: ExecutorCounter, close_spy: Any, state: asgi_urls.State
) -> None:
    response = await call(ASGIHandler(), "/orm/")
    assert response.body == b"0"
    assert executors.created == 1
    await settle_pool()
    (wrapper,) = state.wrappers
    assert wrapper in close_spy.opened
    assert close_spy.left_open == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("max_age", "health_checks"), [(0, False), (60, True), (None, False)], ids=str
)
@pytest.mark.parametrize("path", ["/orm/", "/sync-orm/"])
async def test_connection_handling_matches_django(
    monkeypatch: pytest.MonkeyPatch,
    state: asgi_urls.State,
    path: str,
    max_age: int | None,
    health_checks: bool,
) -> None:
    """Same opens and closes as Django's handler, for each CONN_MAX_AGE setting."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", max_age)
    monkeypatch.setitem(connections.settings["default"], "CONN_HEALTH_CHECKS", health_checks)
    outcomes = []
    for handler_class in (DjangoASGIHandler, ASGIHandler):
        spy = CloseSpy(monkeypatch)
        try:
            await call(handler_class(), path)
            await settle_pool()
        finally:
            spy.stop()
        outcomes.append((len(spy.opened), len(spy.left_open)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0] == 1
    assert outcomes[1][1] == (0 if max_age == 0 else 1)


# --- request_finished: once per request, on every path ---------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/plain/", b"plain"),
        ("/stream-async/", b"first,second"),
        ("/stream-sync/", b"sync-first,sync-second"),
        ("/sync/", None),
        ("/custom-close/", b"custom"),
        ("/file/", b"file contents " * 1000),
    ],
)
@pytest.mark.parametrize("sync", [True, False], ids=["sync-receiver", "async-receiver"])
async def test_request_signals_sent_once(
    state: asgi_urls.State, path: str, expected: bytes | None, sync: bool
) -> None:
    if not sync and not _compat.HAS_SIGNAL_ASEND:
        pytest.skip("Django 4.2 calls async receivers synchronously")
    with receivers(sync=sync) as log, _sync_iterator_warning(path):
        response = await call(ASGIHandler(), path)
    assert response.status == 200
    if expected is not None:
        assert response.body == expected
    assert len(log.started) == 1
    assert len(log.finished) == 1
    assert log.finished[0]["sender"] is ASGIHandler
    if sync:
        # A sync receiver runs on the request's thread, both times (as in Django).
        assert log.started[0]["thread"] == log.finished[0]["thread"]
        assert log.started[0]["thread"] != threading.current_thread().name


def _sync_iterator_warning(path: str) -> Any:
    if path not in ("/stream-sync/", "/file/"):
        return contextlib.nullcontext()
    return pytest.warns(Warning, match="must consume synchronous iterators")


async def test_request_body_in_chunks(state: asgi_urls.State) -> None:
    chunks = [b"a" * 1000, b"b" * 1000, b"c"]
    response = await call(ASGIHandler(), "/echo/", method="POST", body_chunks=chunks)
    assert response.body == b"".join(chunks)


@override_settings(FILE_UPLOAD_MAX_MEMORY_SIZE=100)
async def test_request_body_rolled_to_disk(state: asgi_urls.State) -> None:
    chunks = [b"x" * 80, b"y" * 80, b"z" * 80]
    response = await call(ASGIHandler(), "/echo/", method="POST", body_chunks=chunks)
    assert response.body == b"".join(chunks)


async def test_bad_request_is_answered_and_finished(
    state: asgi_urls.State, executors: ExecutorCounter
) -> None:
    with receivers(sync=False) if _compat.HAS_SIGNAL_ASEND else _no_receivers() as log:
        response = await call(ASGIHandler(), "/plain/", query_string=b"\xff\xfe=1")
    assert response.status == 400
    assert executors.created == 0
    if log is not None:
        assert len(log.started) == len(log.finished) == 1
        assert log.finished[0]["sender"] is None  # As Django: the error response has no handler.


async def test_streaming_response_finishes_when_its_body_ends(state: asgi_urls.State) -> None:
    with receivers(sync=True) as log:
        communicator = ApplicationCommunicator(ASGIHandler(), http_scope("/stream-wait/"))
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(TIMEOUT)
        assert start["status"] == 200
        first = await communicator.receive_output(TIMEOUT)
        assert first["body"] == b"first,"
        await state.started.wait()
        assert log.finished == []
        state.release.set()
        second = await communicator.receive_output(TIMEOUT)
        assert second["body"] == b"second"
        end = await communicator.receive_output(TIMEOUT)
        assert end.get("more_body", False) is False
        await communicator.wait(TIMEOUT)
    assert len(log.finished) == 1


async def test_disconnect_before_body_ends_sends_nothing(state: asgi_urls.State) -> None:
    with receivers(sync=True) as log:
        communicator = ApplicationCommunicator(ASGIHandler(), http_scope("/echo/", method="POST"))
        await communicator.send_input({"type": "http.request", "body": b"part", "more_body": True})
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(TIMEOUT)
        assert await communicator.receive_nothing()
    # As in Django: the request never started, so neither signal is sent.
    assert log.started == log.finished == []


async def _disconnect_while_waiting(path: str, state: asgi_urls.State) -> None:
    communicator = ApplicationCommunicator(ASGIHandler(), http_scope(path))
    await communicator.send_input({"type": "http.request", "body": b""})
    await asyncio.wait_for(state.started.wait(), TIMEOUT)
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(TIMEOUT)
    assert state.cancelled.is_set()


@listens_for_disconnect
@pytest.mark.parametrize("sync", [True, False], ids=["sync-receiver", "async-receiver"])
async def test_disconnect_cancels_view_and_finishes_once(
    state: asgi_urls.State, executors: ExecutorCounter, sync: bool
) -> None:
    with receivers(sync=sync) as log:
        await _disconnect_while_waiting("/wait/", state)
    assert len(log.started) == len(log.finished) == 1
    assert log.finished[0]["sender"] is ASGIHandler
    assert executors.created == (1 if sync else 0)


@listens_for_disconnect
@pytest.mark.django_db(transaction=True)
async def test_disconnect_after_orm_closes_the_connection(
    state: asgi_urls.State, close_spy: Any
) -> None:
    await _disconnect_while_waiting("/orm-wait/", state)
    await settle_pool()
    (wrapper,) = state.wrappers
    assert wrapper in close_spy.opened
    assert close_spy.left_open == []


@listens_for_disconnect
async def test_disconnect_during_streaming_finishes_once(state: asgi_urls.State) -> None:
    with receivers(sync=False) if _compat.HAS_SIGNAL_ASEND else _no_receivers() as log:
        communicator = ApplicationCommunicator(ASGIHandler(), http_scope("/stream-wait/"))
        await communicator.send_input({"type": "http.request", "body": b""})
        await communicator.receive_output(TIMEOUT)
        await communicator.receive_output(TIMEOUT)
        await asyncio.wait_for(state.started.wait(), TIMEOUT)
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(TIMEOUT)
    assert log is not None
    assert len(log.finished) == 1


async def test_cookies_and_headers_sent(state: asgi_urls.State) -> None:
    response = await call(ASGIHandler(), "/cookie/")
    assert (b"Content-Type", b"text/html; charset=utf-8") in response.headers
    cookies = [value for name, value in response.headers if name == b"Set-Cookie"]
    assert len(cookies) == 1
    assert cookies[0].startswith(b"flavour=oat;")
    assert b"HttpOnly" in cookies[0]


@has_asend
@pytest.mark.parametrize("failures", [1, 2])
async def test_async_receiver_errors_propagate_as_in_django(
    state: asgi_urls.State, failures: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Django 5.x does not close the request body's file when request_started fails: keep them
    # to close them here, rather than leave them to the garbage collector (which warns).
    body_files: list[Any] = []
    read_body = DjangoASGIHandler.read_body

    async def kept_read_body(self: DjangoASGIHandler, receive: Any) -> Any:
        body_files.append(await read_body(self, receive))
        return body_files[-1]

    monkeypatch.setattr(DjangoASGIHandler, "read_body", kept_read_body)

    async def failing(**kwargs: Any) -> None:
        raise LookupError("receiver failed")

    connected = [_fresh(failing) for _ in range(failures)]
    for receiver in connected:
        request_started.connect(receiver, weak=False)
    raised = []
    try:
        for handler_class in (DjangoASGIHandler, ASGIHandler):
            with pytest.raises(BaseException) as caught:
                await call(handler_class(), "/plain/")
            raised.append(type(caught.value))
    finally:
        for receiver in connected:
            request_started.disconnect(receiver)
        for body_file in body_files:
            body_file.close()
    # One failure is raised as itself; several as a group on 6.1 (TaskGroup), the first on 5.x.
    several = failures > 1 and _compat.SIGNAL_ASEND_TASKGROUP
    assert raised == [ExceptionGroup if several else LookupError] * 2


def _fresh(func: Any) -> Any:
    """A distinct function object (a receiver is connected once per identity)."""

    async def receiver(**kwargs: Any) -> None:
        await func(**kwargs)

    return receiver


@pytest.mark.skipif(django.VERSION >= (5, 0), reason="Django 5.0+ awaits async receivers")
@pytest.mark.parametrize("signals", [("started", "finished"), ("finished",)])
async def test_django42_calls_marked_async_receivers_synchronously(
    state: asgi_urls.State, executors: ExecutorCounter, signals: tuple[str, ...]
) -> None:
    from asgiref.sync import markcoroutinefunction

    calls: list[str] = []

    def receiver(**kwargs: Any) -> None:
        calls.append(threading.current_thread().name)

    markcoroutinefunction(receiver)
    connected = [{"started": request_started, "finished": request_finished}[s] for s in signals]
    for signal in connected:
        signal.connect(receiver, weak=False)
    try:
        await call(ASGIHandler(), "/plain/")
    finally:
        for signal in connected:
            signal.disconnect(receiver)
    # Django 4.2 calls every receiver synchronously, on the request's thread: so do we.
    assert len(calls) == len(signals)
    assert threading.current_thread().name not in calls
    assert executors.created == 1


@pytest.mark.skipif(django.VERSION < (6, 1), reason="Django 6.1's handler uses a TaskGroup")
async def test_several_failures_in_the_task_group_raise_as_in_django(
    state: asgi_urls.State,
) -> None:
    """A bad message makes the disconnect listener fail while the view still answers, and the
    server's send() fails: Django raises both, as an ExceptionGroup; so do we."""
    outcomes = []
    for handler_class in (DjangoASGIHandler, ASGIHandler):
        messages = [{"type": "http.request", "body": b""}, {"type": "http.request"}]

        async def receive(messages: list[dict[str, Any]] = messages) -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            return await asyncio.Future()

        async def send(message: Any) -> None:
            raise OSError("connection lost")

        with pytest.raises(BaseExceptionGroup) as caught:
            await handler_class()(http_scope("/swallow-cancellation/"), receive, send)
        outcomes.append(sorted(type(error).__name__ for error in caught.value.exceptions))
    assert outcomes[0] == outcomes[1] == ["AssertionError", "OSError"]


async def test_requests_leave_no_cyclic_garbage(state: asgi_urls.State) -> None:
    """Serving a request leaves nothing for the cyclic garbage collector, whose full collections
    cost a large process milliseconds. (Django 6.1's handle() creates an exception class, always
    a reference cycle, for every request: the stock row shows the test can fail.)"""
    requests = 40
    garbage = {}
    for name, handler in [("stock", DjangoASGIHandler()), ("toolkit", ASGIHandler())]:
        await call(handler, "/plain/")  # first-request set-up out of the count
        gc.collect()
        gc.disable()
        try:
            for _ in range(requests):
                response = await call(handler, "/plain/")
                assert response.status == 200
            garbage[name] = gc.collect()
        finally:
            gc.enable()
    assert garbage["toolkit"] < requests, garbage
    if _compat.ASGI_HANDLE_TASKGROUP:
        assert garbage["stock"] >= requests, garbage


# --- when the hop is still needed ------------------------------------------------------------


async def test_custom_close_runs_on_the_request_thread(state: asgi_urls.State) -> None:
    asgi_urls.ClosingResponse.closed_on.clear()
    await call(ASGIHandler(), "/custom-close/")
    (thread_name,) = asgi_urls.ClosingResponse.closed_on
    assert thread_name != threading.current_thread().name


class ClosingCache(LocMemCache):
    """A cache whose ``close()`` does something, like memcached's."""

    closed_on: list[str] = []

    def close(self, **kwargs: Any) -> None:
        self.closed_on.append(threading.current_thread().name)


@override_settings(
    CACHES={"default": {"BACKEND": "tests.test_asgi.ClosingCache", "LOCATION": "asgi-tests"}}
)
async def test_cache_with_real_close_is_closed_on_a_thread(
    state: asgi_urls.State, executors: ExecutorCounter
) -> None:
    ClosingCache.closed_on.clear()
    caches["default"].get("warm")  # Created in the server's context: inherited by the request.
    await call(ASGIHandler(), "/plain/")
    (thread_name,) = ClosingCache.closed_on
    assert thread_name != threading.current_thread().name
    assert executors.created == 1


async def test_locmem_cache_costs_no_thread(
    state: asgi_urls.State, executors: ExecutorCounter
) -> None:
    caches["default"].get("warm")
    await call(ASGIHandler(), "/plain/")
    assert executors.created == 0


async def test_url_conf_reset_at_the_end(state: asgi_urls.State) -> None:
    from django.urls import get_urlconf, set_urlconf

    set_urlconf("tests.urls")
    try:
        # The request runs in a copy of this context; reset_urlconf runs there, not here.
        await call(ASGIHandler(), "/plain/")
        assert get_urlconf() == "tests.urls"
    finally:
        set_urlconf(None)


async def test_falls_back_to_django_path_when_asgiref_differs(
    monkeypatch: pytest.MonkeyPatch, state: asgi_urls.State, executors: ExecutorCounter
) -> None:
    monkeypatch.setattr(_compat, "thread_sensitive_thread_exists", lambda: True)
    with receivers(sync=True) as log:
        await call(ASGIHandler(), "/plain/")
    assert executors.created == 1
    assert len(log.finished) == 1


def test_probe_reads_the_installed_asgiref() -> None:
    seen: dict[str, bool] = {}

    async def in_a_request() -> None:
        async with ThreadSensitiveContext():
            seen["before"] = _compat.thread_sensitive_thread_exists()
            await sync_to_async(lambda: None)()
            seen["after"] = _compat.thread_sensitive_thread_exists()
        seen["outside"] = _compat.thread_sensitive_thread_exists()

    asyncio.run(in_a_request())
    assert seen == {"before": False, "after": True, "outside": True}


def test_probe_sees_a_parent_sync_thread() -> None:
    async def child() -> bool:
        async with ThreadSensitiveContext():
            return _compat.thread_sensitive_thread_exists()

    # Under async_to_sync, thread-sensitive work goes back to the calling thread: it exists.
    assert async_to_sync(child)() is True


@pytest.mark.parametrize(
    "attribute",
    ["thread_sensitive_context", "context_to_thread_executor"],
)
def test_probe_answers_yes_when_asgiref_internals_differ(
    monkeypatch: pytest.MonkeyPatch, attribute: str
) -> None:
    import asgiref.sync

    monkeypatch.setattr(asgiref.sync.SyncToAsync, attribute, None)
    assert _compat.thread_sensitive_thread_exists() is True


# --- other scopes ----------------------------------------------------------------------------


async def test_websocket_scope_rejected_as_django_does() -> None:
    scope = {"type": "websocket", "path": "/"}
    with pytest.raises(ValueError) as ours:
        await ASGIHandler()(scope, _never_receive, _never_send)
    with pytest.raises(ValueError) as djangos:
        await DjangoASGIHandler()(scope, _never_receive, _never_send)
    assert str(ours.value) == str(djangos.value)


async def _never_receive() -> dict[str, Any]:
    raise AssertionError("not expected")


async def _never_send(message: Any) -> None:
    raise AssertionError("not expected")


class _no_receivers:  # noqa: N801 - a context manager used like receivers()
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


async def test_read_response_helper_sees_all_messages(state: asgi_urls.State) -> None:
    communicator = ApplicationCommunicator(ASGIHandler(), http_scope("/stream-async/"))
    await communicator.send_input({"type": "http.request", "body": b""})
    response = await read_response(communicator)
    await communicator.wait(TIMEOUT)
    assert response.body == b"first,second"
    assert response.body_messages == 3


# --- PostgreSQL: the server's own count of connections ---------------------------------------


def _backend_count() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (count,) = cursor.fetchone()
    return int(count)


async def _wait_for_backend_count(expected: int) -> int:
    """The count, once PostgreSQL has noticed the closed connections (its backends exit after
    the client's Terminate message, not at once)."""
    count = await sync_to_async(_backend_count)()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while count > expected and loop.time() < deadline:
        await asyncio.sleep(0.05)
        count = await sync_to_async(_backend_count)()
    return count


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
async def test_no_connection_left_in_pg_stat_activity(state: asgi_urls.State) -> None:
    # The counting runs on asgiref's process-wide thread; its connection is closed at the end.
    try:
        before = await sync_to_async(_backend_count)()
        app = ASGIHandler()
        for path in ["/orm/", "/sync-orm/", "/orm/"]:
            response = await call(app, path)
            assert response.status == 200
        if _compat.ASGI_HANDLE_LISTENS_FOR_DISCONNECT:
            await _disconnect_while_waiting("/orm-wait/", state)
        assert len(state.wrappers) >= 3
        assert await _wait_for_backend_count(before) == before
    finally:
        await sync_to_async(connections.close_all)()
