"""``django_async_toolkit.sync``: db_sync_to_async, ensure_async/ensure_sync, run_blocking.

Database tests run on SQLite (in memory) and, with ``DATABASE_URL``, on PostgreSQL.
SQLite's ``close()`` does nothing for an in-memory database, so closing is observed by recording
the calls to the backend's ``close()``; on PostgreSQL the server's ``pg_stat_activity`` is the
witness.
Connections that a test leaves open on purpose (plain ``sync_to_async``) are closed at its end.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import (
    SyncToAsync,
    ThreadSensitiveContext,
    async_to_sync,
    iscoroutinefunction,
    markcoroutinefunction,
    sync_to_async,
)
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path

from django_async_toolkit import sync
from django_async_toolkit.sync import (
    db_sync_to_async,
    ensure_async,
    ensure_sync,
    is_async_callable,
    run_blocking,
    shutdown_blocking_pool,
)
from tests.models import Item

IS_POSTGRES = connection.vendor == "postgresql"
WAIT = 10  # seconds; only ever reached when a test fails


# --- Observing connections -----------------------------------------------------------------------


class Probe:
    """Runs a query on the calling thread and remembers which connection it used.

    ``close()`` of the backend class in use is patched to record the connections it closes; on
    PostgreSQL the server's backend pid of each connection is recorded too.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.used: dict[int, BaseDatabaseWrapper] = {}
        self.closed: set[int] = set()
        self.pids: set[int] = set()
        self.connects = 0
        backend = type(connections[DEFAULT_DB_ALIAS])
        original_close = backend.close
        original_connect = backend.connect

        def close(wrapper: BaseDatabaseWrapper) -> None:
            if wrapper.connection is not None:
                self.closed.add(id(wrapper))
            original_close(wrapper)

        def connect(wrapper: BaseDatabaseWrapper) -> None:
            self.connects += 1
            original_connect(wrapper)

        monkeypatch.setattr(backend, "close", close)
        monkeypatch.setattr(backend, "connect", connect)

    def touch(self) -> BaseDatabaseWrapper:
        """Query on this thread's connection (opening it if need be) and record it as open."""
        wrapper = connections[DEFAULT_DB_ALIAS]
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()" if IS_POSTGRES else "SELECT 1")
            (value,) = cursor.fetchone()
        if IS_POSTGRES:
            self.pids.add(value)
        self.used[id(wrapper)] = wrapper
        self.closed.discard(id(wrapper))
        return wrapper

    def was_closed(self, wrapper: BaseDatabaseWrapper) -> bool:
        return id(wrapper) in self.closed

    def left_open(self) -> list[BaseDatabaseWrapper]:
        """The connections used and not closed since (by ``close()`` calls)."""
        return [w for key, w in self.used.items() if key not in self.closed]

    def server_pids(self) -> set[int]:
        """The recorded PostgreSQL backends that the server still has."""
        import psycopg

        params = connection.settings_dict
        with psycopg.connect(
            dbname=params["NAME"],
            user=params["USER"],
            password=params["PASSWORD"] or None,
            host=params["HOST"],
            port=params["PORT"],
            autocommit=True,
        ) as admin:
            rows = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [list(self.pids)]
            ).fetchall()
        return {pid for (pid,) in rows}

    def wait_server_closed(self) -> set[int]:
        """Poll until the server has dropped the recorded backends (it exits them a bit later)."""
        deadline = time.monotonic() + WAIT
        while (remaining := self.server_pids()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return remaining

    def really_close_all(self) -> None:
        """Close what the test left open, also SQLite's in-memory connections."""
        for wrapper in self.used.values():
            raw = wrapper.connection
            if raw is not None and wrapper is not connections[DEFAULT_DB_ALIAS]:
                raw.close()
                wrapper.connection = None


def close_for_real() -> None:
    """Close this thread's connection; SQLite's close() keeps an in-memory database open."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    if wrapper.connection is not None:
        BaseDatabaseWrapper.close(wrapper)


@pytest.fixture(autouse=True)
def close_thread_sensitive_connection() -> Iterator[None]:
    """Close what a test left on asgiref's process-wide thread-sensitive thread."""
    yield
    SyncToAsync.single_thread_executor.submit(close_for_real).result(timeout=WAIT)


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Probe]:
    p = Probe(monkeypatch)
    yield p
    p.really_close_all()


# --- db_sync_to_async: wrapping ------------------------------------------------------------------


def double(x: int) -> int:
    """Double it."""
    return 2 * x


async def adouble(x: int) -> int:
    return 2 * x


class AsyncCallable:
    async def __call__(self, x: int) -> int:
        return 3 * x


class SyncCallable:
    def __call__(self, x: int) -> int:
        return 5 * x


class Methods:
    factor = 7

    def times(self, x: int) -> int:
        return self.factor * x

    async def atimes(self, x: int) -> int:
        return self.factor * x

    @db_sync_to_async
    def wrapped_times(self, x: int) -> int:
        return self.factor * x


async def agen() -> AsyncIterator[int]:
    yield 1


#: One async callable of each kind, and what it returns for 3.
ASYNC_KINDS = [
    pytest.param(adouble, 6, id="function"),
    pytest.param(AsyncCallable(), 9, id="async __call__"),
    pytest.param(functools.partial(adouble), 6, id="partial"),
    pytest.param(Methods().atimes, 21, id="method"),
]
#: One sync callable of each kind, and what it returns for 3.
SYNC_KINDS = [
    pytest.param(double, 6, id="function"),
    pytest.param(SyncCallable(), 15, id="__call__"),
    pytest.param(functools.partial(lambda x, y: x + y, 1), 4, id="partial"),
    pytest.param(Methods().times, 21, id="method"),
]


async def test_bare_decorator_and_options() -> None:
    bare = db_sync_to_async(double)
    assert await bare(2) == 4
    assert bare.__name__ == "double"
    assert bare.__doc__ == "Double it."
    assert iscoroutinefunction(bare)

    @db_sync_to_async
    def decorated(x: int) -> int:
        return x + 1

    @db_sync_to_async(thread_sensitive=False)
    def with_options() -> int:
        return threading.get_ident()

    assert await decorated(1) == 2
    assert await with_options() != threading.get_ident()
    assert await Methods().wrapped_times(2) == 14
    assert await db_sync_to_async(Methods().times)(3) == 21


async def test_thread_sensitive_calls_share_the_thread_sensitive_thread() -> None:
    sensitive = await db_sync_to_async(threading.get_ident)()
    assert sensitive == await sync_to_async(threading.get_ident)()
    assert sensitive != threading.get_ident()
    elsewhere = await db_sync_to_async(threading.get_ident, thread_sensitive=False)()
    assert elsewhere not in {sensitive, threading.get_ident()}


@pytest.mark.parametrize(("func", "result"), ASYNC_KINDS)
def test_wrapping_async_is_a_type_error(func: Any, result: int) -> None:
    with pytest.raises(
        TypeError, match=r"db_sync_to_async\(\) wraps sync functions, and .* is async"
    ):
        db_sync_to_async(func)


def test_wrapping_bad_things_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"db_sync_to_async\(\) needs a callable; got 42 \(int\)"):
        db_sync_to_async(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"tests\.test_sync\.agen: it is an async generator"):
        db_sync_to_async(agen)


def test_is_async_callable() -> None:
    assert is_async_callable(adouble)
    assert is_async_callable(functools.partial(functools.partial(adouble), 1))
    assert is_async_callable(AsyncCallable())
    assert is_async_callable(Methods().atimes)
    assert is_async_callable(markcoroutinefunction(lambda: None))
    assert not is_async_callable(AsyncCallable)  # calling the class makes an instance
    assert not is_async_callable(double)
    assert not is_async_callable(SyncCallable())
    assert not is_async_callable(Methods().times)


# --- db_sync_to_async: connections ---------------------------------------------------------------


async def wait_for_event(event: threading.Event) -> None:
    assert await asyncio.get_running_loop().run_in_executor(None, event.wait, WAIT)


async def finish_thread_sensitive_work() -> None:
    """Return once the thread-sensitive thread has finished what was queued on it before."""
    await sync_to_async(lambda: None)()


async def cancel_during_call(
    wrap: Callable[..., Any], probe: Probe
) -> tuple[BaseDatabaseWrapper, threading.Event]:
    """Cancel the task awaiting a thread-sensitive call while the call uses the database.

    Returns the connection the call used and the event that lets the call return.
    """
    started, release = threading.Event(), threading.Event()
    used: list[BaseDatabaseWrapper] = []

    def slow() -> None:
        used.append(probe.touch())
        started.set()
        release.wait(WAIT)

    task = asyncio.create_task(wrap(slow)())
    await wait_for_event(started)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return used[0], release


@pytest.mark.django_db(transaction=True)
async def test_closes_after_a_call(probe: Probe) -> None:
    wrapper = await db_sync_to_async(probe.touch)()
    assert probe.was_closed(wrapper)
    assert probe.left_open() == []


@pytest.mark.django_db(transaction=True)
async def test_closes_after_a_call_on_another_thread(probe: Probe) -> None:
    wrapper = await db_sync_to_async(probe.touch, thread_sensitive=False)()
    assert probe.was_closed(wrapper)


@pytest.mark.django_db(transaction=True)
async def test_closes_after_an_error(probe: Probe) -> None:
    used: list[BaseDatabaseWrapper] = []

    def fail() -> None:
        used.append(probe.touch())
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await db_sync_to_async(fail)()
    assert probe.was_closed(used[0])


@pytest.mark.django_db(transaction=True)
async def test_closes_when_the_awaiting_task_is_cancelled(probe: Probe) -> None:
    wrapper, release = await cancel_during_call(db_sync_to_async, probe)
    assert not probe.was_closed(wrapper)  # the thread is still in the call
    release.set()
    await finish_thread_sensitive_work()
    assert probe.was_closed(wrapper)


@pytest.mark.django_db(transaction=True)
async def test_closes_a_stale_connection_before_the_call(probe: Probe) -> None:
    # Plain sync_to_async leaves its connection open on the thread-sensitive thread ...
    stale = await sync_to_async(probe.touch)()
    assert not probe.was_closed(stale)

    def check() -> bool:
        return probe.was_closed(stale)

    # ... and the next db_sync_to_async call on that thread closes it before it starts.
    assert await db_sync_to_async(check)()


@pytest.mark.parametrize("first_call", ["before", "after"])
@pytest.mark.django_db(transaction=True)
def test_checks_connections_opened_before_or_after_its_first_call_on_a_thread(
    probe: Probe, first_call: str
) -> None:
    # The toolkit learns a thread's connections by one scan on its first call there, then from
    # connection_created: a connection opened before that first call, or after it, is found.
    # A new thread parked in async_to_sync runs the thread-sensitive calls itself.
    closed: list[bool] = []

    def on_a_new_thread() -> None:
        if first_call == "before":
            async_to_sync(db_sync_to_async(lambda: None))()
        opened = probe.touch()
        closed.append(async_to_sync(db_sync_to_async(lambda: probe.was_closed(opened)))())
        connections.close_all()

    thread = threading.Thread(target=on_a_new_thread)
    thread.start()
    thread.join(WAIT)
    assert closed == [True]


@pytest.mark.django_db(transaction=True)
def test_a_wrapper_outside_connections_is_left_alone() -> None:
    # PostgreSQL's _nodb_cursor() connects a temporary wrapper whose alias ("__no_db__") is not in
    # DATABASES: noting the connection must neither fail nor keep the wrapper.
    sync._thread_connections()  # this thread's connections are now followed
    temporary = connections[DEFAULT_DB_ALIAS].copy(alias="__no_db__")
    try:
        temporary.ensure_connection()
        assert temporary not in sync._thread_connections()
    finally:
        if temporary.connection is not None:
            BaseDatabaseWrapper.close(temporary)  # SQLite's close() keeps in-memory ones open


@pytest.mark.django_db(transaction=True)
async def test_never_opens_a_connection(probe: Probe) -> None:
    for thread_sensitive in (True, False):
        assert await db_sync_to_async(double, thread_sensitive=thread_sensitive)(1) == 2
    assert probe.connects == 0


async def test_works_without_database_access() -> None:
    """pytest-django blocks database access here: opening a connection would fail."""
    assert await db_sync_to_async(double)(4) == 8


@pytest.mark.django_db(transaction=True)
async def test_keeps_a_persistent_connection_and_closes_a_broken_one(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    wrapper = await db_sync_to_async(probe.touch)()
    assert not probe.was_closed(wrapper)
    assert wrapper.connection is not None

    def fail_query() -> None:
        probe.touch()
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    # An error, and the connection still works: kept, and the error flag cleared.
    with pytest.raises(Exception, match="no_such_table"):
        await db_sync_to_async(fail_query)()
    assert not probe.was_closed(wrapper)
    assert wrapper.errors_occurred is False

    # An error, and the connection is unusable: closed.
    monkeypatch.setattr(type(wrapper), "is_usable", lambda self: False)
    with pytest.raises(Exception, match="no_such_table"):
        await db_sync_to_async(fail_query)()
    assert probe.was_closed(wrapper)


@pytest.mark.django_db(transaction=True)
async def test_closes_a_connection_left_without_autocommit(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)

    def leave_autocommit_off() -> BaseDatabaseWrapper:
        wrapper = probe.touch()
        transaction.set_autocommit(False)
        return wrapper

    wrapper = await db_sync_to_async(leave_autocommit_off)()
    assert probe.was_closed(wrapper)
    await db_sync_to_async(lambda: transaction.set_autocommit(True))()


@pytest.mark.django_db
def test_never_closes_inside_an_atomic_block(probe: Probe) -> None:
    """Sync path: async code run with async_to_sync from a test inside a transaction."""
    Item.objects.create(name="in the test's transaction")
    main_wrapper = connections[DEFAULT_DB_ALIAS]
    assert main_wrapper.in_atomic_block

    def count() -> tuple[int, int]:
        probe.touch()
        return threading.get_ident(), Item.objects.count()

    async def view_code() -> tuple[int, int]:
        return await db_sync_to_async(count)()

    thread, items = async_to_sync(view_code)()
    assert thread == threading.get_ident()  # thread-sensitive: back on this thread
    assert items == 1  # inside the test's transaction ...
    assert not probe.was_closed(main_wrapper)  # ... which is left alone
    assert main_wrapper.in_atomic_block


@pytest.mark.django_db(transaction=True)
def test_closes_the_connection_of_the_sync_thread_outside_a_transaction(probe: Probe) -> None:
    """Sync path: the call comes back to this thread, and cleans up this thread's connection."""
    main_wrapper = probe.touch()

    async def view_code() -> BaseDatabaseWrapper:
        return await db_sync_to_async(probe.touch)()

    assert async_to_sync(view_code)() is main_wrapper
    assert probe.was_closed(main_wrapper)
    assert Item.objects.count() == 0  # the next query opens a new connection


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("wrapper_kind", ["db_sync_to_async", "sync_to_async"])
async def test_many_calls_errors_and_cancellations(probe: Probe, wrapper_kind: str) -> None:
    """On PostgreSQL the server's own list of connections is the witness."""
    wrap: Callable[..., Any] = (
        db_sync_to_async if wrapper_kind == "db_sync_to_async" else sync_to_async
    )

    def work(i: int) -> int:
        probe.touch()
        if i % 4 == 0:
            raise ValueError(i)
        return i

    calls = [wrap(work, thread_sensitive=i % 2 == 0)(i) for i in range(24)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, ValueError) for r in results) == 6

    for _ in range(3):
        _, release = await cancel_during_call(wrap, probe)
        release.set()
    await finish_thread_sensitive_work()

    if wrapper_kind == "db_sync_to_async":
        assert probe.left_open() == []
        if IS_POSTGRES:
            assert probe.pids
            assert probe.wait_server_closed() == set()
    else:
        assert probe.left_open() != []
        if IS_POSTGRES:
            assert probe.server_pids()  # still connected after the calls returned


# --- db_sync_to_async under a request: both paths ------------------------------------------------


@db_sync_to_async
def count_items() -> int:
    return Item.objects.count()


async def async_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"items": await count_items(), "thread": threading.get_ident()})


async def acount_items_plus(extra: int) -> int:
    return await count_items() + extra


def sync_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"items": ensure_sync(acount_items_plus)(10)})


urlpatterns = [path("async/", async_view), path("sync/", sync_view)]


@pytest.mark.urls("tests.test_sync")
@pytest.mark.django_db(transaction=True)
async def test_async_view_on_async_path(async_client: AsyncClient) -> None:
    await Item.objects.acreate(name="one")
    response = await async_client.get("/async/")
    assert response.json()["items"] == 1


@pytest.mark.urls("tests.test_sync")
@pytest.mark.django_db
def test_sync_view_on_sync_path(client: Client) -> None:
    Item.objects.create(name="one")
    assert client.get("/sync/").json() == {"items": 11}
    assert client.get("/async/").json()["items"] == 1


# --- ensure_async / ensure_sync ------------------------------------------------------------------


@pytest.mark.parametrize(("func", "result"), ASYNC_KINDS)
def test_ensure_async_passes_async_through(func: Any, result: int) -> None:
    assert ensure_async(func) is func


@pytest.mark.parametrize(("func", "expected"), SYNC_KINDS)
async def test_ensure_async_adapts_sync(func: Any, expected: int) -> None:
    adapted = ensure_async(func)
    assert iscoroutinefunction(adapted)
    assert await adapted(3) == expected


@pytest.mark.parametrize(("func", "result"), SYNC_KINDS)
def test_ensure_sync_passes_sync_through(func: Any, result: int) -> None:
    assert ensure_sync(func) is func


@pytest.mark.parametrize(("func", "expected"), ASYNC_KINDS)
def test_ensure_sync_adapts_async(func: Any, expected: int) -> None:
    adapted = ensure_sync(func)
    assert not iscoroutinefunction(adapted)
    assert adapted(3) == expected


def test_ensure_sync_wrapper_does_not_look_async() -> None:
    marked = markcoroutinefunction(lambda: asyncio.sleep(0, "done"))
    adapted = ensure_sync(marked)
    assert not iscoroutinefunction(adapted)
    assert adapted() == "done"


async def test_ensure_sync_with_a_running_loop_says_what_to_do() -> None:
    adapted = ensure_sync(adouble)
    with pytest.raises(
        RuntimeError,
        match=r"ensure_sync\(tests\.test_sync\.adouble\) was called on a thread that is running "
        r"an event loop.*`await` it directly.*ensure_async\(tests\.test_sync\.adouble\)",
    ):
        adapted(1)


async def test_ensure_sync_from_a_sync_to_async_thread_uses_the_callers_loop() -> None:
    threads: list[int] = []

    async def where(x: int) -> int:
        threads.append(threading.get_ident())
        return x

    assert await sync_to_async(ensure_sync(where))(5) == 5
    assert threads == [threading.get_ident()]


@pytest.mark.parametrize("adapter", [ensure_async, ensure_sync])
def test_ensure_rejects_bad_input(adapter: Callable[[Any], Any]) -> None:
    name = adapter.__name__
    with pytest.raises(TypeError, match=rf"{name}\(\) needs a callable; got None"):
        adapter(None)
    with pytest.raises(
        TypeError, match=rf"{name}\(\) cannot adapt .*agen: it is an async generator"
    ):
        adapter(agen)


# --- run_blocking --------------------------------------------------------------------------------


@pytest.fixture
def fresh_pool() -> Iterator[None]:
    shutdown_blocking_pool()
    yield
    shutdown_blocking_pool()


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


@pytest.mark.usefixtures("fresh_pool")
async def test_run_blocking_result_arguments_and_context() -> None:
    request_id.set("r-1")

    def work(a: int, b: int, *, c: int) -> tuple[int, str, str]:
        return a + b + c, request_id.get(), threading.current_thread().name

    total, seen_id, thread_name = await run_blocking(work, 1, 2, c=3)
    assert (total, seen_id) == (6, "r-1")
    assert thread_name.startswith("async-toolkit-blocking")


@pytest.mark.usefixtures("fresh_pool")
async def test_run_blocking_exception_keeps_its_traceback() -> None:
    def deep_failure() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError) as info:
        await run_blocking(deep_failure)
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "deep_failure" in frames


@pytest.mark.usefixtures("fresh_pool")
async def test_run_blocking_timeout() -> None:
    release = threading.Event()

    def stuck() -> str:
        release.wait(WAIT)
        return "late"

    try:
        with pytest.raises(
            TimeoutError, match=r"run_blocking\(.*stuck\) did not finish within 0\.05 seconds"
        ):
            await run_blocking(stuck, timeout=0.05)
    finally:
        release.set()
    assert await run_blocking(stuck, timeout=WAIT) == "late"


@pytest.mark.usefixtures("fresh_pool")
async def test_run_blocking_passes_the_functions_own_timeout_error() -> None:
    def own_timeout() -> None:
        raise TimeoutError("the upstream timed out")

    with pytest.raises(TimeoutError, match="^the upstream timed out$"):
        await run_blocking(own_timeout, timeout=WAIT)


@pytest.mark.parametrize("timeout", [0, -1, True, "1", float("nan")])
async def test_run_blocking_rejects_a_bad_timeout(timeout: Any) -> None:
    with pytest.raises(ValueError, match=r"run_blocking\(\) timeout is .*greater than 0, or None"):
        await run_blocking(double, 1, timeout=timeout)


async def test_run_blocking_rejects_async_and_non_callables() -> None:
    with pytest.raises(TypeError, match=r"run_blocking\(\) runs sync functions.*adouble is async"):
        await run_blocking(adouble, 1)
    with pytest.raises(TypeError, match=r"run_blocking\(\) needs a callable"):
        await run_blocking("double")  # type: ignore[arg-type]


@pytest.mark.usefixtures("fresh_pool")
async def test_run_blocking_runs_during_a_long_thread_sensitive_call() -> None:
    release = threading.Event()

    def long_thread_sensitive_call() -> int:
        release.wait(WAIT)
        return threading.get_ident()

    long_call = asyncio.create_task(sync_to_async(long_thread_sensitive_call)())
    blocking_thread = await run_blocking(threading.get_ident)
    assert not long_call.done()
    release.set()
    assert await long_call != blocking_thread


@pytest.mark.usefixtures("fresh_pool")
@override_settings(ASYNC_TOOLKIT_BLOCKING_WORKERS=2)
async def test_run_blocking_pool_is_bounded() -> None:
    release = threading.Event()
    both_running = threading.Barrier(2)
    third_ran_after_release: list[bool] = []

    def blocker() -> None:
        both_running.wait(WAIT)
        release.wait(WAIT)

    def third() -> None:
        third_ran_after_release.append(release.is_set())

    blockers = [asyncio.ensure_future(run_blocking(blocker)) for _ in range(2)]
    waiting = asyncio.ensure_future(run_blocking(third))
    # Both workers are busy; the third call waits for one of them.
    done, _ = await asyncio.wait([waiting], timeout=0.2)
    assert not done
    release.set()
    await asyncio.gather(*blockers, waiting)
    assert third_ran_after_release == [True]


@pytest.mark.usefixtures("fresh_pool")
async def test_pool_size_is_read_when_the_pool_is_created() -> None:
    def pool_size() -> int | None:
        return sync._pool._max_workers if sync._pool is not None else None

    with override_settings(ASYNC_TOOLKIT_BLOCKING_WORKERS=3):
        await run_blocking(double, 1)
        assert pool_size() == 3
    with override_settings(ASYNC_TOOLKIT_BLOCKING_WORKERS=5):
        await run_blocking(double, 1)
        assert pool_size() == 3  # the pool exists: the setting is not read again
        shutdown_blocking_pool()
        assert pool_size() is None
        await run_blocking(double, 1)
        assert pool_size() == 5


@pytest.mark.usefixtures("fresh_pool")
@override_settings(ASYNC_TOOLKIT_BLOCKING_WORKERS=0)
async def test_invalid_pool_size_names_the_setting() -> None:
    with pytest.raises(ImproperlyConfigured, match="ASYNC_TOOLKIT_BLOCKING_WORKERS is 0"):
        await run_blocking(double, 1)


async def test_shutdown_blocking_pool_is_idempotent() -> None:
    await run_blocking(double, 1)
    pool = sync._pool
    assert pool is not None
    shutdown_blocking_pool(wait=False)
    shutdown_blocking_pool()
    assert sync._pool is None
    assert await run_blocking(double, 2) == 4
    assert sync._pool is not pool
    shutdown_blocking_pool()


async def test_forked_child_forgets_the_pool() -> None:
    await run_blocking(double, 1)
    pool = sync._pool
    assert pool is not None
    try:
        sync._forget_pool_after_fork()
        assert sync._pool is None
    finally:
        pool.shutdown()


@pytest.mark.usefixtures("fresh_pool")
@pytest.mark.django_db(transaction=True)
async def test_run_blocking_closes_connections_the_call_opened(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    wrapper = await run_blocking(probe.touch)
    assert probe.was_closed(wrapper)
    if IS_POSTGRES:
        assert probe.wait_server_closed() == set()


@pytest.mark.usefixtures("fresh_pool")
async def test_run_blocking_without_database_access() -> None:
    """A call that only looks at a connection object neither opens nor closes a connection."""
    assert await run_blocking(lambda: connections[DEFAULT_DB_ALIAS].alias) == DEFAULT_DB_ALIAS


# --- Inside a request the connection is left to the request's end --------------------------------


@pytest.mark.django_db(transaction=True)
async def test_inside_a_thread_sensitive_context_the_connection_waits_for_its_end(
    probe: Probe,
) -> None:
    """Three calls of one request share one connection, as in Django, at CONN_MAX_AGE = 0."""
    async with ThreadSensitiveContext():
        used = [await db_sync_to_async(probe.touch)() for _ in range(3)]
        assert used[0] is used[1] is used[2]
        assert probe.left_open() == [used[0]]  # nothing closed it between the calls
        await sync_to_async(close_for_real)()  # what the request's end does


@pytest.mark.django_db(transaction=True)
async def test_outside_a_request_each_call_still_cleans_up(probe: Probe) -> None:
    for _ in range(2):
        wrapper = await db_sync_to_async(probe.touch)()
        assert probe.was_closed(wrapper)


async def three_calls_view(request: HttpRequest) -> JsonResponse:
    for _ in range(3):
        await count_items()
    return JsonResponse({"closed_during_the_view": len(CLOSES)})


CLOSES: list[str] = []
urlpatterns.append(path("three/", three_calls_view))


@pytest.mark.urls("tests.test_sync")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("handler", ["django", "toolkit"])
async def test_a_request_closes_its_connection_once_at_its_end(
    monkeypatch: pytest.MonkeyPatch, handler: str
) -> None:
    import json

    from django.core.asgi import get_asgi_application as django_application

    from django_async_toolkit.asgi import get_asgi_application
    from tests.asgi_helpers import call, settle_pool

    backend = type(connections[DEFAULT_DB_ALIAS])
    original_close = backend.close

    def close(wrapper: BaseDatabaseWrapper) -> None:
        if wrapper.connection is not None:
            CLOSES.append(wrapper.alias)
        original_close(wrapper)

    monkeypatch.setattr(backend, "close", close)
    CLOSES.clear()
    app = get_asgi_application() if handler == "toolkit" else django_application()
    response = await call(app, "/three/")
    assert json.loads(response.body) == {"closed_during_the_view": 0}
    await settle_pool()
    # Closed at the request's end (Django's request_finished, or a pooled worker's
    # housekeeping when its lease ends, just after the request).
    assert CLOSES and set(CLOSES) == {"default"}
