"""``TimeoutMiddleware`` and ``request_timeout``: both paths, direct units, a real server."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory
from django.utils.decorators import method_decorator
from django.utils.module_loading import import_string
from django.views import View
from pytest_django.fixtures import Settings as SettingsWrapper

from django_async_toolkit.middleware import TimeoutMiddleware, request_timeout
from tests.hanging import cancel_and_check, start_never_answering
from tests.middleware_views import State
from tests.servers import serve_asgi

pytestmark = pytest.mark.urls("tests.middleware_urls")

TIMEOUT = "django_async_toolkit.middleware.TimeoutMiddleware"


@pytest.fixture(autouse=True)
def middleware_state(settings: SettingsWrapper) -> Iterator[None]:
    State.reset()
    settings.MIDDLEWARE = [TIMEOUT]
    yield
    State.gate.open()


async def test_hanging_view_gets_504_and_cleans_up(
    async_client: AsyncClient, settings: SettingsWrapper, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 0.05
    with caplog.at_level(logging.WARNING, logger="django_async_toolkit.middleware"):
        response = await async_client.get("/hang/", {"q": "1"})
    assert response.status_code == 504
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content == b"Gateway Timeout: the server did not answer within 0.05 seconds.\n"
    assert State.cleaned_up.is_set()
    (record,) = [r for r in caplog.records if r.name == "django_async_toolkit.middleware"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    # How long it took is the machine's business; that it was measured, and the limit, are ours.
    assert re.search(r"GET /hang/ timed out after \d+\.\d{3} s \(limit 0\.05 s\)", message)
    assert "q=1" not in message  # the query string may hold secrets: not logged


@pytest.mark.parametrize("quick", [False, True])
async def test_a_view_that_ignores_its_cancellation_still_gets_its_504(
    async_client: AsyncClient,
    settings: SettingsWrapper,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    quick: bool,
) -> None:
    """The deadline holds whatever the view does, and the view is named in a warning."""
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 0.05
    monkeypatch.setattr(TimeoutMiddleware, "cancel_grace", 0.05)
    with caplog.at_level(logging.WARNING, logger="django_async_toolkit.middleware"):
        response = await async_client.get("/stubborn/", {"quick": "1"} if quick else {})
    assert response.status_code == 504
    assert State.log == ["cancelled, going on"]
    timed_out, ignored = [r for r in caplog.records if r.name == "django_async_toolkit.middleware"]
    assert "GET /stubborn/ timed out" in timed_out.getMessage()
    message = ignored.getMessage()
    assert ignored.levelno == logging.WARNING
    assert message.startswith(
        "tests.middleware_views.stubborn_view ignored its cancellation at the deadline of "
        "GET /stubborn/"
    )
    if quick:
        assert "it returned anyway" in message
        assert State.cleaned_up.is_set()
    else:
        assert "it is still running" in message
        assert not State.cleaned_up.is_set()
        State.gate.open()  # the view now ends on its own, and nothing is left behind
        await asyncio.wait_for(asyncio.to_thread(State.cleaned_up.wait), timeout=30)


async def test_fast_view_is_untouched(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 30
    response = await async_client.get("/async/", {"id": "3"})
    assert response.status_code == 200
    assert response.content == b"async 3"


async def test_no_timeout_by_default(async_client: AsyncClient) -> None:
    task = asyncio.ensure_future(async_client.get("/gated/"))
    await State.gate.wait_arrivals_async(1)
    State.gate.open()
    response = await task
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/short-deadline/", "/short-deadline-class/", "/short-deadline-dispatch/"]
)
async def test_view_deadline_overrides_the_setting(async_client: AsyncClient, path: str) -> None:
    response = await async_client.get(path)  # the setting is None: only the view's 0.05 s
    assert response.status_code == 504
    assert b"within 0.05 seconds" in response.content
    assert State.cleaned_up.is_set()


async def test_view_can_turn_the_timeout_off(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 0.01
    response = await async_client.get("/no-deadline/")  # sleeps 0.2 s, 20 times the setting
    assert response.status_code == 200
    assert response.content == b"took its time"


async def test_streaming_body_is_not_cut(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 0.5
    response = await async_client.get("/slow-stream/")  # the body takes 1.2 s
    assert response.status_code == 200
    chunks = [chunk async for chunk in response.streaming_content]  # type: ignore[union-attr]
    assert b"".join(chunks) == b"chunk 0\nchunk 1\nchunk 2\n"


def test_sync_path_passes_requests_through(client: Client, settings: SettingsWrapper) -> None:
    """Under WSGI nothing can be cancelled: the request runs to the end."""
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 0.01
    response = client.get("/no-deadline/")  # an async view, run by async_to_sync, 0.2 s
    assert response.status_code == 200
    response = client.get("/sync/", {"id": "5"})
    assert response.content == b"sync 5"


def test_sync_mode_registers_no_process_view() -> None:
    middleware = TimeoutMiddleware(lambda request: HttpResponse())
    assert middleware.async_mode is False
    assert not hasattr(middleware, "process_view")
    assert import_string(TIMEOUT) is TimeoutMiddleware  # the path users write in MIDDLEWARE


def test_async_mode_process_view_is_a_coroutine_function() -> None:
    from asgiref.sync import iscoroutinefunction

    async def get_response(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    middleware = TimeoutMiddleware(get_response)
    assert iscoroutinefunction(middleware.process_view)


async def test_external_cancellation_is_not_a_504(settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 30
    task = await start_never_answering(TimeoutMiddleware)
    await cancel_and_check(task)


async def test_a_timeout_error_of_its_own_propagates(settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 30

    async def raises(request: HttpRequest) -> HttpResponse:
        raise TimeoutError("the layer below timed out")

    middleware = TimeoutMiddleware(raises)
    with pytest.raises(TimeoutError, match="the layer below"):
        await middleware(RequestFactory().get("/"))  # type: ignore[misc]


async def test_view_deadline_set_from_another_thread(settings: SettingsWrapper) -> None:
    """process_view called off the request's loop reschedules through the loop."""
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = None
    loop = asyncio.get_running_loop()

    @request_timeout(0.05)
    def view(request: HttpRequest) -> HttpResponse:
        raise AssertionError("not called")

    async def get_response(request: HttpRequest) -> HttpResponse:
        middleware = holder["middleware"]
        await loop.run_in_executor(
            None, lambda: asyncio.run(middleware.process_view(request, view, (), {}))
        )
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    holder: dict[str, Any] = {}
    holder["middleware"] = middleware = TimeoutMiddleware(get_response)
    response = await middleware(RequestFactory().get("/"))  # type: ignore[misc]
    assert response.status_code == 504


async def test_process_view_without_the_middleware_call_is_harmless() -> None:
    async def get_response(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    middleware = TimeoutMiddleware(get_response)
    view = request_timeout(1)(lambda request: HttpResponse())
    assert await middleware.process_view(RequestFactory().get("/"), view, (), {}) is None


# request_timeout


def test_request_timeout_keeps_sync_and_async_views_so() -> None:
    from asgiref.sync import iscoroutinefunction

    def sync_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("sync")

    async def async_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("async")

    wrapped_sync = request_timeout(2)(sync_view)
    wrapped_async = request_timeout(2.5)(async_view)
    assert not iscoroutinefunction(wrapped_sync)
    assert iscoroutinefunction(wrapped_async)
    assert wrapped_sync.__name__ == "sync_view"
    assert wrapped_sync(RequestFactory().get("/")).content == b"sync"
    assert sync_view.__dict__ == {}  # the original function is not changed


def test_request_timeout_on_a_class() -> None:
    @request_timeout(3)
    class Decorated(View):
        pass

    @method_decorator(request_timeout(None), name="dispatch")
    class OnDispatch(View):
        pass

    from django_async_toolkit.middleware.timeout import _view_timeout

    assert _view_timeout(Decorated.as_view()) == 3
    assert _view_timeout(OnDispatch.as_view()) is None


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (0, ValueError, r"request_timeout\(0\): the timeout must be a number of seconds"),
        (-1, ValueError, "greater than 0"),
        (float("inf"), ValueError, "greater than 0"),
        (float("nan"), ValueError, "greater than 0"),
        ("30", TypeError, "a number of seconds or None, not a builtins.str"),
        (True, TypeError, "not a builtins.bool"),
        (lambda request: None, TypeError, r"write @request_timeout\(30\)"),
    ],
)
def test_request_timeout_rejects_bad_values(
    value: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        request_timeout(value)  # type: ignore[arg-type]


def test_request_timeout_rejects_a_non_view() -> None:
    with pytest.raises(TypeError, match=r"decorates a view .* not a builtins.int"):
        request_timeout(1)(5)  # type: ignore[type-var]


# A real server


def test_real_server_slow_async_view_gets_504_and_cleanup_runs(settings: SettingsWrapper) -> None:
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 0.5
    with serve_asgi(get_asgi_application()) as url:
        response = httpx.get(url + "/hang/", timeout=30)
        assert response.status_code == 504
        assert response.text.startswith("Gateway Timeout")
        assert State.cleaned_up.wait(timeout=30)
        ok = httpx.get(url + "/async/?id=9", timeout=30)
    assert ok.status_code == 200
    assert ok.text == "async 9"


def test_real_server_sync_view_gets_504_and_finishes_later(settings: SettingsWrapper) -> None:
    """A sync view cannot be interrupted: the client gets 504 on time, the thread finishes."""
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 0.2
    with serve_asgi(get_asgi_application()) as url:
        response = httpx.get(url + "/hang-sync/", timeout=30)
        assert response.status_code == 504
        assert not State.cleaned_up.is_set()
        State.gate.open()
        assert State.cleaned_up.wait(timeout=30)


@pytest.mark.parametrize(
    ("middleware", "loses"),
    [
        (TIMEOUT, "no request is cancelled at its deadline"),
        ("django_async_toolkit.middleware.BlockingDetectorMiddleware", "detects nothing"),
    ],
)
def test_sync_mode_is_said_once_at_the_first_request(
    client: Client,
    settings: SettingsWrapper,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    middleware: str,
    loses: str,
) -> None:
    from django_async_toolkit.middleware import base

    monkeypatch.setattr(base, "_noted_sync_mode", set())
    settings.MIDDLEWARE = [middleware]
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 30
    with caplog.at_level(logging.WARNING, logger="django_async_toolkit.middleware"):
        assert client.get("/sync/", {"id": "1"}).status_code == 200
        assert client.get("/sync/", {"id": "2"}).status_code == 200
    (record,) = [r for r in caplog.records if r.name == "django_async_toolkit.middleware"]
    name = middleware.rsplit(".", 1)[1]
    assert f"{name} is serving requests in sync mode" in record.getMessage()
    assert loses in record.getMessage()


async def test_async_mode_says_nothing(
    async_client: AsyncClient, settings: SettingsWrapper, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 30
    with caplog.at_level(logging.WARNING, logger="django_async_toolkit.middleware"):
        assert (await async_client.get("/async/", {"id": "1"})).status_code == 200
    assert not [r for r in caplog.records if "sync mode" in r.getMessage()]
