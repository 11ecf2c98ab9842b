"""The toolkit's ASGI handler under a real server: uvicorn on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import httpx
import pytest
from django.core.signals import request_finished, request_started
from django.test import override_settings

from django_async_toolkit import _compat
from django_async_toolkit.asgi import ASGIHandler
from django_async_toolkit.blocking import get_process_detector
from tests import asgi_urls
from tests.asgi_helpers import CloseSpy, ExecutorCounter, settle_pool_sync
from tests.servers import serve_asgi

pytestmark = pytest.mark.urls("tests.asgi_urls")

WAIT = 30


class Counter:
    """Counts calls of a signal receiver, from any thread, and lets a test wait for a count."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._condition = threading.Condition()

    def record(self) -> None:
        with self._condition:
            self.calls.append(threading.current_thread().name)
            self._condition.notify_all()

    def wait_for(self, count: int) -> None:
        with self._condition:
            assert self._condition.wait_for(lambda: len(self.calls) >= count, WAIT), self.calls


@pytest.fixture
def finished() -> Iterator[Counter]:
    """A receiver of ``request_finished``: async where Django supports it (no hop), else sync."""
    counter = Counter()
    if _compat.HAS_SIGNAL_ASEND:

        async def receiver(**kwargs: Any) -> None:
            counter.record()

    else:

        def receiver(**kwargs: Any) -> None:  # type: ignore[misc]
            counter.record()

    request_finished.connect(receiver, weak=False)
    yield counter
    request_finished.disconnect(receiver)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    file_path = tmp_path / "served.bin"
    file_path.write_bytes(bytes(range(256)) * 1000)
    asgi_urls.reset_state(file_path)
    with serve_asgi(ASGIHandler()) as url:
        yield url


@override_settings(FILE_UPLOAD_MAX_MEMORY_SIZE=100_000)
# Django warns that it consumes a FileResponse's file in a thread, under any ASGI handler.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_requests_and_request_finished_counts(served: str, finished: Counter) -> None:
    assert asgi_urls.state.file_path is not None
    with httpx.Client(base_url=served, timeout=WAIT) as client:
        assert client.get("/plain/").text == "plain"
        body = b"0123456789" * 100_000  # Past FILE_UPLOAD_MAX_MEMORY_SIZE: rolls to disk.
        assert client.post("/echo/", content=body).content == body
        assert client.get("/stream-async/").content == b"first,second"
        assert client.get("/file/").content == asgi_urls.state.file_path.read_bytes()
        assert client.get("/sync/").status_code == 200
        assert client.get("/missing/").status_code == 404
    finished.wait_for(6)
    assert len(finished.calls) == 6


def test_db_free_async_view_creates_no_thread_under_uvicorn(
    served: str, finished: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    executors = ExecutorCounter(monkeypatch)
    with httpx.Client(base_url=served, timeout=WAIT) as client:
        for _ in range(5):
            assert client.get("/plain/").text == "plain"
        finished.wait_for(5)
        assert executors.created == (0 if _compat.HAS_SIGNAL_ASEND else 5)
        # A request that does sync work still gets its thread, as with Django's handler.
        assert client.get("/sync/").status_code == 200
        finished.wait_for(6)
    assert executors.created == (1 if _compat.HAS_SIGNAL_ASEND else 6)


def test_request_started_receiver_runs_once_per_request(served: str) -> None:
    started = Counter()

    def receiver(**kwargs: Any) -> None:
        started.record()

    request_started.connect(receiver, weak=False)
    try:
        with httpx.Client(base_url=served, timeout=WAIT) as client:
            for _ in range(3):
                assert client.get("/plain/").status_code == 200
    finally:
        request_started.disconnect(receiver)
    assert len(started.calls) == 3
    # A sync receiver runs behind a hop (on a pool worker), never on the server's loop thread.
    assert all(
        name.startswith(("ThreadPoolExecutor", "async-toolkit-worker-")) for name in started.calls
    )


@pytest.mark.skipif(django.VERSION < (5, 0), reason="Django 4.2 does not listen for a disconnect")
def test_client_going_away_mid_stream_still_finishes_once(served: str, finished: Counter) -> None:
    with (
        httpx.Client(base_url=served, timeout=WAIT) as client,
        client.stream("GET", "/stream-forever/") as response,
    ):
        assert next(response.iter_bytes()).startswith(b"tick")
    # The connection is closed: the server sees the disconnect and ends the request.
    finished.wait_for(1)
    assert len(finished.calls) == 1


@pytest.mark.django_db(transaction=True)
def test_orm_view_connection_closed(
    served: str, finished: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = CloseSpy(monkeypatch)
    try:
        with httpx.Client(base_url=served, timeout=WAIT) as client:
            assert client.get("/orm/").text == "0"
            assert client.get("/sync-orm/").text == "0"
        finished.wait_for(2)
        settle_pool_sync()
    finally:
        spy.stop()
    assert len(spy.opened) == 2
    assert spy.left_open == []


@override_settings(ASYNC_TOOLKIT_BLOCKING_DETECTOR=True)
def test_lifespan_under_uvicorn(tmp_path: Path) -> None:
    asgi_urls.reset_state()
    with serve_asgi(ASGIHandler(), lifespan="on") as url:
        detector = get_process_detector()
        assert detector is not None and detector.running
        assert httpx.get(f"{url}/plain/", timeout=WAIT).text == "plain"
    # Shutdown ran before uvicorn stopped: the detector is stopped.
    assert get_process_detector() is None
    assert not detector.running
