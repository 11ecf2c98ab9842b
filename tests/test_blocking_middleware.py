from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterator

import httpx
import pytest
from django.core.asgi import get_asgi_application
from django.test import AsyncClient, Client, override_settings

from django_async_toolkit.blocking import (
    BlockingDetector,
    BlockingEvent,
    get_process_detector,
    start_process_detector,
    stop_process_detector,
)
from tests import blocking_views
from tests.blocking_views import line_of
from tests.servers import serve_asgi

SLEEP_LINE = line_of(blocking_views.sleeping_view, "blocks here")
LAG = re.compile(r'(?:^|, )loop-lag;dur=(\d+\.\d);desc="event loop lag"$')

pytestmark = [
    pytest.mark.urls("tests.blocking_urls"),
    pytest.mark.usefixtures("_stop_process_detector"),
]

blocking_middleware = override_settings(
    MIDDLEWARE=["django_async_toolkit.middleware.BlockingDetectorMiddleware"],
    ASYNC_TOOLKIT_BLOCKING_THRESHOLD=0.1,
)


@pytest.fixture
def _stop_process_detector() -> Iterator[None]:
    yield
    stop_process_detector()


def lag_ms(server_timing: str) -> float:
    match = LAG.search(server_timing)
    assert match is not None, server_timing
    return float(match.group(1))


@blocking_middleware
def test_sync_mode_passes_through(client: Client) -> None:
    with override_settings(ASYNC_TOOLKIT_SERVER_TIMING=True):
        response = client.get("/sync/")
    assert response.status_code == 200
    assert response.content == b"sync"
    assert "Server-Timing" not in response
    assert get_process_detector() is None


@blocking_middleware
async def test_first_async_request_starts_the_process_detector(
    async_client: AsyncClient,
) -> None:
    with override_settings(ASYNC_TOOLKIT_BLOCKING_THRESHOLD=0.25):
        response = await async_client.get("/quick/")
    assert response.status_code == 200
    assert "Server-Timing" not in response
    detector = get_process_detector()
    assert detector is not None and detector.running
    assert detector.threshold == 0.25
    assert detector.loop is asyncio.get_running_loop()
    await async_client.get("/quick/")
    assert get_process_detector() is detector


@blocking_middleware
@override_settings(ASYNC_TOOLKIT_SERVER_TIMING=True)
async def test_server_timing_reports_the_loop_lag_of_the_request(
    async_client: AsyncClient,
) -> None:
    quick = await async_client.get("/quick/")
    assert lag_ms(quick["Server-Timing"]) < 100  # a quick request on an idle loop: no stall
    slow = await async_client.get("/sleep/")
    assert lag_ms(slow["Server-Timing"]) >= 300  # the view blocked the loop for 500 ms
    timed = await async_client.get("/timed/")
    assert timed["Server-Timing"].startswith('db;dur=1.5;desc="database", loop-lag;dur=')
    lag_ms(timed["Server-Timing"])


@blocking_middleware
@override_settings(ASYNC_TOOLKIT_SERVER_TIMING=True)
async def test_no_server_timing_when_the_process_detector_watches_another_loop(
    async_client: AsyncClient,
) -> None:
    # The process detector belongs to the server's loop; a request served on another loop
    # (here, the test's) gets no lag it could not measure.
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever)
    thread.start()
    try:
        detector = asyncio.run_coroutine_threadsafe(_start(), other).result(10)
        response = await async_client.get("/quick/")
        assert "Server-Timing" not in response
        assert get_process_detector() is detector
        assert detector.loop is other
        stop_process_detector()
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(10)
        other.close()


async def _start() -> BlockingDetector:
    return start_process_detector()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.reported = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.reported.set()


@pytest.fixture
def blocking_log() -> Iterator[_Collect]:
    handler = _Collect()
    logger = logging.getLogger("django_async_toolkit.blocking")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@blocking_middleware
@override_settings(ASYNC_TOOLKIT_SERVER_TIMING=True)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_under_uvicorn_a_blocking_view_is_logged_with_its_line(
    blocking_log: _Collect, loop: str
) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    app = get_asgi_application()
    with serve_asgi(app, loop=loop) as url:
        quick = httpx.get(f"{url}/quick/", timeout=30)
        assert quick.status_code == 200
        assert blocking_log.records == []
        response = httpx.get(f"{url}/sleep/", timeout=30)
        assert response.status_code == 200
        assert lag_ms(response.headers["Server-Timing"]) >= 300
        assert blocking_log.reported.wait(30)
        detector = get_process_detector()
        assert detector is not None and detector.running
        server_loop = detector.loop
    assert server_loop is not None
    assert (type(server_loop).__module__ == "uvloop") is (loop == "uvloop")
    [record] = blocking_log.records
    event = record.blocking_event  # type: ignore[attr-defined]
    assert isinstance(event, BlockingEvent)
    assert event.frame is not None
    assert event.frame.name == "sleeping_view"
    assert event.frame.lineno == SLEEP_LINE
    message = record.getMessage()
    assert f"blocking_views.py:{SLEEP_LINE} in sleeping_view" in message
    assert "time.sleep(BLOCK_SECONDS)  # blocks here" in message
