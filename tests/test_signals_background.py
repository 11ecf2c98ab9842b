"""Tests of background dispatch: ``send_background``, ``background_receiver`` and draining.

Every test drains what it sent; the module's fixture checks that nothing is left pending and stops
the private loop thread at the end.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import django
import pytest
from asgiref.sync import async_to_sync, markcoroutinefunction, sync_to_async
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver
from django.test import override_settings

from django_async_toolkit import _compat
from django_async_toolkit.signals import (
    asend,
    background_receiver,
    drain_background,
    drain_background_sync,
    is_background_receiver,
    send_background,
    stop_background_loop,
)
from tests.models import Item
from tests.signals_fixtures import ThreadCloses, worker_closes_fixture  # noqa: F401 - a fixture

LOGGER = "django_async_toolkit.signals"
PRIVATE_THREAD = "django-async-toolkit-signals"

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


@pytest.fixture(autouse=True)
def nothing_left_pending() -> Iterator[None]:
    yield
    drain_background_sync(timeout=10)


@pytest.fixture(autouse=True, scope="module")
def private_loop_stopped() -> Iterator[None]:
    yield
    stop_background_loop()


def run_in_plain_thread(func: Any) -> None:
    """Run ``func`` on a new thread without an event loop and wait for it; re-raise its error."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            func()
        except BaseException as error:  # pragma: no cover - only when the test fails
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:  # pragma: no cover - only when the test fails
        raise errors[0]


class Seen:
    """What a background receiver saw: its loop, thread and context."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.request_id: str | None = None
        self.kwargs: dict[str, Any] = {}

    async def __call__(self, **kwargs: Any) -> str:
        self.loop = asyncio.get_running_loop()
        self.thread = threading.current_thread()
        self.request_id = request_id.get()
        self.kwargs = kwargs
        self.done.set()
        return "seen"


def connect_seen(signal: Signal) -> Seen:
    seen = Seen()
    signal.connect(seen.__call__, weak=False)
    return seen


# --- send_background: where it runs -----------------------------------------------------------


async def test_from_async_code_returns_at_once_and_drain_waits() -> None:
    signal = Signal()
    release = asyncio.Event()
    finished = asyncio.Event()

    async def slow(**kwargs: Any) -> None:
        await release.wait()
        finished.set()

    signal.connect(slow)
    send_background(signal, sender=None)
    assert not finished.is_set()

    release.set()
    await drain_background(timeout=10)
    assert finished.is_set()


async def test_from_async_code_runs_on_the_callers_loop_in_a_fresh_context() -> None:
    signal = Signal()
    seen = connect_seen(signal)
    request_id.set("request-1")

    send_background(signal, sender=int, value=1)
    await drain_background()

    assert seen.loop is asyncio.get_running_loop()
    assert seen.request_id == "none"
    assert seen.kwargs == {"signal": signal, "sender": int, "value": 1}


async def test_from_a_sync_to_async_thread_runs_on_the_loop_it_serves() -> None:
    signal = Signal()
    seen = connect_seen(signal)

    await sync_to_async(send_background)(signal, sender=None)
    await drain_background(timeout=10)

    assert seen.loop is asyncio.get_running_loop()
    assert seen.thread is threading.current_thread()


def test_from_a_plain_thread_runs_on_the_private_loop_thread() -> None:
    signal = Signal()
    seen = connect_seen(signal)
    sync_threads: list[threading.Thread] = []

    def sync_receiver(**kwargs: Any) -> None:
        sync_threads.append(threading.current_thread())

    signal.connect(sync_receiver)
    run_in_plain_thread(lambda: send_background(signal, sender=None))
    drain_background_sync(timeout=10)

    assert seen.thread is not None and seen.thread.name == PRIVATE_THREAD
    # Sync receivers take one hop off the loop thread, as in asend().
    assert len(sync_threads) == 1 and sync_threads[0].name != PRIVATE_THREAD


def test_never_on_a_loop_that_async_to_sync_made_for_one_call() -> None:
    signal = Signal()
    release = threading.Event()
    seen_threads: list[str] = []

    async def outlives_the_call(**kwargs: Any) -> None:
        await asyncio.to_thread(release.wait)
        seen_threads.append(threading.current_thread().name)

    signal.connect(outlives_the_call)

    async def sends() -> asyncio.AbstractEventLoop:
        send_background(signal, sender=None)
        await sync_to_async(send_background)(signal, sender=None)  # via that loop's sync thread
        return asyncio.get_running_loop()

    loops: list[asyncio.AbstractEventLoop] = []
    run_in_plain_thread(lambda: loops.append(async_to_sync(sends)()))
    assert loops[0].is_closed()  # the one-call loop is gone, the dispatches are not

    release.set()
    drain_background_sync(timeout=10)
    assert seen_threads == [PRIVATE_THREAD, PRIVATE_THREAD]


def test_from_the_main_thread_in_sync_code() -> None:
    signal = Signal()
    seen = connect_seen(signal)
    send_background(signal, sender=None)
    drain_background_sync(timeout=10)
    assert seen.thread is not None and seen.thread.name == PRIVATE_THREAD


# --- send_background: failures, input, draining ------------------------------------------------


async def test_failures_are_logged_with_the_receivers_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal()

    async def fails(**kwargs: Any) -> None:
        raise ValueError("boom")

    ok = connect_seen(signal)
    signal.connect(fails)
    with caplog.at_level(logging.ERROR, LOGGER):
        send_background(signal, sender=None)
        await drain_background(timeout=10)

    assert ok.done.is_set()
    (record,) = caplog.records
    assert "test_failures_are_logged_with_the_receivers_name.<locals>.fails" in record.getMessage()
    assert "ValueError('boom')" in record.getMessage()


async def test_receivers_are_held_strongly_until_the_dispatch_ends() -> None:
    signal = Signal()
    release = asyncio.Event()
    calls = []

    async def local(**kwargs: Any) -> None:
        await release.wait()
        calls.append("local")

    signal.connect(local)  # weakly
    send_background(signal, sender=None)  # resolved now, while the receiver is alive
    reference = weakref.ref(local)
    del local
    gc.collect()
    assert reference() is not None  # the pending dispatch holds it
    release.set()
    await drain_background(timeout=10)
    assert calls == ["local"]


async def test_drain_timeout_names_what_did_not_finish() -> None:
    signal = Signal()
    release = asyncio.Event()

    async def waits_for_release(**kwargs: Any) -> None:
        await release.wait()

    signal.connect(waits_for_release)
    send_background(signal, sender=Item)

    with pytest.raises(TimeoutError) as info:
        await drain_background(timeout=0.05)
    message = str(info.value)
    assert "1 background signal dispatch(es) did not finish within 0.05 s" in message
    assert "send_background() from tests.models.Item to " in message
    assert "waits_for_release" in message

    release.set()
    await drain_background(timeout=10)


def test_drain_sync_timeout_names_what_did_not_finish() -> None:
    signal = Signal()
    release = threading.Event()

    async def waits_for_release(**kwargs: Any) -> None:
        await asyncio.to_thread(release.wait)

    signal.connect(waits_for_release)
    send_background(signal, sender=Item(pk=1))
    with pytest.raises(TimeoutError, match=r"from a tests\.models\.Item instance to"):
        drain_background_sync(timeout=0.05)
    release.set()
    drain_background_sync(timeout=10)


async def test_drain_waits_for_dispatches_sent_while_draining() -> None:
    signal, follow_up = Signal(), Signal()
    seen = connect_seen(follow_up)

    async def sends_more(**kwargs: Any) -> None:
        send_background(follow_up, sender=None)

    signal.connect(sends_more)
    send_background(signal, sender=None)
    await drain_background(timeout=10)
    assert seen.done.is_set()


async def test_bad_input_and_drain_on_a_loop_thread() -> None:
    with pytest.raises(TypeError, match="send_background"):
        send_background(object(), sender=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="greater than 0"):
        await drain_background(timeout=0)
    with pytest.raises(ValueError, match="greater than 0"):
        drain_background_sync(timeout=-1)
    with pytest.raises(RuntimeError, match="await drain_background"):
        drain_background_sync()


async def test_no_receivers_sends_nothing() -> None:
    signal = Signal(use_caching=True)
    send_background(signal, sender=None)
    receiver_for_int = connect_seen(signal)
    signal.disconnect(receiver_for_int.__call__)
    signal.connect(receiver_for_int.__call__, sender=int, weak=False)
    send_background(signal, sender=str)  # receivers exist, but none for str
    send_background(signal, sender=str)  # and now from the cache
    await drain_background(timeout=10)
    assert not receiver_for_int.done.is_set()


# --- The private loop ---------------------------------------------------------------------------


_Held = list[tuple[asyncio.AbstractEventLoop, "weakref.ref[asyncio.Event]"]]


def _send_dispatch_that_waits_on_a_weakly_held_event() -> tuple[threading.Event, _Held]:
    """Send a dispatch whose receiver waits on an Event that only its own frame holds strongly.

    Nothing outside the loop then refers to the dispatch's task: unless the toolkit keeps a
    strong reference to it, the garbage collector destroys it mid-dispatch.
    """
    signal = Signal()
    started = threading.Event()
    held: _Held = []

    async def waits(**kwargs: Any) -> None:
        event = asyncio.Event()
        held.append((asyncio.get_running_loop(), weakref.ref(event)))
        started.set()
        await event.wait()

    signal.connect(waits, weak=False)
    send_background(signal, sender=None)
    return started, held


def test_a_waiting_dispatch_on_the_private_loop_survives_garbage_collection() -> None:
    started, held = _send_dispatch_that_waits_on_a_weakly_held_event()
    assert started.wait(10)
    gc.collect()
    loop, ref = held[0]
    event = ref()
    assert event is not None, "the waiting dispatch was garbage-collected"
    loop.call_soon_threadsafe(event.set)
    del event
    drain_background_sync(timeout=10)


async def test_a_waiting_dispatch_on_the_callers_loop_survives_garbage_collection() -> None:
    started, held = _send_dispatch_that_waits_on_a_weakly_held_event()
    while not started.is_set():  # the dispatch runs on this loop: let it start
        await asyncio.sleep(0)
    gc.collect()
    event = held[0][1]()
    assert event is not None, "the waiting dispatch was garbage-collected"
    event.set()
    del event
    await drain_background(timeout=10)


def test_stop_background_loop_cancels_leftovers_and_restarts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal()
    started = threading.Event()

    async def waits_forever(**kwargs: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    signal.connect(waits_forever)
    send_background(signal, sender=None)
    started.wait(10)
    with caplog.at_level(logging.WARNING, LOGGER):
        stop_background_loop()
    assert any("was cancelled" in record.getMessage() for record in caplog.records)
    drain_background_sync(timeout=10)  # the cancelled dispatch is no longer pending
    stop_background_loop()  # idempotent

    seen = connect_seen(signal)
    signal.disconnect(waits_forever)
    send_background(signal, sender=None)  # starts a new loop thread
    drain_background_sync(timeout=10)
    assert seen.thread is not None and seen.thread.name == PRIVATE_THREAD
    stop_background_loop()
    assert not seen.thread.is_alive()


async def test_stop_background_loop_from_its_own_thread_is_refused() -> None:
    signal = Signal()
    errors: list[BaseException] = []

    async def stops(**kwargs: Any) -> None:
        try:
            stop_background_loop()
        except RuntimeError as error:
            errors.append(error)

    signal.connect(stops)
    await asyncio.to_thread(send_background, signal, None)
    await asyncio.to_thread(drain_background_sync, 10)
    (error,) = errors
    assert "own signal loop" in str(error)


# --- Database access from a background dispatch ----------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_background_dispatch_may_use_the_orm_from_a_sync_to_async_thread(
    worker_closes: ThreadCloses,
) -> None:
    signal = Signal()
    threads: list[str] = []
    # The two dispatches write from two threads; the in-memory SQLite test database (shared
    # cache) answers a second concurrent writer "database table is locked" at once, where a
    # real database would wait: take turns.
    one_writer = asyncio.Lock()

    async def creates(name: str, **kwargs: Any) -> None:
        async with one_writer:
            await Item.objects.acreate(name=name)
        threads.append(await sync_to_async(lambda: threading.current_thread().name)())

    signal.connect(creates)

    def sync_view_code() -> None:
        send_background(signal, sender=None, name="from sync")

    await sync_to_async(sync_view_code)()
    send_background(signal, sender=None, name="from async")
    await drain_background(timeout=10)
    names = sorted([item.name async for item in Item.objects.all()])
    assert names == ["from async", "from sync"]
    # Each dispatch had a thread and a connection of its own, closed when it ended.
    assert len(set(threads)) == 2
    if connection.vendor == "sqlite":
        # A pooled worker closes them in the housekeeping that ends its lease, which may run
        # just after drain_background() saw the dispatch finish.
        closes = await asyncio.to_thread(worker_closes.wait_for, len(threads))
        assert sorted(closes) == sorted(threads)


# --- background_receiver -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("on_commit", [False, True])
async def test_asave_does_not_wait_for_a_background_receiver(
    on_commit: bool, worker_closes: list[str]
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    done: list[tuple[str, bool]] = []

    @background_receiver(post_save, sender=Item, on_commit=on_commit, dispatch_uid="asave-test")
    async def notify(sender: type[Item], instance: Item, created: bool, **kwargs: Any) -> None:
        started.set()
        await release.wait()  # stands for an HTTP call that has not answered yet
        done.append((instance.name, created))

    try:
        await Item(name="saved").asave()  # returns although the receiver has not finished
        assert done == []
        await started.wait()
        release.set()
        await drain_background(timeout=10)
        assert done == [("saved", True)]
    finally:
        assert post_save.disconnect(sender=Item, dispatch_uid="asave-test")
        await sync_to_async(
            lambda: connection.close()
        )()  # asave()'s thread: asgiref's, outside a request


@pytest.mark.skipif(django.VERSION < (5, 0), reason="4.2 never awaits an async receiver")
@pytest.mark.django_db(transaction=True)
async def test_the_pitfall_a_plain_async_receiver_makes_asave_wait(
    worker_closes: list[str],
) -> None:
    started = threading.Event()
    release = threading.Event()

    @receiver(post_save, sender=Item, dispatch_uid="pitfall")
    async def notify(**kwargs: Any) -> None:
        started.set()
        await asyncio.to_thread(release.wait)

    try:
        save = asyncio.create_task(Item(name="waits").asave())
        await asyncio.to_thread(started.wait)
        await asyncio.sleep(0)
        assert not save.done()  # the save is held by the receiver
        release.set()
        await save
    finally:
        assert post_save.disconnect(sender=Item, dispatch_uid="pitfall")
        await sync_to_async(lambda: connection.close())()


@pytest.mark.django_db(transaction=True)
def test_on_commit_is_honoured_on_rollback_and_on_commit() -> None:
    calls: list[str] = []

    @background_receiver(post_save, sender=Item, on_commit=True, dispatch_uid="on-commit-test")
    async def on_saved(instance: Item, **kwargs: Any) -> None:
        calls.append(instance.name)

    try:
        with pytest.raises(RuntimeError, match="roll back"), transaction.atomic():
            Item.objects.create(name="rolled back")
            raise RuntimeError("roll back")
        drain_background_sync(timeout=10)
        assert calls == []

        with transaction.atomic():
            Item.objects.create(name="committed")
            drain_background_sync(timeout=10)
            assert calls == []  # not even scheduled before the commit
        drain_background_sync(timeout=10)
        assert calls == ["committed"]
    finally:
        assert post_save.disconnect(sender=Item, dispatch_uid="on-commit-test")


async def test_background_receiver_with_asend_and_send() -> None:
    signal = Signal()
    release = asyncio.Event()
    calls: list[Any] = []

    @background_receiver(signal)
    async def slow(sender: object, **kwargs: Any) -> None:
        await release.wait()
        calls.append(sender)

    responses = await asend(signal, sender="async")
    assert [response for _, response in responses] == [None]
    await sync_to_async(signal.send)(sender="sync")
    assert calls == []
    release.set()
    await drain_background(timeout=10)
    assert sorted(calls) == ["async", "sync"]


async def test_background_receiver_failure_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    signal = Signal()

    @background_receiver(signal)
    async def fails(**kwargs: Any) -> None:
        raise LookupError("gone")

    with caplog.at_level(logging.ERROR, LOGGER):
        signal.send(sender=None)  # the caller's loop: this is async code
        await drain_background(timeout=10)
    (record,) = caplog.records
    assert "test_background_receiver_failure_is_logged.<locals>.fails" in record.getMessage()
    assert record.exc_info is not None


def test_background_receiver_several_signals_sender_and_dispatch_uid() -> None:
    first, second = Signal(), Signal()
    calls: list[tuple[Signal, object]] = []

    async def record(signal: Signal, sender: object, **kwargs: Any) -> None:
        calls.append((signal, sender))

    decorated = background_receiver([first, second], sender=int, dispatch_uid="uid")(record)
    background_receiver(first, sender=int, dispatch_uid="uid")(record)  # same uid: not again
    assert decorated is record

    first.send(sender=int)
    first.send(sender=str)  # filtered out by sender
    second.send(sender=int)
    drain_background_sync(timeout=10)
    assert sorted(calls, key=lambda call: call[0] is second) == [(first, int), (second, int)]


def test_is_background_receiver_and_weak_connection() -> None:
    signal = Signal()

    async def plain(**kwargs: Any) -> None:
        pass

    @background_receiver(signal)
    async def in_background(**kwargs: Any) -> None:
        pass

    signal.connect(plain)
    dispatcher, plain_live = _receivers_in_order(signal)
    assert is_background_receiver(dispatcher)
    assert is_background_receiver(weakref.ref(dispatcher))
    assert is_background_receiver(in_background)
    assert not is_background_receiver(plain_live)
    assert not is_background_receiver(object())

    reference = weakref.ref(dispatcher)
    del dispatcher, in_background
    gc.collect()
    assert reference() is None  # connected weakly, as Django connects receivers
    assert not is_background_receiver(reference)
    assert _receivers_in_order(signal) == [plain]


def _receivers_in_order(signal: Signal) -> list[Any]:
    sync_receivers, async_receivers = _compat.signal_live_receivers(signal, None)
    return [*sync_receivers, *async_receivers]


def test_background_receiver_bad_input() -> None:
    signal = Signal()

    def sync_function(**kwargs: Any) -> None:
        pass

    async def async_function(**kwargs: Any) -> None:
        pass

    with pytest.raises(
        TypeError, match=r"needs an 'async def' receiver.*django\.dispatch\.receiver"
    ):
        background_receiver(signal)(sync_function)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="needs an 'async def' function, not int"):
        background_receiver(signal)(3)  # type: ignore[type-var]
    coroutine = async_function()
    with pytest.raises(TypeError, match="without calling it"):
        background_receiver(signal)(coroutine)  # type: ignore[type-var]
    coroutine.close()
    with pytest.raises(TypeError, match="needs a django.dispatch.Signal"):
        background_receiver("post_save")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_commit"):
        background_receiver(signal, on_commit="yes")  # type: ignore[arg-type]
    assert not signal.receivers


# --- Rare paths ------------------------------------------------------------------------------


def test_a_served_loop_that_closed_meanwhile_falls_back_to_the_private_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django_async_toolkit.signals import background as signals

    closed = asyncio.new_event_loop()
    closed.close()
    monkeypatch.setattr(signals, "_target_loop", lambda: (closed, False))
    signal = Signal()
    seen = connect_seen(signal)
    send_background(signal, sender=None)
    drain_background_sync(timeout=10)
    assert seen.thread is not None and seen.thread.name == PRIVATE_THREAD


def test_a_dispatch_that_cannot_be_scheduled_is_not_left_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django_async_toolkit.signals import background as signals

    def no_loop() -> None:
        raise RuntimeError("no loop for you")

    monkeypatch.setattr(signals, "_target_loop", no_loop)
    signal = Signal()
    connect_seen(signal)
    with pytest.raises(RuntimeError, match="no loop for you"):
        send_background(signal, sender=None)
    drain_background_sync(timeout=0.5)  # nothing pending: it would time out otherwise


async def test_a_failing_cleanup_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django_async_toolkit.signals import background as signals

    def close_all() -> None:
        raise OSError("cannot close")

    monkeypatch.setattr(signals.connections, "close_all", close_all)
    signal = Signal()

    async def uses_a_thread(**kwargs: Any) -> None:
        await sync_to_async(lambda: None)()

    signal.connect(uses_a_thread)
    # Without the worker pool, a dispatch's own thread has its connections closed at its end.
    with (
        override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=None),
        caplog.at_level(logging.ERROR, LOGGER),
    ):
        send_background(signal, sender=None)
        await drain_background(timeout=10)
    (record,) = caplog.records
    assert "Background signal dispatch failed: send_background() from None" in record.getMessage()
    assert "cannot close" in str(record.exc_info[1] if record.exc_info else None)


def test_background_receiver_on_a_bound_method_and_a_marked_callable() -> None:
    signal = Signal()
    calls: list[str] = []

    class Notifier:
        async def notify(self, **kwargs: Any) -> None:
            calls.append("method")

    class MarkedCallable:
        def __init__(self) -> None:
            markcoroutinefunction(self)

        async def __call__(self, **kwargs: Any) -> None:
            calls.append("callable")

    background_receiver(signal)(Notifier().notify)  # nothing else holds the bound method
    marked = background_receiver(signal)(MarkedCallable())
    gc.collect()

    receivers = _receivers_in_order(signal)
    assert len(receivers) == 2  # both connected as sync dispatchers, the method strongly
    assert all(is_background_receiver(r) for r in receivers)
    assert is_background_receiver(marked)
    assert signal.send(sender=None) == [(receivers[0], None), (receivers[1], None)]
    drain_background_sync(timeout=10)
    assert sorted(calls) == ["callable", "method"]


@pytest.mark.django_db(transaction=True)
async def test_on_commit_receiver_sent_from_a_loop_thread_is_scheduled_at_once() -> None:
    # No transaction can be open on a thread that runs an event loop.
    signal = Signal()
    calls: list[str] = []

    @background_receiver(signal, on_commit=True)
    async def on_commit_receiver(**kwargs: Any) -> None:
        calls.append("ran")

    signal.send(sender=None)  # sync send() straight from async code
    await drain_background(timeout=10)
    assert calls == ["ran"]


FORK_SCRIPT = """
import os, sys
import django
from django.conf import settings
settings.configure()
django.setup()
from django.dispatch import Signal
from django_async_toolkit.signals import (
    drain_background_sync, send_background, stop_background_loop,
)

signal = Signal()
seen = []
async def receiver(**kwargs):
    seen.append(os.getpid())
signal.connect(receiver)
send_background(signal, sender=None)  # starts the private loop thread in the parent
drain_background_sync(timeout=10)
pid = os.fork()
if pid == 0:
    send_background(signal, sender=None)
    try:
        drain_background_sync(timeout=10)
    except TimeoutError:
        os._exit(3)
    os._exit(0 if seen[-1] == os.getpid() else 2)
_, status = os.waitpid(pid, 0)
stop_background_loop()
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_starts_its_own_loop_thread() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", FORK_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
