"""Helpers for the ASGI handler tests: drive an ASGI app directly, count what it creates."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asgiref.sync
import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished, request_started
from django.db import connections

TIMEOUT = 30


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    body_messages: int


def http_scope(
    path: str,
    *,
    method: str = "GET",
    headers: Iterable[tuple[bytes, bytes]] = (),
    query_string: bytes = b"",
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def read_response(communicator: ApplicationCommunicator) -> Response:
    start = await communicator.receive_output(TIMEOUT)
    assert start["type"] == "http.response.start", start
    body = b""
    messages = 0
    while True:
        message = await communicator.receive_output(TIMEOUT)
        assert message["type"] == "http.response.body", message
        body += message.get("body", b"")
        messages += 1
        if not message.get("more_body", False):
            break
    return Response(start["status"], start["headers"], body, messages)


def settle_pool_sync() -> None:
    """Wait until every pool worker was given back, after the end-of-request housekeeping.

    A worker runs that housekeeping (``close_old_connections``, which closes or keeps the
    request's connections) when its lease ends, just after the request: look at connections
    after this.
    """
    from django_async_toolkit import workers

    pool = workers.get_pool()
    assert pool is None or pool.wait_idle(TIMEOUT), "the pool's workers were not given back"


async def settle_pool() -> None:
    """:func:`settle_pool_sync` from async code."""
    await asyncio.to_thread(settle_pool_sync)


async def call(
    app: Any,
    path: str,
    *,
    method: str = "GET",
    body_chunks: Iterable[bytes] = (b"",),
    headers: Iterable[tuple[bytes, bytes]] = (),
    query_string: bytes = b"",
) -> Response:
    """Send one request to ``app`` and return its response once the app has returned.

    The app runs in a task created here, so it inherits a copy of the caller's context, as a
    request does under a server (``ApplicationCommunicator`` starts from an empty context).
    """
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    chunks = list(body_chunks)
    for index, chunk in enumerate(chunks):
        inbox.put_nowait(
            {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        )
    sent: list[Mapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return await inbox.get()  # After the body: waits until the handler cancels it.

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    scope = http_scope(path, method=method, headers=headers, query_string=query_string)
    await asyncio.wait_for(asyncio.create_task(app(scope, receive, send)), TIMEOUT)
    start, *body = sent
    assert start["type"] == "http.response.start", start
    assert all(message["type"] == "http.response.body" for message in body), body
    assert not body[-1].get("more_body", False)
    return Response(
        start["status"],
        start["headers"],
        b"".join(message.get("body", b"") for message in body),
        len(body),
    )


@dataclass
class SignalLog:
    """Calls of ``request_started`` / ``request_finished`` receivers."""

    started: list[dict[str, Any]] = field(default_factory=list)
    finished: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def receivers(*, sync: bool) -> Iterator[SignalLog]:
    """Connect a sync (or async) receiver to both request signals, recording each call."""
    import threading

    log = SignalLog()

    def record(signal: Any, **kwargs: Any) -> None:
        target = log.started if signal is request_started else log.finished
        target.append({**kwargs, "thread": threading.current_thread().name})

    if sync:

        def receiver(signal: Any, **kwargs: Any) -> None:
            record(signal, **kwargs)

    else:

        async def receiver(signal: Any, **kwargs: Any) -> None:  # type: ignore[misc]
            record(signal, **kwargs)

    request_started.connect(receiver, weak=False)
    request_finished.connect(receiver, weak=False)
    try:
        yield log
    finally:
        request_started.disconnect(receiver)
        request_finished.disconnect(receiver)


class ExecutorCounter:
    """Counts the threads requests get for their sync work (one per request that needs one):
    the thread-sensitive executors asgiref creates, and the workers leased from the toolkit's
    pool (``django_async_toolkit.workers``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from django_async_toolkit.workers import WorkerPool

        self.created = 0
        counter = self
        base = asgiref.sync.ThreadPoolExecutor

        class CountingExecutor(base):  # type: ignore[misc,valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                counter.created += 1
                super().__init__(*args, **kwargs)

        monkeypatch.setattr(asgiref.sync, "ThreadPoolExecutor", CountingExecutor)
        lease = WorkerPool._lease

        def counting_lease(pool: WorkerPool) -> Any:
            counter.created += 1
            return lease(pool)

        monkeypatch.setattr(WorkerPool, "_lease", counting_lease)


def _close_raw(wrapper: Any) -> None:
    """Really close the DB-API connection (SQLite's in-memory backend ignores ``close()``)."""
    raw, wrapper.connection = wrapper.connection, None
    if raw is not None:
        raw.close()


class CloseSpy:
    """Records the database wrappers that were opened and those that were closed.

    SQLite's in-memory test database ignores ``close()``, so the spy records the call itself
    (made by ``close_if_unusable_or_obsolete()``) on the backend class in use.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from django.db.backends.signals import connection_created

        self.opened: list[Any] = []
        self.closed: list[Any] = []
        backend = type(connections["default"])
        original_close = backend.close
        spy = self

        def close(wrapper: Any) -> None:
            if wrapper.connection is not None:
                spy.closed.append(wrapper)
            original_close(wrapper)
            _close_raw(wrapper)

        def opened(sender: Any, connection: Any, **kwargs: Any) -> None:
            spy.opened.append(connection)

        monkeypatch.setattr(backend, "close", close)
        connection_created.connect(opened, weak=False)
        self._disconnect = lambda: connection_created.disconnect(opened)

    def stop(self) -> None:
        """Stop recording; close what is left open (Django leaves a persistent connection of a
        finished request's thread to the garbage collector, which warns about it)."""
        self._disconnect()
        for wrapper in self.opened:
            _close_raw(wrapper)

    @property
    def left_open(self) -> list[Any]:
        return [wrapper for wrapper in self.opened if wrapper not in self.closed]
