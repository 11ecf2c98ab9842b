"""``AsyncMiddleware``: both modes, every hook, no thread hop, no shared per-request state."""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.test import AsyncClient, Client, RequestFactory
from pytest_django.fixtures import Settings as SettingsWrapper

from django_async_toolkit.middleware import AsyncMiddleware
from tests.hanging import cancel_and_check, start_never_answering
from tests.middleware_views import State

pytestmark = pytest.mark.urls("tests.middleware_urls")

VIEWS = "tests.middleware_views."


@pytest.fixture(autouse=True)
def middleware_state() -> Iterator[None]:
    State.reset()
    yield
    State.gate.open()


def use(settings: SettingsWrapper, *names: str) -> None:
    settings.MIDDLEWARE = [VIEWS + name for name in names]


def sync_get_response(request: HttpRequest) -> HttpResponse:
    return HttpResponse("inner")


async def async_get_response(request: HttpRequest) -> HttpResponse:
    return HttpResponse("inner")


# Mode and construction


def test_sync_mode_when_next_layer_is_sync() -> None:
    middleware = AsyncMiddleware(sync_get_response)
    assert middleware.async_mode is False
    assert not asyncio.iscoroutinefunction(middleware)
    response = middleware(RequestFactory().get("/"))
    assert isinstance(response, HttpResponse)
    assert response.content == b"inner"


async def test_async_mode_when_next_layer_is_async() -> None:
    from asgiref.sync import iscoroutinefunction

    middleware = AsyncMiddleware(async_get_response)
    assert middleware.async_mode is True
    assert iscoroutinefunction(middleware)
    response = await middleware(RequestFactory().get("/"))  # type: ignore[misc]
    assert response.content == b"inner"


def test_capabilities_declared_for_django() -> None:
    assert AsyncMiddleware.sync_capable is True
    assert AsyncMiddleware.async_capable is True
    # Django registers these by presence: the base must not define them.
    for hook in ("process_view", "process_exception", "process_template_response"):
        assert not hasattr(AsyncMiddleware, hook)
        assert not hasattr(AsyncMiddleware(sync_get_response), hook)
        assert not hasattr(AsyncMiddleware(async_get_response), hook)


def test_get_response_none_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"AsyncMiddleware\(\) requires get_response"):
        AsyncMiddleware(None)  # type: ignore[arg-type]


def test_get_response_not_callable_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"requires a callable get_response .* a builtins.str"):
        AsyncMiddleware("tests.views.sync_view")  # type: ignore[arg-type]


def test_hook_that_is_not_callable_is_a_clear_error() -> None:
    class Broken(AsyncMiddleware):
        process_request = "oops"

    with pytest.raises(TypeError, match=r"Broken.process_request must be a method"):
        Broken(sync_get_response)


# Hooks on both paths

HOOK_STACK = ["AsyncRecordingMiddleware", "RecordingMiddleware"]
EXPECTED_ORDER = [
    "async process_request",
    "process_request",
    "async process_view",
    "process_view",
    "view",
    "process_response",
    "async process_response",
]


@pytest.mark.parametrize("path", ["/sync/", "/async/"])
def test_hooks_on_both_paths(
    get: Callable[..., HttpResponseBase], settings: SettingsWrapper, path: str
) -> None:
    use(settings, *HOOK_STACK)
    response = get(path, {"id": "42"})
    assert response.status_code == 200
    assert response["X-Tag"] == "42"
    assert response["X-Async-Tag"] == "42"
    assert State.log == EXPECTED_ORDER


def test_async_hooks_in_sync_stack_run_through_async_to_sync(
    client: Client, settings: SettingsWrapper
) -> None:
    use(settings, "AsyncRecordingMiddleware")
    response = client.get("/sync/", {"id": "7"})
    assert response["X-Async-Tag"] == "7"
    # async_to_sync ran the hook on a loop in another thread; the view ran on this one.
    assert State.threads["async process_request"] != threading.get_ident()
    assert State.threads["async process_response"] != threading.get_ident()


def test_plain_hooks_in_sync_stack_run_inline(client: Client, settings: SettingsWrapper) -> None:
    use(settings, "RecordingMiddleware")
    client.get("/sync/")
    me = threading.get_ident()
    assert State.threads == {"process_request": me, "process_view": me, "process_response": me}


async def test_no_thread_hop_under_asgi(
    async_client: AsyncClient, settings: SettingsWrapper, caplog: pytest.LogCaptureFixture
) -> None:
    """Async and plain ``def`` hooks all run on the loop's thread; Django adapts nothing."""
    use(settings, *HOOK_STACK)
    settings.DEBUG = True  # Django only logs adaptations in DEBUG
    caplog.set_level(logging.DEBUG, logger="django.request")
    response = await async_client.get("/async/", {"id": "1"})
    assert response.status_code == 200
    loop_thread = threading.get_ident()
    assert set(State.threads) == {
        "async process_request",
        "process_request",
        "async process_view",
        "process_view",
        "view",
        "process_response",
        "async process_response",
    }
    assert set(State.threads.values()) == {loop_thread}
    assert not [r for r in caplog.records if "adapted" in r.getMessage()]


def test_django_logs_adaptation_for_a_sync_only_middleware(
    settings: SettingsWrapper, caplog: pytest.LogCaptureFixture
) -> None:
    """The check above can fail: a sync-only middleware in the stack does produce the message."""
    settings.MIDDLEWARE = [VIEWS + "RecordingMiddleware", __name__ + ".SyncOnlyMiddleware"]
    settings.DEBUG = True
    caplog.set_level(logging.DEBUG, logger="django.request")
    ASGIHandler()
    messages = [r.getMessage() for r in caplog.records if "adapted" in r.getMessage()]
    assert any("SyncOnlyMiddleware" in message for message in messages)
    assert not any("RecordingMiddleware" in message for message in messages)


class SyncOnlyMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)  # type: ignore[no-any-return]


@pytest.mark.parametrize("view", ["/sync/", "/async/"])
@pytest.mark.parametrize("query", [{"stop": "1"}, {}])
def test_short_circuit(
    get: Callable[..., HttpResponseBase],
    settings: SettingsWrapper,
    query: dict[str, str],
    view: str,
) -> None:
    use(settings, "ShortCircuitMiddleware")
    response = get(view, query)
    assert response["X-Seen"] == "yes"
    if query:
        assert response.status_code == 403
        assert State.log == []
    else:
        assert response.status_code == 200
        assert State.log == ["view"]


@pytest.mark.parametrize("middleware", ["ExceptionMiddleware", "AsyncExceptionMiddleware"])
def test_process_exception(
    get: Callable[..., HttpResponseBase], settings: SettingsWrapper, middleware: str
) -> None:
    use(settings, middleware)
    response = get("/fail/")
    assert response.status_code == 418
    assert State.log == [
        ("async " if middleware.startswith("Async") else "") + "process_exception view failed"
    ]


def test_process_template_response_sync_path(client: Client, settings: SettingsWrapper) -> None:
    use(settings, "TemplateResponseMiddleware")
    response = client.get("/template/")
    assert response.content == b"rendered for middleware"
    assert State.log == ["process_template_response"]


async def test_process_template_response_async_path(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    use(settings, "TemplateResponseMiddleware")
    response = await async_client.get("/template/")
    assert response.content == b"rendered for middleware"
    assert State.log == ["process_template_response"]
    assert State.threads["process_template_response"] == threading.get_ident()


# Hooks that return the wrong thing


def test_wrong_request_hook_result_sync() -> None:
    from tests.middleware_views import WrongRequestHookMiddleware

    middleware = WrongRequestHookMiddleware(sync_get_response)
    with pytest.raises(
        TypeError,
        match=r"tests\.middleware_views\.WrongRequestHookMiddleware\.process_request\(\) "
        r"returned a builtins\.str object; it must return an HttpResponse to answer the "
        r"request, or None to continue",
    ):
        middleware(RequestFactory().get("/"))


async def test_wrong_request_hook_result_async() -> None:
    from tests.middleware_views import WrongRequestHookMiddleware

    middleware = WrongRequestHookMiddleware(async_get_response)
    with pytest.raises(TypeError, match=r"WrongRequestHookMiddleware\.process_request\(\)"):
        await middleware(RequestFactory().get("/"))  # type: ignore[misc]


def test_none_from_process_response_sync() -> None:
    from tests.middleware_views import NoneResponseHookMiddleware

    middleware = NoneResponseHookMiddleware(sync_get_response)
    with pytest.raises(
        TypeError,
        match=r"NoneResponseHookMiddleware\.process_response\(\) returned None; it must "
        r"return an HttpResponse \(the one it received, or a new one\)",
    ):
        middleware(RequestFactory().get("/"))


async def test_none_from_process_response_async() -> None:
    from tests.middleware_views import NoneResponseHookMiddleware

    middleware = NoneResponseHookMiddleware(async_get_response)
    with pytest.raises(TypeError, match=r"NoneResponseHookMiddleware\.process_response\(\)"):
        await middleware(RequestFactory().get("/"))  # type: ignore[misc]


async def test_coroutine_from_plain_def_hook_is_closed_and_explained() -> None:
    from tests.middleware_views import CoroutineFromDefMiddleware

    middleware = CoroutineFromDefMiddleware(async_get_response)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match=r"returned an awaitable .*declare the hook with"):
            await middleware(RequestFactory().get("/"))  # type: ignore[misc]


def test_awaitable_from_plain_def_hook_is_explained() -> None:
    class Awaitable:
        def __await__(self) -> Any:
            yield from ()

    class ReturnsAwaitable(AsyncMiddleware):
        def process_response(self, request: HttpRequest, response: HttpResponseBase) -> Any:
            return Awaitable()

    with pytest.raises(TypeError, match=r"ReturnsAwaitable\.process_response\(\) returned an aw"):
        ReturnsAwaitable(sync_get_response)(RequestFactory().get("/"))


def test_wrong_result_becomes_a_500_in_the_stack(
    client: Client, settings: SettingsWrapper
) -> None:
    use(settings, "WrongRequestHookMiddleware")
    client.raise_request_exception = False
    response = client.get("/sync/")
    assert response.status_code == 500


# Streaming, cancellation, concurrency


def test_streaming_passes_through_sync_path(client: Client, settings: SettingsWrapper) -> None:
    use(settings, "HeaderOnlyMiddleware", "RecordingMiddleware")
    response = client.get("/stream/")
    assert response["X-Streaming"] == "True"
    assert "stream started" not in State.log
    assert b"".join(response.streaming_content) == b"first,second"  # type: ignore[arg-type]


async def test_streaming_passes_through_async_path(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    use(settings, "HeaderOnlyMiddleware", "RecordingMiddleware")
    response = await async_client.get("/astream/")
    assert response["X-Streaming"] == "True"
    assert "stream started" not in State.log
    chunks = [chunk async for chunk in response.streaming_content]  # type: ignore[union-attr]
    assert b"".join(chunks) == b"first,second"


class Cancellable(AsyncMiddleware):
    async def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        raise AssertionError("process_response must not run for a cancelled request")


async def test_cancellation_propagates() -> None:
    task = await start_never_answering(Cancellable)
    await cancel_and_check(task)


async def test_cancellation_propagates_from_async_hook() -> None:
    entered = asyncio.Event()

    class WaitingHook(AsyncMiddleware):
        async def process_request(self, request: HttpRequest) -> None:
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.ensure_future(
        WaitingHook(async_get_response)(RequestFactory().get("/"))  # type: ignore[arg-type]
    )
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_concurrent_requests_never_see_each_others_data(
    async_client: AsyncClient, settings: SettingsWrapper
) -> None:
    use(settings, *HOOK_STACK)
    ids = [str(n) for n in range(60)]
    responses = await asyncio.gather(*(async_client.get("/async/", {"id": i}) for i in ids))
    for request_id, response in zip(ids, responses, strict=True):
        assert response["X-Tag"] == request_id
        assert response["X-Async-Tag"] == request_id
        assert response.content == f"async {request_id}".encode()


def test_concurrent_threads_never_see_each_others_data(settings: SettingsWrapper) -> None:
    use(settings, *HOOK_STACK)
    ids = [str(n) for n in range(16)]
    start = threading.Barrier(len(ids))
    results: dict[str, HttpResponseBase] = {}

    def worker(request_id: str) -> None:
        start.wait(timeout=30)
        results[request_id] = Client().get("/sync/", {"id": request_id})

    threads = [threading.Thread(target=worker, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for request_id in ids:
        assert results[request_id]["X-Tag"] == request_id
        assert results[request_id]["X-Async-Tag"] == request_id
