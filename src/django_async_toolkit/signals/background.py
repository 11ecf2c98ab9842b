"""Background dispatch: ``send_background``, ``drain_background`` and ``background_receiver``.

``send_background`` dispatches without waiting, from async or sync code, and
``background_receiver`` connects an ``async def`` receiver that its senders never wait for.
Each background dispatch is registered when it is sent, runs in a fresh ``contextvars`` context
inside its own thread-sensitive context (its ORM calls run on a worker it leases from the
toolkit's pool, :mod:`django_async_toolkit.workers`, so a burst of dispatches never means as many
threads or connections; with ``ASYNC_TOOLKIT_SYNC_WORKERS = None``, on a thread of its own whose
connections are closed when it ends), logs its failures, and is awaited by ``drain_background``.

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
import concurrent.futures
import contextvars
import functools
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.dispatch import Signal

from django_async_toolkit import _compat, workers
from django_async_toolkit._validation import check_signal, check_timeout, qualname
from django_async_toolkit.conf import SETTINGS, conf
from django_async_toolkit.signals import _exit
from django_async_toolkit.signals import tasks as _tasks
from django_async_toolkit.signals.dispatch import (
    Receiver,
    _describe_sender,
    _Dispatch,
    _has_no_receivers,
    _on_loop_thread,
)

__all__ = [
    "background_receiver",
    "drain_background",
    "drain_background_sync",
    "is_background_receiver",
    "send_background",
    "stop_background_loop",
]

logger = logging.getLogger("django_async_toolkit.signals")

AsyncReceiverT = TypeVar("AsyncReceiverT", bound=Callable[..., Awaitable[Any]])

_BACKGROUND_MARK = "_async_toolkit_background_receiver"
_DISPATCHERS_ATTR = "_async_toolkit_background_dispatchers"
_TASK_MARK = "_async_toolkit_task_dispatcher"


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


_compat.after_fork_in_child(_forget_after_fork)


def _get_private_loop() -> asyncio.AbstractEventLoop:
    global _private_loop, _atexit_registered
    with _private_loop_lock:
        if _private_loop is None:
            _private_loop = _PrivateLoop()
            if not _atexit_registered:
                _exit.register(_drain_at_exit, fallback=stop_background_loop)
                _atexit_registered = True
        return _private_loop.loop


_exit_executor: _exit.DrainingThreadExecutor | None = None


def _drain_at_exit() -> None:
    """Let pending dispatches finish (``ASYNC_TOOLKIT_DRAIN_TIMEOUT``), then stop the loop."""
    global _exit_executor
    try:
        timeout = conf.DRAIN_TIMEOUT
    except ImproperlyConfigured:  # no settings, or an invalid value (E001 says so)
        timeout = SETTINGS["DRAIN_TIMEOUT"].default()  # type: ignore[assignment]
    if not _on_loop_thread():
        _exit_executor = _exit.DrainingThreadExecutor()  # no new thread can start now
        _exit_executor.run_until(lambda: not _pending_snapshot(), timeout)
        # Nothing runs its calls any more: the dispatches cancelled next must not wait for it.
        _exit_executor.close()
    stop_background_loop()


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
    context = (
        workers.pooled_context()
        if _exit_executor is None
        else ThreadSensitiveContext(executor=_exit_executor)
    )
    called = False
    try:
        async with context:
            try:
                await call()
                called = True
            finally:
                # A leased worker keeps its connections (closed when obsolete, at the lease's end);
                # a thread of its own dies with the dispatch: close them now.
                if (
                    not isinstance(context, workers.PooledContext)
                    and _exit_executor is None
                    and _compat.thread_sensitive_context_has_thread(context)
                ):
                    await sync_to_async(connections.close_all)()
    except Exception:
        if called and _exit_executor is not None:
            return  # done; at exit asgiref cannot start the thread that joins its executor
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
    check_signal(signal, "send_background")
    if _has_no_receivers(signal, sender):
        return
    sync_receivers, async_receivers = _compat.signal_live_receivers(signal, sender)
    # Receivers on Django Tasks enqueue now, in the caller's transaction, not in this process.
    for enqueue in [r for r in sync_receivers if getattr(r, _TASK_MARK, False)]:
        enqueue(signal=signal, sender=sender, **named)
    sync_receivers = [r for r in sync_receivers if not getattr(r, _TASK_MARK, False)]
    if not sync_receivers and not async_receivers:
        return
    dispatch = _Dispatch(signal, sender, named, timeout=None, max_concurrency=None, robust=True)
    names = ", ".join(qualname(r) for r in [*sync_receivers, *async_receivers])
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
    check_timeout(timeout, "drain_background")
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
    check_timeout(timeout, "drain_background_sync")
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
            f"@background_receiver needs an 'async def' receiver, and {qualname(func)} is "
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
    task: str | None = None,
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

    With ``task="alias"`` (a backend of the ``TASKS`` setting; ``ASYNC_TOOLKIT_BACKGROUND_TASKS``
    is the default when it is set) every sending of the signal enqueues one Django Task instead,
    which a worker process runs: see :mod:`django_async_toolkit.signals.tasks`.
    """
    signals: list[Any] = list(signal) if isinstance(signal, list | tuple) else [signal]
    for one in signals:
        check_signal(one, "background_receiver")
    if not isinstance(on_commit, bool):
        raise TypeError(
            f"background_receiver(on_commit=...) must be True or False, not {on_commit!r}."
        )

    if task is not None and not isinstance(task, str):
        raise TypeError(
            f"background_receiver(task=...) must be the alias of a TASKS backend or None, not "
            f"{task!r}."
        )

    def decorator(func: AsyncReceiverT) -> AsyncReceiverT:
        _check_async_receiver(func)
        alias = task if task is not None else conf.BACKGROUND_TASKS
        if alias is not None:
            return _connect_task_receiver(func, signals, sender, dispatch_uid, alias)
        description = f"background receiver {qualname(func)}"

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


def _connect_task_receiver(
    func: AsyncReceiverT,
    signals: list[Signal],
    sender: object,
    dispatch_uid: object,
    alias: str,
) -> AsyncReceiverT:
    """Connect a dispatcher that enqueues one Django Task per sending (see ``tasks``)."""
    dispatcher = _tasks.dispatcher(func, signals, alias, submit=_submit)
    functools.update_wrapper(dispatcher, func, updated=())
    for mark in (_BACKGROUND_MARK, _TASK_MARK):
        setattr(dispatcher, mark, True)
    weak = _attach(func, dispatcher)
    for one in signals:
        one.connect(dispatcher, sender=sender, weak=weak, dispatch_uid=dispatch_uid)
    return func


def is_background_receiver(receiver: object) -> bool:
    """Whether ``receiver`` (a connected receiver, or a weak reference to one) runs in background.

    True for the receivers :func:`background_receiver` connects and for the functions it decorates.
    """
    if isinstance(receiver, weakref.ReferenceType):
        receiver = receiver()
    return getattr(receiver, _BACKGROUND_MARK, False) is True
