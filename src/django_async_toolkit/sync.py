"""Adapters between sync and async code that do not leak database connections or block the loop.

``sync_to_async`` runs a sync function on a thread; Django only closes that thread's database
connections when a request ends on it.
Calls made outside a request (background tasks, async management commands, code on the global
thread-sensitive thread) or with ``thread_sensitive=False`` leave their connections open until the
thread dies, and a connection that broke or outlived ``CONN_MAX_AGE`` is reused by the next call.
:func:`db_sync_to_async` does what Django does around each request, around each call.

Threads used here:

* thread-sensitive calls (the default) run on the thread that asgiref picks: the sync thread that
  called ``async_to_sync`` if there is one, the request's thread under Django's ASGI handler,
  otherwise one process-wide thread;
* ``thread_sensitive=False`` calls run in the event loop's default executor;
* :func:`run_blocking` runs in a bounded pool of its own (``ASYNC_TOOLKIT_BLOCKING_WORKERS``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, overload

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from django_async_toolkit import _compat
from django_async_toolkit._validation import check_callable, is_seconds, qualname, unwrap_partial
from django_async_toolkit.conf import conf

__all__ = [
    "db_sync_to_async",
    "ensure_async",
    "ensure_sync",
    "run_blocking",
    "shutdown_blocking_pool",
]

P = ParamSpec("P")
R = TypeVar("R")


def is_async_callable(func: object) -> bool:
    """Whether calling ``func`` returns something to await.

    True for ``async def`` functions and methods, callables marked with asgiref's
    ``markcoroutinefunction``, ``functools.partial`` objects around any of these, and instances
    whose class defines ``async def __call__``.
    """
    func = unwrap_partial(func)
    if iscoroutinefunction(func):
        return True
    if isinstance(func, type):
        # Calling a class makes an instance, whatever its __call__ does.
        return False
    return iscoroutinefunction(getattr(type(func), "__call__", None))  # noqa: B004


# --- Database connection hygiene ---------------------------------------------------------------

# The connections each thread may hold, so that the checks around every call cost a thread-local
# lookup rather than Django's connections.all(initialized_only=True) scan (two exceptions per
# alias, a measurable share of a thread hop).
# A thread's set is seeded by one scan the first time the toolkit looks at that thread; from then
# on, every connection opened on the thread is added when Django sends connection_created.
_seen = threading.local()


def _note_connection_created(
    sender: object, connection: BaseDatabaseWrapper, **kwargs: Any
) -> None:
    opened: set[BaseDatabaseWrapper] | None = getattr(_seen, "connections", None)
    if opened is None:
        return
    # Only this thread's own wrappers, as connections.all() lists them: not one shared across
    # threads (inc_thread_sharing), which belongs to the thread that made it, nor a temporary
    # one that is not in `connections` at all (PostgreSQL's _nodb_cursor() connects a wrapper
    # with the alias "__no_db__"). Connecting is rare, so the scan costs nothing that shows.
    if any(own is connection for own in connections.all(initialized_only=True)):
        opened.add(connection)


connection_created.connect(
    _note_connection_created, weak=False, dispatch_uid="django_async_toolkit.sync.connections"
)


def _thread_connections() -> list[BaseDatabaseWrapper]:
    """The connections open on this thread (each checked at once: a set may not change size)."""
    opened: set[BaseDatabaseWrapper] | None = getattr(_seen, "connections", None)
    if opened is None:
        opened = _seen.connections = set(connections.all(initialized_only=True))
    if not opened:
        return []
    # Forget the closed ones; a reconnect sends connection_created and adds the wrapper back.
    live = [wrapper for wrapper in opened if wrapper.connection is not None]
    if len(live) != len(opened):
        opened.intersection_update(live)
    return live


def _close_if_stale(connection: BaseDatabaseWrapper) -> None:
    """Close ``connection`` if it broke or outlived ``CONN_MAX_AGE``; never open one, or end a
    transaction.

    This is Django's ``close_if_unusable_or_obsolete()`` minus two hazards: that method calls
    ``get_autocommit()``, which opens a connection (and trips pytest-django's database blocker),
    and it would close a connection in the middle of the caller's atomic block.
    """
    if connection.connection is None or connection.in_atomic_block:
        return
    connection.health_check_done = False  # type: ignore[attr-defined]
    # The code left autocommit changed: do not hand that session to the next call.
    if connection.autocommit != connection.settings_dict["AUTOCOMMIT"]:
        connection.close()
        return
    if connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
            connection.health_check_done = True  # type: ignore[attr-defined]
        else:
            connection.close()
            return
    if connection.close_at is not None and connection.close_at <= time.monotonic():
        connection.close()


def _close_stale_connections() -> None:
    """Close this thread's stale or unusable database connections, as :func:`db_sync_to_async`."""
    for connection in _thread_connections():
        _close_if_stale(connection)


def _close_thread_connections() -> None:
    """Close every database connection this thread holds, except inside an atomic block."""
    for connection in _thread_connections():
        if not connection.in_atomic_block:
            connection.close()


# --- db_sync_to_async --------------------------------------------------------------------------


@overload
def db_sync_to_async(
    func: Callable[P, R], *, thread_sensitive: bool = True
) -> Callable[P, Coroutine[Any, Any, R]]: ...


@overload
def db_sync_to_async(
    func: None = None, *, thread_sensitive: bool = True
) -> Callable[[Callable[P, R]], Callable[P, Coroutine[Any, Any, R]]]: ...


def db_sync_to_async(
    func: Callable[P, R] | None = None, *, thread_sensitive: bool = True
) -> (
    Callable[P, Coroutine[Any, Any, R]]
    | Callable[[Callable[P, R]], Callable[P, Coroutine[Any, Any, R]]]
):
    """``sync_to_async`` for code that uses the database: it leaves no stale connection behind.

    Use it bare (``db_sync_to_async(func)``), as a decorator (``@db_sync_to_async``) or with
    options (``@db_sync_to_async(thread_sensitive=False)``).
    The result is awaited like ``sync_to_async``'s; type checkers see ``func``'s signature.

    On the thread that runs the call, before and after it, each database connection that thread
    holds is closed if it is unusable (an error left it broken), if it outlived ``CONN_MAX_AGE``
    (with the default ``CONN_MAX_AGE = 0``: after every call), or if the call left autocommit
    changed; this is what Django does at the start and end of each request.

    Inside a request (a thread-sensitive call in a ``ThreadSensitiveContext``, which Django's
    ASGI handler gives each request, and the toolkit each background dispatch and async command)
    the connection is left to the end of the request, as Django leaves it: the request's end
    closes or keeps it, so three calls share one connection even at ``CONN_MAX_AGE = 0``.
    Outside one (a script, ``asyncio.run``, ``thread_sensitive=False``) nothing else would, and
    the cleanup runs around every call.
    The cleanup after the call runs in a ``finally`` on that thread, so it also runs when the call
    raises or when the awaiting task is cancelled (a thread cannot be interrupted: the cleanup
    runs when the call returns).
    A connection inside an atomic block is never closed, and no connection is opened just to be
    checked.

    Wrapping an ``async def`` function (or anything :func:`is_async_callable` accepts) is a
    ``TypeError`` at wrap time: await it directly.
    """

    def wrap(target: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
        check_callable("db_sync_to_async", target)
        if is_async_callable(target):
            raise TypeError(
                f"db_sync_to_async() wraps sync functions, and {qualname(target)} is async: "
                "await it directly instead of wrapping it."
            )

        @functools.wraps(target)
        def call_closing_stale_connections(*args: P.args, **kwargs: P.kwargs) -> R:
            if thread_sensitive and _compat.in_thread_sensitive_context():
                # Inside a request: its end closes or keeps the connection, as Django does.
                return target(*args, **kwargs)
            _close_stale_connections()
            try:
                return target(*args, **kwargs)
            finally:
                _close_stale_connections()

        return sync_to_async(call_closing_stale_connections, thread_sensitive=thread_sensitive)

    if func is None:
        return wrap
    return wrap(func)


# --- ensure_async / ensure_sync ----------------------------------------------------------------


@overload
def ensure_async(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...


@overload
def ensure_async(func: Callable[P, R]) -> Callable[P, Awaitable[R]]: ...


def ensure_async(func: Callable[P, Any]) -> Callable[P, Awaitable[Any]]:
    """Return ``func`` if it is async already, otherwise an async version of it.

    ``func`` may be a function, a bound method, a ``functools.partial`` or an object with a
    ``__call__`` method.
    An async callable (see :func:`is_async_callable`) is returned as it is.
    A sync one is wrapped with :func:`db_sync_to_async` (thread-sensitive), because code that gets
    "either kind" of callable cannot know whether it touches the database.
    """
    check_callable("ensure_async", func)
    if is_async_callable(func):
        return func
    return db_sync_to_async(func)


@overload
def ensure_sync(func: Callable[P, Awaitable[R]]) -> Callable[P, R]: ...


@overload
def ensure_sync(func: Callable[P, R]) -> Callable[P, R]: ...


def ensure_sync(func: Callable[P, Any]) -> Callable[P, Any]:
    """Return ``func`` if it is sync already, otherwise a sync version of it.

    ``func`` may be a function, a bound method, a ``functools.partial`` or an object with an
    ``async def __call__``.
    A sync callable is returned as it is.
    An async one is wrapped so that calling it runs it to completion with ``async_to_sync``: from a
    thread that ``sync_to_async`` started, on the event loop that started it; elsewhere on a new
    loop.
    Calling the wrapper on a thread whose event loop is running (in a coroutine) would block that
    loop, so it raises ``RuntimeError`` telling you to await the function instead.
    """
    check_callable("ensure_sync", func)
    if not is_async_callable(func):
        return func
    name = qualname(func)

    # async_to_sync wants an `async def`; partials and objects with an async __call__ are not one.
    async def await_func(*args: P.args, **kwargs: P.kwargs) -> Any:
        return await func(*args, **kwargs)

    run = async_to_sync(await_func)

    # updated=() keeps func's __dict__ (with any coroutine marker) off the sync wrapper.
    @functools.wraps(func, updated=())
    def call_to_completion(*args: P.args, **kwargs: P.kwargs) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return run(*args, **kwargs)
        raise RuntimeError(
            f"ensure_sync({name}) was called on a thread that is running an event loop, where "
            "waiting for it would block the loop: in async code `await` it directly, or use "
            f"ensure_async({name}) where you may get either kind of callable."
        )

    return call_to_completion


# --- run_blocking ------------------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool_after_fork() -> None:
    """In a forked child the pool's threads do not exist: start afresh on the next call."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


_compat.after_fork_in_child(_forget_pool_after_fork)


def _run_closing_connections(
    func: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> R:
    try:
        return func(*args, **kwargs)
    finally:
        _close_thread_connections()


async def run_blocking(
    func: Callable[..., R], /, *args: Any, timeout: float | None = None, **kwargs: Any
) -> R:
    """Run blocking, non-database ``func(*args, **kwargs)`` in the toolkit's thread pool.

    Use it for file I/O, blocking client libraries, CPU-bound work that releases the GIL:
    anything that would stall the event loop.
    The pool is bounded (``ASYNC_TOOLKIT_BLOCKING_WORKERS`` threads; more calls wait for a free
    thread) and separate from the thread-sensitive thread, so a slow call here does not hold up
    ``sync_to_async`` calls, and a long thread-sensitive call does not hold up this.
    The setting is read when the pool is created, on the first call;
    :func:`shutdown_blocking_pool` discards the pool so that the next call reads it again.

    ``func`` runs in a copy of the caller's ``contextvars`` context.
    An exception it raises is raised here, with its traceback.
    Past ``timeout`` seconds this raises ``TimeoutError``; the call itself cannot be interrupted
    and keeps its thread until it returns.
    It is not for database work: its connections are not the request's and a database connection
    the call opens anyway is closed when it returns.
    """
    check_callable("run_blocking", func)
    if is_async_callable(func):
        raise TypeError(
            f"run_blocking() runs sync functions in threads, and {qualname(func)} is async: "
            "await it directly."
        )
    if not (timeout is None or is_seconds(timeout)):
        raise ValueError(
            f"run_blocking() timeout is {timeout!r}; it must be a number of seconds greater "
            "than 0, or None to wait until the call returns."
        )
    loop = asyncio.get_running_loop()
    call = functools.partial(
        contextvars.copy_context().run, _run_closing_connections, func, args, kwargs
    )
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=conf.BLOCKING_WORKERS, thread_name_prefix="async-toolkit-blocking"
            )
        future = loop.run_in_executor(_pool, call)
    if timeout is None:
        return await future
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await future
    except TimeoutError:
        if not deadline.expired():
            raise  # func's own TimeoutError
        raise TimeoutError(
            f"run_blocking({qualname(func)}) did not finish within {timeout} seconds; "
            "it keeps running in its thread until it returns."
        ) from None


def shutdown_blocking_pool(wait: bool = True) -> None:
    """Shut down the :func:`run_blocking` pool; the next ``run_blocking`` creates a new one.

    With ``wait=True`` it returns when the calls already submitted have finished.
    Safe to call twice, or when no pool exists.
    The ASGI lifespan shutdown calls it.
    """
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=wait)
