"""``asend`` and ``asend_robust``: Django 6.1's ``Signal.asend`` everywhere, with bounds.

``asend`` and ``asend_robust`` are Django 6.1's ``Signal.asend`` and ``Signal.asend_robust`` on
every supported Django (4.2 has none; 5.x gathers), plus a per-receiver ``timeout`` and a
``max_concurrency`` bound:

* the live receivers are looked up as Django does (sender filtering, ``dispatch_uid``, weak
  references, the per-sender cache);
* the sync receivers run first, in connection order, behind one ``sync_to_async`` hop
  (thread-sensitive, so a request's sync receivers share its thread and database connection);
* then the async receivers run concurrently with a ``TaskGroup``'s semantics, ``max_concurrency``
  at most (on Python 3.12+ each one's task starts eagerly: one that returns without suspending
  never waits for the loop);
* they all share one copy of the caller's context, whose changes the caller sees afterwards;
* the first error cancels the other async receivers; one error is raised as itself, several as an
  ``ExceptionGroup``.

The :class:`_Dispatch` here also serves background dispatch (``background.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from asgiref.sync import sync_to_async
from django.dispatch import Signal
from django.dispatch.dispatcher import NO_RECEIVERS

from django_async_toolkit import _compat
from django_async_toolkit._validation import (
    check_positive_int,
    check_signal,
    check_timeout,
    qualname,
)

__all__ = ["Receiver", "Responses", "asend", "asend_robust"]

logger = logging.getLogger("django_async_toolkit.signals")

Receiver = Callable[..., Any]
Responses = list[tuple[Receiver, Any]]


def _on_loop_thread() -> bool:
    """Whether the current thread runs an event loop (Django's sync ORM refuses to run there)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _describe_sender(sender: object) -> str:
    if sender is None:
        return "None"
    if isinstance(sender, type):
        return qualname(sender)
    return f"a {qualname(type(sender))} instance"


def _log_failure(receiver: Receiver, error: BaseException, sender: object) -> None:
    logger.error(
        "Signal receiver %s failed for sender %s: %r",
        qualname(receiver),
        _describe_sender(sender),
        error,
        exc_info=error,
    )


# --- Dispatch -----------------------------------------------------------------------------------


class _Dispatch:
    """One sending of a signal to a fixed list of receivers, with its bounds."""

    def __init__(
        self,
        signal: Signal,
        sender: object,
        named: dict[str, Any],
        *,
        timeout: float | None,
        max_concurrency: int | None,
        robust: bool,
    ) -> None:
        self.signal = signal
        self.sender = sender
        self.named = named
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self.robust = robust

    def call_sync(self, receiver: Receiver) -> Any:
        try:
            return receiver(signal=self.signal, sender=self.sender, **self.named)
        except Exception as error:
            if not self.robust:
                raise
            _log_failure(receiver, error, self.sender)
            return error

    def call_async(self, receiver: Receiver) -> Awaitable[Any]:
        if self.timeout is None and not self.robust:
            # The common case costs what Django's own asend costs: the receiver's coroutine.
            return receiver(signal=self.signal, sender=self.sender, **self.named)  # type: ignore[no-any-return]
        return self.call_async_guarded(receiver)

    async def call_async_guarded(self, receiver: Receiver) -> Any:
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                return await receiver(signal=self.signal, sender=self.sender, **self.named)
        except Exception as error:
            failure: Exception = error
            if isinstance(error, TimeoutError) and deadline.expired():
                failure = TimeoutError(
                    f"Signal receiver {qualname(receiver)} did not finish within "
                    f"{self.timeout} s and was cancelled."
                )
            if not self.robust:
                if failure is error:
                    raise
                raise failure from None
            _log_failure(receiver, failure, self.sender)
            return failure

    async def run(
        self, sync_receivers: list[Receiver], async_receivers: list[Receiver]
    ) -> Responses:
        responses = await self.run_sync(sync_receivers) if sync_receivers else []
        responses.extend(zip(async_receivers, await self.run_async(async_receivers), strict=True))
        return responses

    async def run_sync(self, receivers: list[Receiver]) -> Responses:
        """Run the sync receivers in connection order behind one thread-sensitive hop."""
        if self.timeout is None:

            def call_all() -> Responses:
                return [(receiver, self.call_sync(receiver)) for receiver in receivers]

            return await sync_to_async(call_all)()
        return await self._run_sync_with_timeout(receivers, self.timeout)

    async def _run_sync_with_timeout(self, receivers: list[Receiver], timeout: float) -> Responses:
        # A sync receiver cannot be interrupted: each one reports its start to the loop, which
        # moves the deadline; past it, the loop stops waiting, and the thread calls no further
        # receiver once the one that overran returns.
        loop = asyncio.get_running_loop()
        responses: Responses = []
        running = [0]
        abandoned = threading.Event()
        deadline = asyncio.timeout(None)

        def started(index: int) -> None:
            running[0] = index
            # A start reported after the wait ended (a race with the timeout or a cancellation)
            # finds the deadline expired or exited, which refuses to move: nothing to do then.
            with contextlib.suppress(RuntimeError):
                deadline.reschedule(loop.time() + timeout)

        def call_all() -> Responses:
            for index, receiver in enumerate(receivers):
                if abandoned.is_set():
                    break
                loop.call_soon_threadsafe(started, index)
                responses.append((receiver, self.call_sync(receiver)))
            return responses

        context = contextvars.copy_context()
        hop = loop.create_task(sync_to_async(call_all)(), context=context)
        try:
            async with deadline:
                await asyncio.shield(hop)
        except BaseException as error:
            if hop.done():
                raise
            abandoned.set()
            hop.add_done_callback(functools.partial(self._late_failure, receivers))
            if not (isinstance(error, TimeoutError) and deadline.expired()):
                raise
            overran = receivers[running[0]]
            failure = TimeoutError(
                f"Signal receiver {qualname(overran)} did not return within {timeout} s; "
                "a sync receiver cannot be interrupted, so it runs on in its thread and the "
                "sync receivers after it are not called."
            )
            if not self.robust:
                raise failure from None
            _log_failure(overran, failure, self.sender)
            done = responses[: running[0]]
            done.append((overran, failure))
            for skipped in receivers[running[0] + 1 :]:
                done.append(
                    (
                        skipped,
                        TimeoutError(
                            f"Signal receiver {qualname(skipped)} was not called: "
                            f"{qualname(overran)} before it overran the timeout of {timeout} s."
                        ),
                    )
                )
            return done
        _compat.adopt_context(context)
        return hop.result()

    def _late_failure(self, receivers: list[Receiver], hop: asyncio.Task[Responses]) -> None:
        """Log what a sync receiver that overran its timeout raised when it finally returned."""
        error = None if hop.cancelled() else hop.exception()
        if error is not None:
            logger.error(
                "A sync receiver of a signal sent by %s failed after its timeout: %r",
                _describe_sender(self.sender),
                error,
                exc_info=error,
            )

    async def run_async(self, receivers: list[Receiver]) -> list[Any]:
        """Run the async receivers concurrently, bounded, sharing one copy of the context."""
        if not receivers:
            return []
        results: list[Any] = [None] * len(receivers)
        slots = (
            asyncio.Semaphore(self.max_concurrency)
            if self.max_concurrency is not None and self.max_concurrency < len(receivers)
            else None
        )

        # Each receiver's coroutine is created inside its task, once a slot is free (and never
        # if the group is cancelled before), so no receiver coroutine is left un-awaited.
        if slots is not None:

            async def run(index: int, receiver: Receiver) -> None:
                async with slots:
                    results[index] = await self.call_async(receiver)

        elif self.timeout is None and not self.robust:
            # The common case, as lean as Django's own asend: no guard around the receiver.
            signal, sender, named = self.signal, self.sender, self.named

            async def run(index: int, receiver: Receiver) -> None:
                results[index] = await receiver(signal=signal, sender=sender, **named)

        else:

            async def run(index: int, receiver: Receiver) -> None:
                results[index] = await self.call_async_guarded(receiver)

        context = contextvars.copy_context()
        try:
            if _compat.EAGER_TASKS:
                await _run_concurrently(run, receivers, context)
            else:
                async with asyncio.TaskGroup() as group:
                    for index, receiver in enumerate(receivers):
                        group.create_task(run(index, receiver), context=context)
        except BaseExceptionGroup as errors:
            if len(errors.exceptions) == 1:
                raise errors.exceptions[0]  # noqa: B904 - raised as Django 6.1 raises it
            raise
        finally:
            _compat.adopt_context(context)
        return results


async def _run_concurrently(
    run: Callable[[int, Receiver], Coroutine[Any, Any, None]],
    receivers: list[Receiver],
    context: contextvars.Context,
) -> None:
    """``run(index, receiver)`` for every receiver at once, as an ``asyncio.TaskGroup`` runs them.

    Each task starts eagerly (Python 3.12+): a receiver that returns without suspending is done
    before the next one starts, without a trip through the event loop, which is most of what a
    dispatch costs.
    Otherwise the semantics are the TaskGroup's that Django 6.1 uses: every receiver takes its
    first step, the first error cancels the receivers still running, the caller's cancellation
    cancels them all, the group waits for every task before it returns, and the errors are raised
    as a ``BaseExceptionGroup`` (``KeyboardInterrupt`` and ``SystemExit`` as themselves).
    """
    loop = asyncio.get_running_loop()
    running: list[asyncio.Task[None]] = []
    errors: list[BaseException] = []
    try:
        for index, receiver in enumerate(receivers):
            task = asyncio.Task(  # type: ignore[call-arg,unused-ignore]
                run(index, receiver), loop=loop, context=context, eager_start=True
            )
            # A receiver that fails before it suspends does not stop the next ones from
            # starting: under a TaskGroup they would all have taken their first step before the
            # failure was seen.
            if not task.done():
                running.append(task)
            elif not task.cancelled() and (error := task.exception()) is not None:
                errors.append(error)
    except BaseException:  # KeyboardInterrupt or SystemExit, re-raised by an eager first step
        for task in running:
            task.cancel()
        raise
    if running:
        await _wait_as_a_group(running, errors)
    if errors:
        raise BaseExceptionGroup("unhandled errors in a TaskGroup", errors)


async def _wait_as_a_group(tasks: list[asyncio.Task[None]], errors: list[BaseException]) -> None:
    """Wait for ``tasks``; on the first error, or when the caller is cancelled, cancel the rest."""
    pending = set(tasks)
    aborted = bool(errors)
    if aborted:
        for task in tasks:
            task.cancel()
    caller_cancelled: asyncio.CancelledError | None = None
    while pending:
        try:
            done, pending = await asyncio.wait(
                pending,
                return_when=asyncio.ALL_COMPLETED if aborted else asyncio.FIRST_EXCEPTION,
            )
        except asyncio.CancelledError as cancelled:
            # As a TaskGroup does: cancel the receivers, wait for them, then raise.
            caller_cancelled = caller_cancelled or cancelled
            aborted = True
            for task in pending:
                task.cancel()
            continue
        for task in tasks:
            if task not in done or task.cancelled() or (error := task.exception()) is None:
                continue
            if not aborted:
                aborted = True
                for other in pending:
                    other.cancel()
            if isinstance(error, KeyboardInterrupt | SystemExit):
                raise error
            errors.append(error)
    if caller_cancelled is not None and not errors:
        raise caller_cancelled


def _has_no_receivers(signal: Signal, sender: object) -> bool:
    # The same shortcut as Django's send()/asend(): nothing connected, or cached as none.
    return not signal.receivers or signal.sender_receivers_cache.get(sender) is NO_RECEIVERS


async def _no_responses() -> Responses:
    return []


def _asend(
    signal: Signal,
    sender: object,
    named: dict[str, Any],
    timeout: float | None,
    max_concurrency: int | None,
    *,
    robust: bool,
) -> Coroutine[Any, Any, Responses]:
    # A plain function that returns the dispatch's coroutine: one coroutine less per send.
    function = "asend_robust" if robust else "asend"
    check_signal(signal, function)
    check_timeout(timeout, function)
    check_positive_int(max_concurrency, function, "max_concurrency")
    if _has_no_receivers(signal, sender):
        return _no_responses()
    sync_receivers, async_receivers = _compat.signal_live_receivers(signal, sender)
    dispatch = _Dispatch(
        signal, sender, named, timeout=timeout, max_concurrency=max_concurrency, robust=robust
    )
    return dispatch.run(sync_receivers, async_receivers)


async def asend(
    signal: Signal,
    sender: object,
    *,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    **named: Any,
) -> Responses:
    """Send ``signal`` from async code, as Django 6.1's ``Signal.asend`` does, with bounds.

    Returns ``[(receiver, response), ...]``: the sync receivers' responses first, then the async
    ones, each group in connection order.
    Sync receivers run first, in one ``sync_to_async`` hop; async receivers then run concurrently,
    at most ``max_concurrency`` at once, in one shared copy of the caller's context (its changes
    are visible to the caller afterwards).

    ``timeout`` (seconds) bounds each receiver from the moment it starts (the wait for a
    concurrency slot does not count): an async receiver that overruns it is cancelled; a sync
    receiver cannot be interrupted, so past it the caller stops waiting, the receiver runs on in
    its thread and the sync receivers after it are not called.
    Either way a :class:`TimeoutError` naming the receiver is raised.

    The first error cancels the receivers still running and is raised; several errors raised
    before the cancellation took effect come as an :class:`ExceptionGroup`.
    ``timeout`` and ``max_concurrency`` are not passed to receivers.
    """
    return await _asend(signal, sender, named, timeout, max_concurrency, robust=False)


async def asend_robust(
    signal: Signal,
    sender: object,
    *,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    **named: Any,
) -> Responses:
    """Like :func:`asend`, but a receiver's error (a timeout included) becomes its response.

    Every such error is logged on the ``django_async_toolkit.signals`` logger with the receiver's
    qualified name and the traceback; this never raises for a receiver's fault (only for bad
    arguments, and ``CancelledError`` when the caller is cancelled).
    """
    return await _asend(signal, sender, named, timeout, max_concurrency, robust=True)


# --- Background dispatch ------------------------------------------------------------------------
