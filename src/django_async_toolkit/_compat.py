"""Django and asgiref version switches, kept in one place.

Code elsewhere in the package asks the flags here instead of testing ``django.VERSION`` itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import django
from asgiref.sync import AsyncToSync, SyncToAsync

T = TypeVar("T")

DJANGO_VERSION = django.VERSION[:2]

#: Python 3.12+ can start a task eagerly (``asyncio.Task(..., eager_start=True)``): its first step
#: runs at once, and a coroutine that finishes without suspending never goes through the loop.
EAGER_TASKS = sys.version_info >= (3, 12)

#: ``Signal.asend``/``asend_robust`` exist (Django 5.0+).
HAS_SIGNAL_ASEND = DJANGO_VERSION >= (5, 0)
#: ``Signal._live_receivers`` returns a ``(sync, async)`` pair (5.0+), not a list (4.2).
LIVE_RECEIVERS_SPLIT = DJANGO_VERSION >= (5, 0)
#: ``Signal.asend`` runs async receivers in a TaskGroup (6.1+), not ``asyncio.gather``.
SIGNAL_ASEND_TASKGROUP = DJANGO_VERSION >= (6, 1)
#: ``LoginRequiredMiddleware.process_view`` (5.1+) reads ``request.user`` before it looks at the
#: view's ``login_required`` (5.1, 5.2); 6.0+ looks at the view first.
LOGIN_REQUIRED_READS_USER_FIRST = DJANGO_VERSION < (6, 0)


# --- signals: receiver lookup and asgiref's thread-local state ---


def signal_live_receivers(signal: Any, sender: object) -> tuple[list[Any], list[Any]]:
    """The live receivers of ``signal`` for ``sender``, as ``(sync, async)`` lists.

    ``Signal._live_receivers`` resolves weak references, filters by sender and fills the cache on
    every version; it returns a ``(sync, async)`` pair on 5.0+ and one list on 4.2, which is split
    here the way 5.x splits it at connect time.
    """
    if LIVE_RECEIVERS_SPLIT:
        # Two fresh lists on every 5.x/6.x: no copy needed.
        return signal._live_receivers(sender)  # type: ignore[no-any-return]
    from asgiref.sync import iscoroutinefunction

    receivers = signal._live_receivers(sender)
    return (
        [r for r in receivers if not iscoroutinefunction(r)],
        [r for r in receivers if iscoroutinefunction(r)],
    )


def loop_served_by_this_thread() -> asyncio.AbstractEventLoop | None:
    """The event loop that the current ``sync_to_async`` thread serves, if any.

    asgiref records it in ``SyncToAsync.threadlocal`` (``AsyncToSync`` uses it to come back to the
    loop); the record stays after the call, so callers check that the loop still runs.
    """
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop: asyncio.AbstractEventLoop | None = getattr(local, "main_event_loop", None)
    return loop


def is_async_to_sync_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` was made by ``async_to_sync`` for one call (it dies with that call)."""
    return loop in AsyncToSync.loop_thread_executors


def _executor_has_thread(executor: object) -> bool:
    """Whether a context's executor has a thread: a pooled one (``django_async_toolkit.workers``)
    says so itself (it has one once it leased a worker); any other executor is a thread."""
    has_thread = getattr(executor, "has_thread", None)
    return True if has_thread is None else bool(has_thread)


def thread_sensitive_context_has_thread(context: object) -> bool:
    """Whether a ``ThreadSensitiveContext`` has started its own thread (done lazily by asgiref),
    or leased a pool worker."""
    executor = SyncToAsync.context_to_thread_executor.get(context)  # type: ignore[call-overload]
    return executor is not None and _executor_has_thread(executor)


#: The ASGI handler's ``handle`` races the view against a disconnect listener in a TaskGroup
#: (6.1+), with ``asyncio.wait`` (5.0 to 6.0), or not at all (4.2, which closes the response
#: inside ``send_response``).
ASGI_HANDLE_TASKGROUP = DJANGO_VERSION >= (6, 1)
ASGI_HANDLE_LISTENS_FOR_DISCONNECT = DJANGO_VERSION >= (5, 0)


def thread_sensitive_thread_exists() -> bool:
    """Whether a thread-sensitive ``sync_to_async`` call made now would run on an existing thread.

    Inside a request of Django's ASGI handler (a fresh ``ThreadSensitiveContext``), asgiref creates
    the request's single-thread executor on the first thread-sensitive call, so this is ``False``
    until the request has done sync work, and ``True`` afterwards; the same holds for the
    toolkit's pooled context, whose executor is registered up front and leases a worker on the
    first call.
    It is also ``True`` when a parent ``async_to_sync`` thread would take the call, outside any
    thread-sensitive context (asgiref's process-wide thread), and when asgiref's internals are not
    the ones this reads: callers then take Django's own path, which is always correct.
    """
    context_var = getattr(SyncToAsync, "thread_sensitive_context", None)
    context_executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    parent_executors = getattr(AsyncToSync, "executors", None)
    if (
        not isinstance(context_var, contextvars.ContextVar)
        or not isinstance(context_executors, weakref.WeakKeyDictionary)
        or parent_executors is None
    ):
        return True
    if getattr(parent_executors, "current", None) is not None:
        return True
    context = context_var.get(None)
    if context is None:
        return True
    executor = context_executors.get(context)
    return executor is not None and _executor_has_thread(executor)


#: ``BaseCommand.get_check_kwargs(options)`` exists (Django 5.2+); 4.2 builds the tags inline.
HAS_GET_CHECK_KWARGS = DJANGO_VERSION >= (5, 2)


def _context_takes_executor() -> bool:
    import inspect

    from asgiref.sync import ThreadSensitiveContext

    return "executor" in inspect.signature(ThreadSensitiveContext).parameters


#: asgiref's ``ThreadSensitiveContext(executor=...)`` exists: a context with an executor that its
#: caller owns, used even inside an enclosing context or ``async_to_sync`` call (newer asgiref).
THREAD_SENSITIVE_CONTEXT_EXECUTOR = _context_takes_executor()


def after_fork_in_child(func: Callable[[], None]) -> None:
    """Call ``func`` in a forked child (a pre-forking server's worker); nothing on Windows.

    ``os.register_at_fork`` does not exist where processes are not forked (Windows).
    """
    register = getattr(os, "register_at_fork", None)
    if register is not None:
        register(after_in_child=func)


def adopt_context(context: contextvars.Context) -> None:
    """Copy the values of ``context`` into the current context.

    What Django 6.1's ``Signal.asend`` does with the context its receivers shared, and what a task
    that runs code on behalf of the current one does, so that the caller sees its changes.
    """
    for var, value in context.items():
        try:
            if var.get() is value:
                continue
        except LookupError:
            pass
        var.set(value)


def start_task(coroutine: Coroutine[Any, Any, T], context: contextvars.Context) -> asyncio.Task[T]:
    """A task for ``coroutine`` in ``context``; on Python 3.12+ it starts eagerly.

    An eager task runs at once, up to its first suspension: one that finishes without
    suspending is done on return, and never waited for the loop.
    """
    loop = asyncio.get_running_loop()
    if EAGER_TASKS:
        return asyncio.Task(coroutine, loop=loop, context=context, eager_start=True)  # type: ignore[call-arg,unused-ignore]
    return loop.create_task(coroutine, context=context)


def exception_unretrieved(future: asyncio.Future[Any]) -> bool:
    """Whether ``future`` failed and nothing has retrieved its error yet.

    asyncio tracks this (it warns "exception was never retrieved" when such a future is
    collected) in ``_log_traceback``, on both its C and Python implementations.
    """
    if not future.done() or future.cancelled():
        return False
    return bool(getattr(future, "_log_traceback", False))


def in_thread_sensitive_context() -> bool:
    """Whether the current context is inside a ``ThreadSensitiveContext`` (a request's, say).

    Its owner (Django's ASGI handler at the end of a request, the toolkit's background
    dispatch and async commands) takes care of the connections of its thread when it ends.
    """
    return SyncToAsync.thread_sensitive_context.get(None) is not None
