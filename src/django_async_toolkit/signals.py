"""Send Django signals from async code with bounds; receive them without making senders wait.

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

``send_background`` dispatches without waiting, from async or sync code, and
``background_receiver`` connects an ``async def`` receiver that its senders never wait for.
Each background dispatch is registered when it is sent, runs in a fresh ``contextvars`` context
inside its own ``ThreadSensitiveContext`` (its ORM calls get a thread and a connection of their
own, closed when it ends), logs its failures, and is awaited by ``drain_background``.

Where a background dispatch runs:

* on the running event loop of the caller;
* from a ``sync_to_async`` thread (a request's ORM call, ``Model.asave()``), on the loop that the
  thread serves;
* otherwise (a plain thread, a management command, a loop that ``async_to_sync`` made for one call
  and closes when that call returns) on a private loop thread that the toolkit starts on demand and
  :func:`stop_background_loop` stops.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import functools
import itertools
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.dispatch import Signal
from django.dispatch.dispatcher import NO_RECEIVERS

from django_async_toolkit import _compat

__all__ = [
    "asend",
    "asend_robust",
    "background_receiver",
    "drain_background",
    "drain_background_sync",
    "is_background_receiver",
    "send_background",
    "stop_background_loop",
]

logger = logging.getLogger("django_async_toolkit.signals")

Receiver = Callable[..., Any]
Responses = list[tuple[Receiver, Any]]
AsyncReceiverT = TypeVar("AsyncReceiverT", bound=Callable[..., Awaitable[Any]])

_BACKGROUND_MARK = "_async_toolkit_background_receiver"
_DISPATCHERS_ATTR = "_async_toolkit_background_dispatchers"


# --- Validation and naming ---------------------------------------------------------------------


def _check_signal(signal: object, function: str) -> None:
    if not isinstance(signal, Signal):
        raise TypeError(
            f"{function}() needs a django.dispatch.Signal (such as post_save or a Signal() of "
            f"your own) as its first argument, not {type(signal).__name__} {signal!r}."
        )


def _check_timeout(timeout: object, function: str) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(
            f"{function}(timeout=...) must be a number of seconds or None, "
            f"not {type(timeout).__name__} {timeout!r}."
        )
    if math.isnan(timeout) or timeout <= 0:
        raise ValueError(
            f"{function}(timeout={timeout!r}): the timeout must be a number of seconds greater "
            "than 0, or None for no timeout."
        )


def _check_max_concurrency(max_concurrency: object, function: str) -> None:
    if max_concurrency is None:
        return
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
        raise TypeError(
            f"{function}(max_concurrency=...) must be an int or None, "
            f"not {type(max_concurrency).__name__} {max_concurrency!r}."
        )
    if max_concurrency < 1:
        raise ValueError(
            f"{function}(max_concurrency={max_concurrency!r}): the bound must be at least 1, "
            "or None for no bound."
        )


def _qualname(obj: object) -> str:
    """``module.QualifiedName`` of a function, method or callable object, for logs and errors."""
    target = obj
    if not hasattr(obj, "__qualname__") or isinstance(obj, functools.partial):
        target = obj.func if isinstance(obj, functools.partial) else type(obj)
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", repr(target))
    return f"{module}.{name}" if module else name


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
        return _qualname(sender)
    return f"a {_qualname(type(sender))} instance"


def _log_failure(receiver: Receiver, error: BaseException, sender: object) -> None:
    logger.error(
        "Signal receiver %s failed for sender %s: %r",
        _qualname(receiver),
        _describe_sender(sender),
        error,
        exc_info=error,
    )


def _restore_context(context: contextvars.Context) -> None:
    """Copy the values of ``context`` into the current context (what Django 6.1 does)."""
    for var, value in context.items():
        try:
            if var.get() is value:
                continue
        except LookupError:
            pass
        var.set(value)


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
                    f"Signal receiver {_qualname(receiver)} did not finish within "
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
                f"Signal receiver {_qualname(overran)} did not return within {timeout} s; "
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
                            f"Signal receiver {_qualname(skipped)} was not called: "
                            f"{_qualname(overran)} before it overran the timeout of {timeout} s."
                        ),
                    )
                )
            return done
        _restore_context(context)
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
            _restore_context(context)
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
    _check_signal(signal, function)
    _check_timeout(timeout, function)
    _check_max_concurrency(max_concurrency, function)
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


class _Pending:
    """A background dispatch, registered from the moment it is sent until it has finished."""

    _ids = itertools.count(1)

    def __init__(self, description: str) -> None:
        self.id = next(self._ids)
        self.description = description
        self.finished: concurrent.futures.Future[None] = concurrent.futures.Future()
        # The event loop keeps only weak references to its tasks: a dispatch that waits on
        # something only its own frame holds would be garbage-collected mid-run. The entry,
        # held in _pending until the dispatch ends, keeps its task alive.
        self.task: asyncio.Task[None] | None = None


_pending: dict[int, _Pending] = {}
_pending_lock = threading.Lock()


def _register(description: str) -> _Pending:
    entry = _Pending(description)
    with _pending_lock:
        _pending[entry.id] = entry
    return entry


def _unregister(entry: _Pending) -> None:
    with _pending_lock:
        _pending.pop(entry.id, None)
    entry.finished.set_result(None)


class _PrivateLoop:
    """An event loop on a daemon thread of its own, for dispatches sent from loop-less code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name="django-async-toolkit-signals", daemon=True
        )
        self.thread.start()
        self._started.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        try:
            self.loop.run_forever()
            self.loop.run_until_complete(self._cancel_leftovers())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            self.loop.close()

    async def _cancel_leftovers(self) -> None:
        tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if threading.current_thread() is self.thread:
            raise RuntimeError(
                "stop_background_loop() was called from the toolkit's own signal loop; call it "
                "from the code that shuts the process down (after drain_background())."
            )
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


_private_loop: _PrivateLoop | None = None
_private_loop_lock = threading.Lock()
_atexit_registered = False


def _forget_after_fork() -> None:
    # A forked child (a pre-forking server) has neither the parent's loop thread nor its
    # pending dispatches: start from scratch there.
    global _private_loop, _private_loop_lock, _pending_lock
    _private_loop = None
    _private_loop_lock = threading.Lock()
    _pending_lock = threading.Lock()
    _pending.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _get_private_loop() -> asyncio.AbstractEventLoop:
    global _private_loop, _atexit_registered
    with _private_loop_lock:
        if _private_loop is None:
            _private_loop = _PrivateLoop()
            if not _atexit_registered:
                atexit.register(stop_background_loop)
                _atexit_registered = True
        return _private_loop.loop


def stop_background_loop() -> None:
    """Stop the private loop thread that runs background dispatches sent from loop-less code.

    Dispatches still running on it are cancelled (each logs that it was cancelled); call
    ``drain_background()`` first to let them finish.
    Database connections that dispatches opened are closed when each dispatch ends.
    Safe to call twice; a later :func:`send_background` starts a new loop thread.
    """
    global _private_loop
    with _private_loop_lock:
        private, _private_loop = _private_loop, None
    if private is not None:
        private.stop()


def _target_loop() -> tuple[asyncio.AbstractEventLoop, bool]:
    """The loop a background dispatch sent now runs on, and whether it is this thread's."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        served = _compat.loop_served_by_this_thread()
        if (
            served is not None
            and served.is_running()
            and not _compat.is_async_to_sync_loop(served)
        ):
            return served, False
    else:
        if not _compat.is_async_to_sync_loop(loop):
            return loop, True
    return _get_private_loop(), False


async def _run_in_background(
    entry: _Pending, call: Callable[[], Coroutine[Any, Any, object]]
) -> None:
    context = ThreadSensitiveContext()
    try:
        async with context:
            try:
                await call()
            finally:
                if _compat.thread_sensitive_context_has_thread(context):
                    await sync_to_async(connections.close_all)()
    except Exception:
        logger.exception("Background signal dispatch failed: %s", entry.description)
        raise


def _start(entry: _Pending, call: Callable[[], Coroutine[Any, Any, object]]) -> None:
    loop = asyncio.get_running_loop()
    entry.task = loop.create_task(_run_in_background(entry, call), context=contextvars.Context())
    entry.task.add_done_callback(functools.partial(_finished, entry))


def _finished(entry: _Pending, task: asyncio.Task[None]) -> None:
    if task.cancelled():
        logger.warning("Background signal dispatch was cancelled: %s", entry.description)
    else:
        task.exception()  # already logged by _run_in_background
    entry.task = None
    _unregister(entry)


def _submit(description: str, call: Callable[[], Coroutine[Any, Any, object]]) -> None:
    """Register a background dispatch now and start ``call()`` on its loop in a fresh context."""
    entry = _register(description)
    try:
        loop, here = _target_loop()
        if here:
            _start(entry, call)
            return
        try:
            loop.call_soon_threadsafe(_start, entry, call)
        except RuntimeError:  # the served loop closed in the meantime
            _get_private_loop().call_soon_threadsafe(_start, entry, call)
    except BaseException:
        _unregister(entry)
        raise


def send_background(signal: Signal, sender: object, **named: Any) -> None:
    """Send ``signal`` without waiting for its receivers; returns at once, from sync or async code.

    The receivers connected now (held by strong references until the dispatch ends) are called
    as :func:`asend_robust` calls them, in a fresh ``contextvars`` context, on the caller's event
    loop, on the loop that the calling ``sync_to_async`` thread serves, or else on the toolkit's
    private loop thread.
    Failures are logged on ``django_async_toolkit.signals``.
    :func:`drain_background` / :func:`drain_background_sync` wait for what is pending.
    """
    _check_signal(signal, "send_background")
    if _has_no_receivers(signal, sender):
        return
    sync_receivers, async_receivers = _compat.signal_live_receivers(signal, sender)
    if not sync_receivers and not async_receivers:
        return
    dispatch = _Dispatch(signal, sender, named, timeout=None, max_concurrency=None, robust=True)
    names = ", ".join(_qualname(r) for r in [*sync_receivers, *async_receivers])
    _submit(
        f"send_background() from {_describe_sender(sender)} to {names}",
        functools.partial(dispatch.run, sync_receivers, async_receivers),
    )


def _pending_snapshot() -> list[_Pending]:
    with _pending_lock:
        return list(_pending.values())


def _unfinished_error(unfinished: Sequence[_Pending], timeout: float | None) -> TimeoutError:
    lines = "\n".join(f"  - {entry.description}" for entry in unfinished)
    return TimeoutError(
        f"{len(unfinished)} background signal dispatch(es) did not finish within {timeout} s:\n"
        f"{lines}"
    )


async def drain_background(timeout: float | None = None) -> None:
    """Wait until every background dispatch has finished, including those sent meanwhile.

    Raises :class:`TimeoutError` listing the dispatches that did not finish within ``timeout``
    seconds (``None`` waits without limit); they keep running.
    """
    _check_timeout(timeout, "drain_background")
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while pending := _pending_snapshot():
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        waiters = [asyncio.wrap_future(entry.finished) for entry in pending]
        await asyncio.wait(waiters, timeout=remaining)
        unfinished = [entry for entry in pending if not entry.finished.done()]
        if unfinished:
            raise _unfinished_error(unfinished, timeout)


def drain_background_sync(timeout: float | None = None) -> None:
    """:func:`drain_background` for sync code (a thread without a running event loop)."""
    _check_timeout(timeout, "drain_background_sync")
    if _on_loop_thread():
        raise RuntimeError(
            "drain_background_sync() cannot run on a thread with a running event loop: the "
            "dispatches it waits for may need that loop. Use 'await drain_background()'."
        )
    deadline = None if timeout is None else time.monotonic() + timeout
    while pending := _pending_snapshot():
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        concurrent.futures.wait([entry.finished for entry in pending], timeout=remaining)
        unfinished = [entry for entry in pending if not entry.finished.done()]
        if unfinished:
            raise _unfinished_error(unfinished, timeout)


# --- Background receivers -----------------------------------------------------------------------


def _check_async_receiver(func: object) -> None:
    if asyncio.iscoroutine(func):
        raise TypeError(
            "@background_receiver got a coroutine object; decorate the 'async def' function "
            "itself, without calling it."
        )
    if not callable(func):
        raise TypeError(
            f"@background_receiver needs an 'async def' function, not {type(func).__name__} "
            f"{func!r}."
        )
    if not iscoroutinefunction(func):
        raise TypeError(
            f"@background_receiver needs an 'async def' receiver, and {_qualname(func)} is "
            "sync; connect a sync receiver with django.dispatch.receiver, or use "
            "send_background() to send a signal without waiting."
        )


def _attach(func: object, dispatcher: Receiver) -> bool:
    """Make ``func`` hold ``dispatcher``; return whether ``dispatcher`` may be connected weakly.

    The decorated function holds its dispatchers, so they live exactly as long as it does, as a
    receiver connected by Django's ``@receiver`` does.
    A callable that takes no attributes (a bound method) cannot hold them: its dispatcher is then
    connected strongly, so that it is not dropped at once.
    """
    try:
        dispatchers = getattr(func, _DISPATCHERS_ATTR, None)
        if dispatchers is None:
            dispatchers = []
            setattr(func, _DISPATCHERS_ATTR, dispatchers)
        setattr(func, _BACKGROUND_MARK, True)
    except AttributeError:
        return False
    dispatchers.append(dispatcher)
    return True


def background_receiver(
    signal: Signal | Sequence[Signal],
    sender: object = None,
    *,
    on_commit: bool = False,
    dispatch_uid: object = None,
) -> Callable[[AsyncReceiverT], AsyncReceiverT]:
    """Connect an ``async def`` receiver that the signal's senders do not wait for.

    Django's ``receiver`` connects an async receiver so that a sync ``send()`` (``Model.save()``,
    also from ``asave()``) runs it to its end before returning.
    This decorator connects a small sync receiver instead, which schedules the decorated one as a
    background dispatch (see :func:`send_background`) and returns at once.
    With ``on_commit=True`` it is scheduled only once the transaction of the ``using`` database the
    signal names (the default database otherwise) commits, and never if it rolls back.

    ``signal`` may be a list or tuple of signals, as with Django's ``receiver``.
    The receiver is connected weakly, as Django connects receivers: it lives as long as the
    decorated function (a bound method, which cannot hold it, is connected strongly).
    Returns the decorated function unchanged, so it can still be called (and tested) directly.
    """
    signals: list[Any] = list(signal) if isinstance(signal, list | tuple) else [signal]
    for one in signals:
        _check_signal(one, "background_receiver")
    if not isinstance(on_commit, bool):
        raise TypeError(
            f"background_receiver(on_commit=...) must be True or False, not {on_commit!r}."
        )

    def decorator(func: AsyncReceiverT) -> AsyncReceiverT:
        _check_async_receiver(func)
        description = f"background receiver {_qualname(func)}"

        def dispatcher(signal: Signal, sender: object, **named: Any) -> None:
            dispatch = _Dispatch(
                signal, sender, named, timeout=None, max_concurrency=None, robust=True
            )
            call = functools.partial(dispatch.call_async_guarded, func)
            what = f"{description} for {_describe_sender(sender)}"
            # No transaction can be open on a thread that runs an event loop (and asking the
            # connection there would raise SynchronousOnlyOperation): schedule at once.
            if on_commit and not _on_loop_thread():
                using = named.get("using") or DEFAULT_DB_ALIAS
                transaction.on_commit(functools.partial(_submit, what, call), using=using)
            else:
                _submit(what, call)

        # Names and __wrapped__ only: func's __dict__ may hold a coroutine-function mark that
        # would make Django take the (sync) dispatcher for an async receiver.
        functools.update_wrapper(dispatcher, func, updated=())
        setattr(dispatcher, _BACKGROUND_MARK, True)
        weak = _attach(func, dispatcher)
        for one in signals:
            one.connect(dispatcher, sender=sender, weak=weak, dispatch_uid=dispatch_uid)
        return func

    return decorator


def is_background_receiver(receiver: object) -> bool:
    """Whether ``receiver`` (a connected receiver, or a weak reference to one) runs in background.

    True for the receivers :func:`background_receiver` connects and for the functions it decorates.
    """
    if isinstance(receiver, weakref.ReferenceType):
        receiver = receiver()
    return getattr(receiver, _BACKGROUND_MARK, False) is True
