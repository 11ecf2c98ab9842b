"""Tests of ``django_async_toolkit.signals``: asend/asend_robust, their bounds and their fidelity.

Concurrency is proven with barriers and counters, timeouts with receivers that wait forever.
Background dispatch and background receivers are tested in ``test_signals_background.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import threading
from typing import Any

import pytest
from asgiref.sync import markcoroutinefunction, sync_to_async
from django.dispatch import Signal

from django_async_toolkit.signals import asend, asend_robust

LOGGER = "django_async_toolkit.signals"


class Recorder:
    """A sync receiver that records its calls and the thread it ran on."""

    def __init__(self, response: object = None) -> None:
        self.response = response
        self.calls: list[dict[str, Any]] = []
        self.threads: list[threading.Thread] = []

    def __call__(self, signal: Signal, sender: object, **named: Any) -> object:
        self.calls.append({"signal": signal, "sender": sender, **named})
        self.threads.append(threading.current_thread())
        return self.response


class AsyncRecorder:
    """An async receiver that records its calls."""

    def __init__(self, response: object = None) -> None:
        self.response = response
        self.calls: list[dict[str, Any]] = []
        markcoroutinefunction(self)

    async def __call__(self, signal: Signal, sender: object, **named: Any) -> object:
        self.calls.append({"signal": signal, "sender": sender, **named})
        return self.response


# --- Results and order ---------------------------------------------------------------------------


async def test_sync_receivers_first_then_async_each_in_connection_order() -> None:
    signal = Signal()
    a1, s1, a2, s2 = AsyncRecorder("a1"), Recorder("s1"), AsyncRecorder("a2"), Recorder("s2")
    for receiver in (a1, s1, a2, s2):
        signal.connect(receiver)

    responses = await asend(signal, sender="me", value=3)

    assert responses == [(s1, "s1"), (s2, "s2"), (a1, "a1"), (a2, "a2")]
    for receiver in (a1, s1, a2, s2):
        assert receiver.calls == [{"signal": signal, "sender": "me", "value": 3}]


async def test_sync_receivers_share_one_hop_off_the_loop_thread() -> None:
    signal = Signal()
    first, second = Recorder(), Recorder()
    signal.connect(first)
    signal.connect(second)

    await asend(signal, sender=None)

    assert first.threads[0] is not threading.current_thread()
    assert first.threads == second.threads


async def test_no_receivers_and_cached_no_receivers() -> None:
    signal = Signal(use_caching=True)
    assert await asend(signal, sender=object) == []
    receiver = Recorder("r")
    signal.connect(receiver, sender=int)
    assert await asend(signal, sender=str) == []  # caches "no receivers" for str
    assert await asend(signal, sender=str) == []
    assert await asend_robust(signal, sender=int) == [(receiver, "r")]


async def test_sender_filtering_dispatch_uid_and_disconnect() -> None:
    signal = Signal()
    for_int, for_all = Recorder("int"), AsyncRecorder("all")
    signal.connect(for_int, sender=int)
    signal.connect(for_all)
    same_uid = Recorder("same uid")
    signal.connect(same_uid, dispatch_uid="uid")
    duplicate = Recorder("duplicate")
    signal.connect(duplicate, dispatch_uid="uid")  # ignored: the uid is taken

    responses = await asend(signal, sender=int)
    assert [response for _, response in responses] == ["int", "same uid", "all"]
    assert [response for _, response in await asend(signal, sender=str)] == ["same uid", "all"]

    assert signal.disconnect(dispatch_uid="uid")
    assert await asend(signal, sender=str) == [(for_all, "all")]


async def test_weak_receivers_that_died_are_not_called() -> None:
    signal = Signal()
    kept = AsyncRecorder("kept")
    signal.connect(kept)

    def make_dead() -> None:
        async def dead(**kwargs: Any) -> str:
            return "dead"

        signal.connect(dead)

    make_dead()
    gc.collect()
    assert await asend(signal, sender=None) == [(kept, "kept")]


async def test_strong_receivers_and_bound_methods() -> None:
    signal = Signal()

    class Handler:
        async def on_signal(self, **kwargs: Any) -> str:
            return "method"

    handler = Handler()
    signal.connect(handler.on_signal)

    async def local(**kwargs: Any) -> str:
        return "strong"

    signal.connect(local, weak=False)
    del local
    gc.collect()
    responses = await asend(signal, sender=None)
    assert [response for _, response in responses] == ["method", "strong"]


# --- Context variables ---------------------------------------------------------------------------

counter: contextvars.ContextVar[int] = contextvars.ContextVar("counter", default=0)


def bump_sync(**kwargs: Any) -> int:
    counter.set(counter.get() + 1)
    return counter.get()


async def bump_async(**kwargs: Any) -> int:
    counter.set(counter.get() + 1)
    return counter.get()


@pytest.mark.parametrize("send", [asend, asend_robust])
async def test_receivers_share_the_context_and_the_caller_sees_it(send: Any) -> None:
    signal = Signal()
    signal.connect(bump_sync)
    signal.connect(bump_async, dispatch_uid="second")
    counter.set(10)

    responses = await send(signal, sender=None)

    assert [response for _, response in responses] == [11, 12]
    assert counter.get() == 12


async def test_async_receivers_share_one_context() -> None:
    signal = Signal()
    signal.connect(bump_async, dispatch_uid="one")
    signal.connect(bump_async, dispatch_uid="two")
    counter.set(1)

    responses = await asend(signal, sender=None, max_concurrency=1)

    assert sorted(response for _, response in responses) == [2, 3]
    assert counter.get() == 3


# --- Concurrency ---------------------------------------------------------------------------------


async def test_async_receivers_run_concurrently() -> None:
    # Each receiver waits at a barrier for all the others: it only passes if all run at once.
    signal = Signal()
    barrier = asyncio.Barrier(4)
    receivers = []
    for index in range(4):

        async def meet(index: int = index, **kwargs: Any) -> int:
            await barrier.wait()
            return index

        receivers.append(meet)
        signal.connect(meet)

    responses = await asend(signal, sender=None, timeout=30)

    assert responses == [(receiver, index) for index, receiver in enumerate(receivers)]


async def test_max_concurrency_is_reached_and_never_exceeded() -> None:
    signal = Signal()
    bound = 2
    barrier = asyncio.Barrier(bound)  # passes only when `bound` receivers run at once
    active = 0
    peak = 0
    receivers = []
    for index in range(6):

        async def limited(index: int = index, **kwargs: Any) -> int:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            try:
                await barrier.wait()
                return index
            finally:
                active -= 1

        receivers.append(limited)
        signal.connect(limited)

    responses = await asend(signal, sender=None, max_concurrency=bound)

    assert peak == bound
    assert responses == [(receiver, index) for index, receiver in enumerate(receivers)]


async def test_max_concurrency_larger_than_receivers() -> None:
    signal = Signal()
    only = AsyncRecorder("only")
    signal.connect(only)
    assert await asend(signal, sender=None, max_concurrency=5) == [(only, "only")]


# --- Timeouts ------------------------------------------------------------------------------------


async def test_async_receiver_past_its_timeout_is_cancelled_and_named() -> None:
    signal = Signal()
    cancelled = asyncio.Event()

    async def waits_forever(**kwargs: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    signal.connect(waits_forever)

    with pytest.raises(TimeoutError, match=r"waits_forever did not finish within 0\.05 s"):
        await asend(signal, sender=None, timeout=0.05)
    assert cancelled.is_set()


async def test_receivers_own_timeout_error_is_not_renamed() -> None:
    signal = Signal()

    async def raises_timeout(**kwargs: Any) -> None:
        raise TimeoutError("my own")

    signal.connect(raises_timeout)
    with pytest.raises(TimeoutError, match="my own"):
        await asend(signal, sender=None, timeout=30)


async def test_the_wait_for_a_slot_does_not_count_against_the_timeout() -> None:
    # One at a time, seven receivers of 0.2 s each: the last one waits 1.2 s for its slot, longer
    # than the timeout of 1 s, and still succeeds because its own run is short.
    signal = Signal()
    receivers = []
    for index in range(7):

        async def takes_a_while(index: int = index, **kwargs: Any) -> int:
            await asyncio.sleep(0.2)
            return index

        receivers.append(takes_a_while)
        signal.connect(takes_a_while)

    responses = await asend(signal, sender=None, timeout=1.0, max_concurrency=1)

    assert responses == [(receiver, index) for index, receiver in enumerate(receivers)]


async def test_robust_timeout_takes_the_place_of_the_response_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal()

    async def waits_forever(**kwargs: Any) -> None:
        await asyncio.Event().wait()

    ok = AsyncRecorder("ok")
    signal.connect(waits_forever)
    signal.connect(ok)

    with caplog.at_level(logging.ERROR, LOGGER):
        responses = await asend_robust(signal, sender=None, timeout=0.05)

    (receiver, error), (other, response) = responses
    assert receiver is waits_forever and isinstance(error, TimeoutError)
    assert (other, response) == (ok, "ok")
    (record,) = caplog.records
    assert "waits_forever" in record.getMessage()
    assert f"{__name__}.test_robust_timeout" in record.getMessage()


async def test_sync_receiver_past_its_timeout_is_abandoned_and_later_ones_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal()
    release = threading.Event()
    returned = threading.Event()
    after = Recorder("after")

    def blocks(**kwargs: Any) -> str:
        release.wait()
        returned.set()
        raise ValueError("late failure")

    before = Recorder("before")
    signal.connect(before)
    signal.connect(blocks)
    signal.connect(after)

    with pytest.raises(TimeoutError, match=r"blocks did not return within 0\.5 s"):
        await asend(signal, sender=None, timeout=0.5)

    with caplog.at_level(logging.ERROR, LOGGER):
        release.set()
        await asyncio.to_thread(returned.wait)
        await sync_to_async(lambda: None)()  # the hop's thread is free again
        for _ in range(100):  # let the abandoned hop's completion callbacks run
            if caplog.records:
                break
            await asyncio.sleep(0)
    assert len(before.calls) == 1
    assert after.calls == []
    (record,) = caplog.records
    assert "A sync receiver of a signal sent by None failed after its timeout" in (
        record.getMessage()
    )
    assert "late failure" in record.getMessage()


async def test_sync_receiver_timeout_robust_reports_each_receiver(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal()
    release = threading.Event()
    before, after = Recorder("before"), Recorder("after")
    async_ok = AsyncRecorder("async")

    def blocks(**kwargs: Any) -> None:
        release.wait()
        raise ValueError("failed after its timeout")

    signal.connect(before)
    signal.connect(blocks)
    signal.connect(after)
    signal.connect(async_ok)

    with caplog.at_level(logging.ERROR, LOGGER):
        responses = await asend_robust(signal, sender=None, timeout=0.5)
        assert responses[0] == (before, "before")
        assert responses[1][0] is blocks and isinstance(responses[1][1], TimeoutError)
        assert responses[2][0] is after and isinstance(responses[2][1], TimeoutError)
        assert "was not called" in str(responses[2][1])
        assert responses[3] == (async_ok, "async")
        assert after.calls == []

        release.set()
        await sync_to_async(lambda: None)()  # waits behind the abandoned hop on the same thread
        await asyncio.sleep(0)  # the hop's done callback runs on the next loop iteration

    messages = [record.getMessage() for record in caplog.records]
    assert any("blocks did not return within" in message for message in messages)
    assert any("failed after its timeout" in message for message in messages)


async def test_sync_receivers_within_the_timeout() -> None:
    signal = Signal()
    first, second = Recorder("one"), Recorder("two")
    signal.connect(first)
    signal.connect(second)
    counter.set(0)
    signal.connect(bump_sync)

    responses = await asend(signal, sender=None, timeout=30)

    assert [r for _, r in responses] == ["one", "two", 1]
    assert counter.get() == 1  # the sync receivers' context changes reach the caller


async def test_sync_receiver_error_with_a_timeout_is_raised() -> None:
    signal = Signal()

    def fails(**kwargs: Any) -> None:
        raise KeyError("sync")

    later = AsyncRecorder()
    signal.connect(fails)
    signal.connect(later)
    with pytest.raises(KeyError, match="sync"):
        await asend(signal, sender=None, timeout=30)
    assert later.calls == []


async def test_cancelling_the_caller_during_a_sync_receiver_with_a_timeout() -> None:
    signal = Signal()
    started = threading.Event()
    release = threading.Event()
    after = Recorder()

    def blocks(**kwargs: Any) -> None:
        started.set()
        release.wait()

    signal.connect(blocks)
    signal.connect(after)
    task = asyncio.create_task(asend(signal, sender=None, timeout=30))
    await asyncio.to_thread(started.wait)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await sync_to_async(lambda: None)()
    assert after.calls == []


# --- Errors --------------------------------------------------------------------------------------


async def test_first_error_is_raised_as_itself_and_cancels_the_others() -> None:
    signal = Signal()
    sibling_started = asyncio.Event()
    sibling_cancelled = asyncio.Event()

    async def sibling(**kwargs: Any) -> None:
        sibling_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            sibling_cancelled.set()
            raise

    async def fails(**kwargs: Any) -> None:
        await sibling_started.wait()
        raise LookupError("first")

    signal.connect(sibling)
    signal.connect(fails)
    with pytest.raises(LookupError, match="first"):
        await asend(signal, sender=None)
    assert sibling_cancelled.is_set()


async def test_several_errors_come_as_an_exception_group() -> None:
    signal = Signal()
    sibling_started = asyncio.Event()

    async def fails_when_cancelled(**kwargs: Any) -> None:
        sibling_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("second") from None

    async def fails(**kwargs: Any) -> None:
        await sibling_started.wait()
        raise LookupError("first")

    signal.connect(fails_when_cancelled)
    signal.connect(fails)
    with pytest.raises(ExceptionGroup) as info:
        await asend(signal, sender=None)
    assert sorted(type(e).__name__ for e in info.value.exceptions) == [
        "LookupError",
        "RuntimeError",
    ]


async def test_an_error_before_a_receiver_suspends_lets_the_others_start_then_cancels_them() -> (
    None
):
    # As in Django 6.1's TaskGroup, every receiver takes its first step before the failure is
    # acted on, on Python 3.12+ (where the toolkit starts them eagerly) as on 3.11.
    signal = Signal()
    started: list[str] = []
    cancelled: list[str] = []

    def suspends(name: str) -> Any:
        async def receiver(**kwargs: Any) -> None:
            started.append(name)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(name)
                raise

        return receiver

    async def fails_at_once(**kwargs: Any) -> None:
        raise LookupError("at once")

    before, after = suspends("before"), suspends("after")
    signal.connect(before)
    signal.connect(fails_at_once)
    signal.connect(after)
    with pytest.raises(LookupError, match="at once"):
        await asend(signal, sender=None)
    assert started == ["before", "after"]
    assert sorted(cancelled) == ["after", "before"]


@pytest.mark.parametrize("send", [asend, asend_robust])
async def test_cancelling_the_caller_cancels_the_receivers_and_waits_for_them(send: Any) -> None:
    signal = Signal()
    started = asyncio.Event()
    cleaned_up: list[str] = []

    async def waits(**kwargs: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # a cleanup that itself awaits
            cleaned_up.append("waits")

    async def returns(**kwargs: Any) -> str:
        return "done"

    signal.connect(returns)
    signal.connect(waits)
    task = asyncio.create_task(send(signal, sender=None))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned_up == ["waits"]


async def test_an_enclosing_asyncio_timeout_becomes_a_timeout_error() -> None:
    signal = Signal()
    cancelled = asyncio.Event()

    async def waits(**kwargs: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    signal.connect(waits)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout_at(asyncio.get_running_loop().time()):
            await asend(signal, sender=None)
    assert cancelled.is_set()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_sync_error_stops_before_async_receivers() -> None:
    signal = Signal()

    def fails(**kwargs: Any) -> None:
        raise ValueError("sync failure")

    later = AsyncRecorder()
    signal.connect(fails)
    signal.connect(later)
    with pytest.raises(ValueError, match="sync failure"):
        await asend(signal, sender=None)
    assert later.calls == []


async def test_robust_returns_and_logs_each_error_with_the_qualified_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = Signal()
    sync_error, async_error = ValueError("sync"), LookupError("async")

    def sync_fails(**kwargs: Any) -> None:
        raise sync_error

    async def async_fails(**kwargs: Any) -> None:
        raise async_error

    ok = AsyncRecorder("ok")
    callable_object = Recorder("object")
    signal.connect(async_fails)
    signal.connect(sync_fails)
    signal.connect(ok)
    signal.connect(callable_object)

    with caplog.at_level(logging.ERROR, LOGGER):
        responses = await asend_robust(signal, sender=int)

    assert responses == [
        (sync_fails, sync_error),
        (callable_object, "object"),
        (async_fails, async_error),
        (ok, "ok"),
    ]
    messages = sorted(record.getMessage() for record in caplog.records)
    prefix = f"Signal receiver {__name__}.test_robust_returns_and_logs_each_error"
    assert messages == [
        f"{prefix}_with_the_qualified_name.<locals>.async_fails failed for sender builtins.int: "
        "LookupError('async')",
        f"{prefix}_with_the_qualified_name.<locals>.sync_fails failed for sender builtins.int: "
        "ValueError('sync')",
    ]
    assert all(record.exc_info for record in caplog.records)


async def test_robust_lets_cancellation_through() -> None:
    signal = Signal()
    started = asyncio.Event()

    async def waits(**kwargs: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    signal.connect(waits)
    task = asyncio.create_task(asend_robust(signal, sender=None))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- Bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("send", [asend, asend_robust])
async def test_bad_input(send: Any) -> None:
    signal = Signal()
    with pytest.raises(TypeError, match=r"needs a django.dispatch.Signal"):
        await send("post_save", sender=None)
    for timeout in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="greater than 0"):
            await send(signal, sender=None, timeout=timeout)
    for timeout in ("1", True):
        with pytest.raises(TypeError, match="timeout"):
            await send(signal, sender=None, timeout=timeout)
    for bound in (0, -2):
        with pytest.raises(ValueError, match="at least 1"):
            await send(signal, sender=None, max_concurrency=bound)
    for bound in (1.5, False):
        with pytest.raises(TypeError, match="max_concurrency"):
            await send(signal, sender=None, max_concurrency=bound)
