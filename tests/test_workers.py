"""The worker pool on its own: leases, FIFO waits, bounds, tasks that outlive, bridges, shutdown.

These drive ``pooled_context()`` directly, as the handler, background dispatch and async commands
do; ``tests/test_workers_asgi.py`` drives the handler, ``tests/test_workers_db.py`` counts real
connections.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, async_to_sync, sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_async_toolkit import _compat, workers
from django_async_toolkit.conf import conf
from django_async_toolkit.workers import PooledContext, WorkerPool, pooled_context
from tests.asgi_helpers import settle_pool

TIMEOUT = 30


@pytest.fixture(autouse=True)
def fresh_pool() -> Iterator[None]:
    workers.shutdown_pool(timeout=TIMEOUT)
    yield
    workers.shutdown_pool(timeout=TIMEOUT)


class ThreadStarts:
    """Counts threads started (``threading.Thread.start``) while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        original = threading.Thread.start
        counter = self

        def start(thread: threading.Thread) -> None:
            counter.names.append(thread.name)
            original(thread)

        monkeypatch.setattr(threading.Thread, "start", start)

    @property
    def started(self) -> list[str]:
        """The names, but for the test's own waits (``settle()`` uses the loop's executor)."""
        return [name for name in self.names if not name.startswith("asyncio_")]


@pytest.fixture
def thread_starts(monkeypatch: pytest.MonkeyPatch) -> ThreadStarts:
    return ThreadStarts(monkeypatch)


def current_thread() -> threading.Thread:
    return threading.current_thread()


async def on_worker() -> threading.Thread:
    return await sync_to_async(current_thread)()


settle = settle_pool  # every worker given back (that happens on the worker, after the unit)


def test_setting_defaults_to_8_and_accepts_none() -> None:
    assert conf.SYNC_WORKERS == 8
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=None):
        assert conf.SYNC_WORKERS is None
    with (
        override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=0),
        pytest.raises(ImproperlyConfigured, match="ASYNC_TOOLKIT_SYNC_WORKERS is 0"),
    ):
        conf.SYNC_WORKERS  # noqa: B018


def test_pool_rejects_a_bad_size() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WorkerPool(0)


async def test_a_context_without_sync_work_leases_nothing(thread_starts: ThreadStarts) -> None:
    async with pooled_context() as context:
        assert isinstance(context, PooledContext)
        assert not _compat.thread_sensitive_thread_exists()
        await asyncio.sleep(0)
    assert thread_starts.names == []
    assert workers.pool_stats() is None  # no pool was even made


async def test_every_call_of_a_context_runs_on_its_worker(thread_starts: ThreadStarts) -> None:
    async with pooled_context():
        first = await on_worker()
        assert _compat.thread_sensitive_thread_exists()
        second = await on_worker()
        stats = workers.pool_stats()
        assert stats is not None and stats.leased == 1
    await settle()
    assert first is second
    assert first.name.startswith("async-toolkit-worker-")
    assert first is not threading.current_thread()
    # The worker is reused by the next context: no new thread.
    async with pooled_context():
        assert await on_worker() is first
    await settle()
    assert thread_starts.started == [first.name]
    stats = workers.pool_stats()
    assert stats is not None
    assert (stats.threads, stats.leased, stats.leases, stats.peak) == (1, 0, 2, 1)


async def test_concurrent_contexts_are_bounded_by_the_pool_size(
    thread_starts: ThreadStarts,
) -> None:
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=3):
        threads: list[threading.Thread] = []

        async def unit() -> None:
            async with pooled_context():
                for _ in range(3):
                    threads.append(await on_worker())
                    await asyncio.sleep(0)

        await asyncio.gather(*(unit() for _ in range(100)))
        await settle()
    assert len(threads) == 300
    assert len(set(threads)) <= 3
    assert len(thread_starts.started) <= 3
    stats = workers.pool_stats()
    assert stats is not None
    assert stats.peak == 3 and stats.leases == 100 and stats.leased == 0 and stats.waiting == 0


async def test_waiting_is_first_come_first_served_and_never_blocks_the_loop() -> None:
    loop = asyncio.get_running_loop()
    release = threading.Event()
    holding = asyncio.Event()
    order: list[str] = []

    def hold() -> None:
        loop.call_soon_threadsafe(holding.set)
        release.wait(TIMEOUT)

    async def first() -> None:
        async with pooled_context():
            await sync_to_async(hold)()

    async def waiter(name: str) -> None:
        async with pooled_context():
            await sync_to_async(order.append)(name)

    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=1):
        holder = asyncio.create_task(first())
        await holding.wait()
        waiters = []
        for name in ["a", "b", "c"]:
            waiters.append(asyncio.create_task(waiter(name)))
            await asyncio.sleep(0)  # each submits in turn
        # The loop keeps running while they wait: this very coroutine goes on.
        for _ in range(10):
            await asyncio.sleep(0)
        stats = workers.pool_stats()
        assert stats is not None and (stats.leased, stats.waiting) == (1, 3)
        assert order == []
        release.set()
        await asyncio.wait_for(asyncio.gather(holder, *waiters), TIMEOUT)
    assert order == ["a", "b", "c"]


async def test_a_cancelled_waiting_call_is_skipped() -> None:
    loop = asyncio.get_running_loop()
    release = threading.Event()
    holding = asyncio.Event()
    ran: list[str] = []

    def hold() -> None:
        loop.call_soon_threadsafe(holding.set)
        release.wait(TIMEOUT)

    async def unit(func: Any) -> None:
        async with pooled_context():
            await sync_to_async(func)()

    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=1):
        holder = asyncio.create_task(unit(hold))
        await holding.wait()
        cancelled = asyncio.create_task(unit(lambda: ran.append("cancelled")))
        await asyncio.sleep(0)
        kept = asyncio.create_task(unit(lambda: ran.append("kept")))
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        release.set()
        await asyncio.wait_for(asyncio.gather(holder, kept), TIMEOUT)
        await settle()
    assert ran == ["kept"]
    stats = workers.pool_stats()
    assert stats is not None and stats.leases == 2  # the cancelled unit never got the worker


async def test_a_task_that_outlives_its_context_still_gets_a_worker(
    thread_starts: ThreadStarts,
) -> None:
    go = asyncio.Event()
    seen: list[threading.Thread] = []

    async def later() -> None:
        await go.wait()
        seen.append(await on_worker())
        seen.append(await on_worker())

    async with pooled_context():
        seen.append(await on_worker())
        task = asyncio.create_task(later())
    await settle()
    stats = workers.pool_stats()
    assert stats is not None and stats.leased == 0  # the context gave its worker back
    go.set()
    await asyncio.wait_for(task, TIMEOUT)  # no "ThreadSensitiveContext has exited"
    await settle()
    assert all(thread.name.startswith("async-toolkit-worker-") for thread in seen)
    # The same worker: the first call leased it, the second ran on it too (before it was given
    # back, or in a lease of its own).
    assert len(thread_starts.started) == 1
    stats = workers.pool_stats()
    assert stats is not None and stats.leases in (2, 3) and stats.leased == 0


async def test_nested_bridges_come_back_to_the_same_worker() -> None:
    async def inner() -> threading.Thread:
        return await sync_to_async(current_thread)()

    def view() -> tuple[threading.Thread, threading.Thread]:
        return current_thread(), async_to_sync(inner)()

    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=1):
        async with pooled_context():
            outer, nested = await asyncio.wait_for(sync_to_async(view)(), TIMEOUT)
    assert outer is nested
    assert outer.name.startswith("async-toolkit-worker-")


async def test_none_restores_one_thread_per_context() -> None:
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=None):
        context = pooled_context()
        assert type(context) is ThreadSensitiveContext
        async with context:
            thread = await on_worker()
        async with pooled_context():
            other = await on_worker()
    assert thread is not other
    assert not thread.name.startswith("async-toolkit-worker-")
    assert workers.pool_stats() is None


async def test_inside_another_context_a_pooled_context_does_nothing() -> None:
    async with ThreadSensitiveContext() as outer, pooled_context():
        assert SyncToAsync.thread_sensitive_context.get() is outer
        thread = await on_worker()
    assert not thread.name.startswith("async-toolkit-worker-")


async def test_shutdown_joins_the_threads_and_a_later_lease_starts_a_new_pool() -> None:
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=2):

        async def unit() -> threading.Thread:
            async with pooled_context():
                thread = await on_worker()
                await asyncio.sleep(0)
                return thread

        threads = set(await asyncio.gather(unit(), unit(), unit()))
        assert all(thread.is_alive() for thread in threads)
        await asyncio.to_thread(workers.shutdown_pool, TIMEOUT)
        assert not any(thread.is_alive() for thread in threads)
        assert workers.pool_stats() is None
        workers.shutdown_pool()  # twice is fine
        async with pooled_context():
            assert (await on_worker()) not in threads


async def test_shutdown_waits_for_a_leased_worker_to_finish() -> None:
    loop = asyncio.get_running_loop()
    release = threading.Event()
    holding = asyncio.Event()

    def hold() -> str:
        loop.call_soon_threadsafe(holding.set)
        release.wait(TIMEOUT)
        return "done"

    async def unit() -> str:
        async with pooled_context():
            return await sync_to_async(hold)()

    task = asyncio.create_task(unit())
    await holding.wait()
    pool = workers.get_pool()
    assert pool is not None
    closing = asyncio.create_task(asyncio.to_thread(pool.close, TIMEOUT))
    await asyncio.sleep(0)
    assert not closing.done()
    release.set()
    assert await asyncio.wait_for(task, TIMEOUT) == "done"
    await asyncio.wait_for(closing, TIMEOUT)
    assert pool.stats().threads == 0


async def test_close_from_a_worker_does_not_wait_for_that_worker() -> None:
    async with pooled_context():
        pool = workers.get_pool()
        assert pool is not None
        thread = await on_worker()
        await asyncio.wait_for(sync_to_async(pool.close)(), TIMEOUT)  # no deadlock
        assert thread.is_alive()  # still leased by this context
    await asyncio.to_thread(thread.join, TIMEOUT)
    assert not thread.is_alive()  # it stopped when the lease ended


async def test_resize_down_stops_extra_workers_when_released() -> None:
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=3):

        async def unit() -> None:
            async with pooled_context():
                await on_worker()
                await asyncio.sleep(0)

        await asyncio.gather(unit(), unit(), unit())
        await settle()
        pool = workers.get_pool()
        assert pool is not None and pool.stats().threads == 3
        pool.resize(1)
        assert pool.stats().threads == 1
        with pytest.raises(ValueError, match="at least 1"):
            pool.resize(0)


async def test_errors_reach_the_caller_and_the_worker_survives() -> None:
    def fail() -> None:
        raise ZeroDivisionError("boom")

    async with pooled_context():
        with pytest.raises(ZeroDivisionError, match="boom"):
            await sync_to_async(fail)()
        thread = await on_worker()
    await settle()
    async with pooled_context():
        assert await on_worker() is thread


def test_fork_hook_forgets_the_parent_pool() -> None:
    async def use() -> None:
        async with pooled_context():
            await on_worker()

    asyncio.run(use())
    pool = workers.get_pool()
    assert pool is not None
    from django_async_toolkit.workers import context as pool_context
    from django_async_toolkit.workers import pool as pool_module

    lock = pool_module._lock
    pool_context._forget_after_fork()
    try:
        assert workers.pool_stats() is None
        assert pool_module._lock is not lock
    finally:
        pool_module._lock = lock
        pool.close(TIMEOUT)
