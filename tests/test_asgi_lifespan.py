"""The ASGI lifespan protocol of the toolkit's handler, driven directly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from django_async_toolkit import lifecycle
from django_async_toolkit.asgi import ASGIHandler
from django_async_toolkit.blocking import get_process_detector, stop_process_detector
from tests.asgi_helpers import TIMEOUT, CloseSpy
from tests.models import Item


async def run_lifespan(app: ASGIHandler, *message_types: str) -> list[dict[str, Any]]:
    """Send ``message_types`` in order; return what the app sent back."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message_type in message_types:
        inbox.put_nowait({"type": message_type})
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
    await asyncio.wait_for(app(scope, inbox.get, send), TIMEOUT)
    return sent


@pytest.fixture(autouse=True)
def no_detector_left() -> Any:
    yield
    stop_process_detector()


async def test_startup_and_shutdown_complete() -> None:
    sent = await run_lifespan(ASGIHandler(), "lifespan.startup", "lifespan.shutdown")
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert get_process_detector() is None


@override_settings(ASYNC_TOOLKIT_BLOCKING_DETECTOR=True)
async def test_startup_starts_the_blocking_detector_and_shutdown_stops_it() -> None:
    app = ASGIHandler()
    await app.startup()
    detector = get_process_detector()
    assert detector is not None
    assert detector.running
    assert detector.loop is asyncio.get_running_loop()
    await app.shutdown()
    assert get_process_detector() is None
    assert not detector.running


@override_settings(ASYNC_TOOLKIT_BLOCKING_DETECTOR=True)
async def test_startup_failure_is_reported_with_its_message(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail() -> None:
        raise RuntimeError("no loop to watch")

    monkeypatch.setattr(lifecycle, "start_process_detector", fail)
    with caplog.at_level(logging.ERROR, logger="django_async_toolkit.asgi"):
        sent = await run_lifespan(ASGIHandler(), "lifespan.startup")
    assert sent == [
        {"type": "lifespan.startup.failed", "message": "RuntimeError: no loop to watch"}
    ]
    assert "ASGI lifespan startup failed" in caplog.text
    assert "no loop to watch" in caplog.text


async def test_invalid_setting_fails_startup() -> None:
    with override_settings(ASYNC_TOOLKIT_BLOCKING_DETECTOR="yes"):
        sent = await run_lifespan(ASGIHandler(), "lifespan.startup")
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "ASYNC_TOOLKIT_BLOCKING_DETECTOR" in sent[0]["message"]


def _record(calls: list[str], name: str) -> Callable[..., None]:
    def step(*args: Any, **kwargs: Any) -> None:
        calls.append(name if not kwargs else f"{name}{kwargs}")

    return step


def _record_async(calls: list[str], name: str) -> Callable[..., Awaitable[None]]:
    async def step(*args: Any, **kwargs: Any) -> None:
        calls.append(f"{name}{kwargs}")

    return step


@override_settings(ASYNC_TOOLKIT_DRAIN_TIMEOUT=2.5)
async def test_shutdown_steps_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(lifecycle, "drain_background", _record_async(calls, "drain"))
    monkeypatch.setattr(lifecycle, "stop_background_loop", _record(calls, "signals"))
    monkeypatch.setattr(lifecycle, "shutdown_blocking_pool", _record(calls, "pool"))
    monkeypatch.setattr(lifecycle, "stop_process_detector", _record(calls, "detector"))
    await ASGIHandler().shutdown()
    assert calls == ["drain{'timeout': 2.5}", "signals", "pool", "detector"]


async def test_one_shutdown_failure_is_reported_after_every_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    async def drain(timeout: float | None) -> None:
        raise TimeoutError("1 background signal dispatch(es) did not finish within 10.0 s")

    monkeypatch.setattr(lifecycle, "drain_background", drain)
    monkeypatch.setattr(lifecycle, "stop_background_loop", _record(calls, "signals"))
    monkeypatch.setattr(lifecycle, "stop_process_detector", _record(calls, "detector"))
    sent = await run_lifespan(ASGIHandler(), "lifespan.startup", "lifespan.shutdown")
    assert sent[1] == {
        "type": "lifespan.shutdown.failed",
        "message": "TimeoutError: 1 background signal dispatch(es) did not finish within 10.0 s",
    }
    assert calls == ["signals", "detector"]


async def test_several_shutdown_failures_are_grouped(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(name: str) -> Callable[[], None]:
        def step() -> None:
            raise RuntimeError(name)

        return step

    monkeypatch.setattr(lifecycle, "stop_background_loop", fail("signals"))
    monkeypatch.setattr(lifecycle, "stop_process_detector", fail("detector"))
    with pytest.raises(ExceptionGroup) as caught:
        await ASGIHandler().shutdown()
    assert [str(error) for error in caught.value.exceptions] == ["signals", "detector"]
    sent = await run_lifespan(ASGIHandler(), "lifespan.startup", "lifespan.shutdown")
    assert sent[1] == {
        "type": "lifespan.shutdown.failed",
        "message": "RuntimeError: signals; RuntimeError: detector",
    }


@pytest.mark.django_db(transaction=True)
async def test_shutdown_closes_the_process_wide_threads_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = CloseSpy(monkeypatch)
    try:
        # Outside any request, thread-sensitive work runs on asgiref's process-wide thread.
        assert await sync_to_async(Item.objects.count)() == 0
        assert len(spy.opened) == 1
        assert spy.left_open == spy.opened
        await ASGIHandler().shutdown()
        assert spy.left_open == []
    finally:
        spy.stop()


async def test_unexpected_lifespan_message() -> None:
    with pytest.raises(ValueError, match="Unexpected ASGI lifespan message type 'lifespan.bogus'"):
        await run_lifespan(ASGIHandler(), "lifespan.bogus")


@pytest.mark.parametrize(
    ("name", "value"),
    [("ASYNC_TOOLKIT_REQUEST_TIMEOUT", "10"), ("ASYNC_TOOLKIT_BLOCKING_WORKERS", 10**9)],
)
async def test_startup_validates_every_setting(name: str, value: object) -> None:
    """Not only the settings start-up uses: a bad timeout would fail every request instead."""
    with override_settings(**{name: value}):
        sent = await run_lifespan(ASGIHandler(), "lifespan.startup")
    (failed,) = sent
    assert failed["type"] == "lifespan.startup.failed"
    assert failed["message"].startswith(f"ImproperlyConfigured: {name} is {value!r}; it must be")


async def test_startup_warns_about_an_unknown_setting(caplog: pytest.LogCaptureFixture) -> None:
    with (
        override_settings(ASYNC_TOOLKIT_REQEST_TIMEOUT=5),
        caplog.at_level(logging.WARNING, logger="django_async_toolkit"),
    ):
        sent = await run_lifespan(ASGIHandler(), "lifespan.startup", "lifespan.shutdown")
    assert sent[0] == {"type": "lifespan.startup.complete"}
    assert "Did you mean ASYNC_TOOLKIT_REQUEST_TIMEOUT?" in caplog.text
