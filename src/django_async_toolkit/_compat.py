"""Django and asgiref version switches, kept in one place.

Code elsewhere in the package asks the flags here instead of testing ``django.VERSION`` itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import weakref
from collections.abc import Callable
from typing import Any

import django
from asgiref.sync import AsyncToSync, SyncToAsync

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


def thread_sensitive_context_has_thread(context: object) -> bool:
    """Whether a ``ThreadSensitiveContext`` has started its own thread (done lazily by asgiref)."""
    return context in SyncToAsync.context_to_thread_executor


#: The ASGI handler's ``handle`` races the view against a disconnect listener in a TaskGroup
#: (6.1+), with ``asyncio.wait`` (5.0 to 6.0), or not at all (4.2, which closes the response
#: inside ``send_response``).
ASGI_HANDLE_TASKGROUP = DJANGO_VERSION >= (6, 1)
ASGI_HANDLE_LISTENS_FOR_DISCONNECT = DJANGO_VERSION >= (5, 0)


def thread_sensitive_thread_exists() -> bool:
    """Whether a thread-sensitive ``sync_to_async`` call made now would run on an existing thread.

    Inside a request of Django's ASGI handler (a fresh ``ThreadSensitiveContext``), asgiref creates
    the request's single-thread executor on the first thread-sensitive call, so this is ``False``
    until the request has done sync work, and ``True`` afterwards.
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
    return context is None or context in context_executors


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
