"""The worker pool through the toolkit's ASGI handler, driven directly (no server).

Counting real threads and connections under load is ``tests/test_workers_db.py``'s job.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import django
import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished
from django.test import override_settings

from django_async_toolkit import workers
from django_async_toolkit.asgi import ASGIHandler
from django_async_toolkit.workers.context import _LeaseExecutor
from tests import workers_asgi_urls
from tests.asgi_helpers import TIMEOUT, call, http_scope, settle_pool

pytestmark = pytest.mark.urls("tests.workers_asgi_urls")

WORKER = "async-toolkit-worker-"


@pytest.fixture
def state() -> Iterator[workers_asgi_urls.State]:
    state = workers_asgi_urls.reset_state()
    yield state
    state.release.set()


async def settle() -> workers.PoolStats:
    await settle_pool()
    stats = workers.pool_stats()
    assert stats is not None
    return stats


async def test_db_free_requests_never_lease_even_while_every_worker_is_leased(
    state: workers_asgi_urls.State,
) -> None:
    handler = ASGIHandler()
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=1):
        held = asyncio.create_task(call(handler, "/hold/"))
        assert await asyncio.to_thread(state.holding.wait, TIMEOUT)
        stats = workers.pool_stats()
        assert stats is not None and (stats.leased, stats.leases) == (1, 1)
        # The only worker is leased: DB-free requests are served all the same, without a lease.
        responses = await asyncio.gather(*(call(handler, "/free/") for _ in range(20)))
        assert {response.body for response in responses} == {b"free"}
        stats = workers.pool_stats()
        assert stats is not None and (stats.leases, stats.waiting) == (1, 0)
        state.release.set()
        response = await held
        assert response.body.decode().startswith(WORKER)
        await settle()


async def test_requests_wait_for_a_worker_in_order_and_reuse_it(
    state: workers_asgi_urls.State,
) -> None:
    handler = ASGIHandler()
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=1):
        held = asyncio.create_task(call(handler, "/hold/"))
        assert await asyncio.to_thread(state.holding.wait, TIMEOUT)
        waiting = [asyncio.create_task(call(handler, "/nested/")) for _ in range(3)]
        while (stats := workers.pool_stats()) is None or stats.waiting < 3:
            await asyncio.sleep(0)  # they queue without blocking the loop: we are still running
        state.release.set()
        names = {(await held).body.decode()}
        for task in waiting:
            body = json.loads((await asyncio.wait_for(task, TIMEOUT)).body)
            names |= {body["view"], body["nested"]}
        stats = await settle()
    assert len(names) == 1 and names.pop().startswith(WORKER)
    assert (stats.threads, stats.leases, stats.peak) == (1, 4, 1)


async def test_nested_bridges_in_a_sync_view_come_back_to_its_worker(
    state: workers_asgi_urls.State,
) -> None:
    response = await call(ASGIHandler(), "/nested/")
    body = json.loads(response.body)
    assert body["view"] == body["nested"]
    assert body["view"].startswith(WORKER)


@pytest.mark.django_db(transaction=True)
async def test_request_start_housekeeping_runs_on_the_reused_worker(
    state: workers_asgi_urls.State,
) -> None:
    handler = ASGIHandler()
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=1, DEBUG=True):
        first = json.loads((await call(handler, "/queries/")).body)
        await settle()
        second = json.loads((await call(handler, "/queries/")).body)
    # The worker's connection logged the first request's query; reset_queries ran on the worker
    # before the second request used it, as Django's request_started does on a WSGI thread.
    assert first == {"before": 0, "after": 1}
    assert second == {"before": 0, "after": 1}


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The calls that units send to their leased workers (not the pool's own housekeeping)."""
    calls: list[Any] = []
    submit = _LeaseExecutor.submit

    def counting_submit(self: _LeaseExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(_LeaseExecutor, "submit", counting_submit)
    return calls


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/orm-once/", "/queries/"])
async def test_a_request_sends_its_worker_only_its_own_calls(
    submitted: list[Any], path: str
) -> None:
    """No call (no hop) for the end-of-request housekeeping: the worker runs it when the lease
    ends, after the request's last call on it."""
    response = await call(ASGIHandler(), path)
    assert response.status == 200
    assert len(submitted) == 1  # the ORM query, or the sync view that makes it
    stats = await settle()
    assert stats.leases == 1


def _project_receiver(**kwargs: object) -> None:
    pass


@pytest.mark.django_db(transaction=True)
async def test_a_sync_request_finished_receiver_of_the_project_still_runs_on_the_worker(
    submitted: list[Any],
) -> None:
    request_finished.connect(_project_receiver)
    try:
        response = await call(ASGIHandler(), "/orm-once/")
    finally:
        request_finished.disconnect(_project_receiver)
    assert response.status == 200
    assert len(submitted) == 2  # the query, then the response's close() as Django does it


@pytest.mark.skipif(
    django.VERSION < (5, 0), reason="Django 4.2's handler does not listen for a disconnect"
)
async def test_a_sync_view_still_running_after_a_disconnect_holds_back_the_request_end(
    state: workers_asgi_urls.State,
) -> None:
    """As in Django: the request's end (``request_finished``, closing its body) waits for the
    request's sync work still running, though nothing else would send the worker a call."""
    scope = http_scope("/read-when-released/", method="POST")
    communicator = ApplicationCommunicator(ASGIHandler(), scope)
    await communicator.send_input({"type": "http.request", "body": b"Body data!"})
    assert await asyncio.to_thread(state.holding.wait, TIMEOUT)
    await communicator.send_input({"type": "http.disconnect"})
    for _ in range(100):  # the handler's way to the request's end, were it not held back
        await asyncio.sleep(0)
    assert not communicator.future.done()
    state.release.set()
    await communicator.wait(TIMEOUT)
    assert state.outcome == [b"Body data!"]  # its body was still open when it read it


@pytest.mark.django_db(transaction=True)
async def test_a_task_that_outlives_its_request_can_still_use_the_orm(
    state: workers_asgi_urls.State,
) -> None:
    response = await call(ASGIHandler(), "/leaves-a-task/")
    assert response.status == 200
    await settle()  # the request gave its worker back
    state.go.set()
    (task,) = state.tasks
    count, thread = await asyncio.wait_for(task, TIMEOUT)
    assert count == 0
    assert thread.startswith(WORKER)  # a worker leased for that call, not a new thread
    stats = await settle()
    assert stats.threads == 1


@pytest.mark.django_db(transaction=True)
async def test_a_streaming_response_gives_its_worker_back_while_it_streams(
    state: workers_asgi_urls.State,
) -> None:
    handler = ASGIHandler()
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=1):
        streaming = asyncio.create_task(call(handler, "/orm-then-stream/"))
        await settle()  # the stream is waiting on state.go, its worker was given back
        assert not streaming.done()
        # With the only worker held by the stream this would wait until the stream ends.
        other = json.loads((await asyncio.wait_for(call(handler, "/nested/"), TIMEOUT)).body)
        assert other["view"].startswith(WORKER)
        state.go.set()
        response = await asyncio.wait_for(streaming, TIMEOUT)
        stats = await settle()
    count, thread = response.body.decode().split(":")
    assert count == "0"
    assert thread.startswith(WORKER)  # the stream's own call got the worker back for it
    assert stats.threads == 1


async def test_none_restores_a_thread_per_request(state: workers_asgi_urls.State) -> None:
    handler = ASGIHandler()
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=None):
        first = json.loads((await call(handler, "/nested/")).body)
        second = json.loads((await call(handler, "/nested/")).body)
    assert first["view"] == first["nested"]
    assert not first["view"].startswith(WORKER)
    assert first["view"] != second["view"]
    assert workers.pool_stats() is None


async def test_other_scopes_are_rejected_as_django_rejects_them() -> None:
    async def receive() -> dict[str, str]:
        raise AssertionError("not reached")

    async def send(message: object) -> None:
        raise AssertionError("not reached")

    with pytest.raises(ValueError, match="Django can only handle ASGI/HTTP connections, not "):
        await ASGIHandler()({"type": "websocket"}, receive, send)


async def test_lifespan_shutdown_stops_the_pool(state: workers_asgi_urls.State) -> None:
    handler = ASGIHandler()
    await call(handler, "/nested/")
    await settle()
    threads = [t for t in __import__("threading").enumerate() if t.name.startswith(WORKER)]
    assert threads
    await handler.shutdown()
    assert workers.pool_stats() is None
    assert not any(thread.is_alive() for thread in threads)
