"""The pool in asgiref's terms: the context a unit of work enters, and the process-wide pool.

asgiref runs a thread-sensitive ``sync_to_async`` call on the executor that
``SyncToAsync.context_to_thread_executor`` holds for the current ``ThreadSensitiveContext``; a
:class:`PooledContext` puts a lease executor there, which runs the calls on a leased worker.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync, ThreadSensitiveContext

from django_async_toolkit import _compat
from django_async_toolkit.conf import conf
from django_async_toolkit.workers import pool as _pool_module
from django_async_toolkit.workers.pool import PoolStats, WorkerPool, _Item, _Lease

P = ParamSpec("P")
R = TypeVar("R")


class _LeaseExecutor(Executor):
    """The executor of one pooled context, in ``SyncToAsync.context_to_thread_executor``.

    Its first ``submit()`` leases a worker (without blocking: the work waits in the pool's queue
    when every worker is leased); later ones go to the same worker. After :meth:`end`, a call (from
    a task that outlived its unit) runs on the unit's worker while that is not released yet, and
    otherwise leases a worker for that call.
    """

    __slots__ = ("_ended", "_in_flight", "_lease")

    def __init__(self) -> None:
        self._lease: _Lease | None = None
        self._ended = False
        self._in_flight = 0  # calls submitted and not done (run, failed or cancelled) yet

    @property
    def has_thread(self) -> bool:
        """Whether this unit has a worker, or is waiting for one (it did sync work)."""
        return self._lease is not None and not self._ended

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        future: Future[R] = Future()
        future.add_done_callback(self._call_done)  # (before any worker can see the future)
        item: _Item = (future, fn, args, kwargs)
        with _pool_module._lock:
            self._in_flight += 1
            lease = self._lease
            if lease is not None:
                if not self._ended:
                    lease.submit(item)
                    return future
                if lease.reopen(item):
                    return future
            pool = _current_pool_locked()
            if pool is not None:
                lease = self._lease = pool._lease()
                lease.submit(item)
                if self._ended:
                    lease.end()  # one call, then the worker goes back
                return future
        # No pool any more (ASYNC_TOOLKIT_SYNC_WORKERS became None): a thread for this call.
        self._call_done(future)  # (that future is not used)
        fallback = ThreadPoolExecutor(max_workers=1, thread_name_prefix="async-toolkit-once")
        try:
            return fallback.submit(fn, *args, **kwargs)
        finally:
            fallback.shutdown(wait=False)

    def _call_done(self, future: Future[Any]) -> None:
        with _pool_module._lock:
            self._in_flight -= 1

    def end(self) -> None:
        """The unit ended: release its worker after the work queued on it and the housekeeping."""
        with _pool_module._lock:
            if not self._ended and self._lease is not None:
                self._lease.end()
            self._ended = True

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Release the lease (asgiref never calls this on a pooled context's executor)."""
        self.end()


class PooledContext(ThreadSensitiveContext):
    """A ``ThreadSensitiveContext`` whose thread-sensitive calls run on a leased pool worker.

    Like asgiref's own context without an executor, only the outermost context counts: inside
    another thread-sensitive context it does nothing.
    The worker is leased on the first thread-sensitive call and released when the context exits;
    tasks that outlive the context lease a worker per call (asgiref's "ThreadSensitiveContext has
    exited" error never applies).
    """

    def __init__(self) -> None:
        super().__init__()
        self._lease_executor: _LeaseExecutor | None = None

    async def __aenter__(self) -> PooledContext:
        if SyncToAsync.thread_sensitive_context.get(None) is None:
            self.token = SyncToAsync.thread_sensitive_context.set(self)
            executor = self._lease_executor = _LeaseExecutor()
            SyncToAsync.context_to_thread_executor[self] = executor
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.token is None:
            return
        SyncToAsync.thread_sensitive_context.reset(self.token)
        self.token = None
        # The executor stays registered: tasks that outlive this context still find it (it
        # leases per call from now on), and it goes when the context is garbage collected.
        assert self._lease_executor is not None
        self._lease_executor.end()


def _current_lease_executor() -> _LeaseExecutor | None:
    """The current unit's lease executor, or ``None`` outside a pooled context."""
    context = SyncToAsync.thread_sensitive_context.get(None)
    if context is None:
        return None
    executor = SyncToAsync.context_to_thread_executor.get(context)
    return executor if isinstance(executor, _LeaseExecutor) else None


def release_worker() -> None:
    """Give back the current unit's worker now, rather than when its pooled context exits.

    The worker goes back after the work queued on it and the end-of-work housekeeping ran.
    Later thread-sensitive calls of the unit then run as those of a task that outlived it (on
    that worker while it is not released yet, else on a worker leased for the call), so the unit
    no longer holds a worker while it waits for something else: the handler does this before it
    streams a response. Does nothing outside a pooled context, or when it has no worker.
    """
    executor = _current_lease_executor()
    if executor is not None:
        executor.end()


def housekeeping_left_to_pool() -> bool:
    """Whether the current unit's end-of-work housekeeping can be left to the pool's workers.

    ``True`` inside a pooled context whose thread-sensitive calls run on leased workers (no
    ``async_to_sync`` thread takes them instead), none of which is running or waiting now: each
    worker the unit used runs ``close_old_connections`` (while it is connected to
    ``request_finished``) after the unit's last call on it, before it serves another lease, so
    the unit need not send a call of its own for that.
    ``False`` while a call is in flight (a sync view still running after its request was
    cancelled): housekeeping sent now must queue behind it, as Django's does.
    """
    if getattr(AsyncToSync.executors, "current", None) is not None:
        return False  # asgiref sends the calls to the parent async_to_sync thread
    executor = _current_lease_executor()
    return executor is not None and executor._in_flight == 0


def pooled_context() -> ThreadSensitiveContext:
    """The thread-sensitive context for one unit of work (a request, a dispatch, a command).

    A :class:`PooledContext` when ``ASYNC_TOOLKIT_SYNC_WORKERS`` is a number; asgiref's own
    ``ThreadSensitiveContext()`` (a thread of its own, as Django does it) when it is ``None``.
    Use it with ``async with``.
    """
    if conf.SYNC_WORKERS is None:
        return ThreadSensitiveContext()
    return PooledContext()


# --- the process-wide pool ---------------------------------------------------------------------

_pool: WorkerPool | None = None

#: At interpreter exit, how long to wait for the workers to close their connections; a worker
#: still busy then is left to die with the process (it is a daemon thread).
_EXIT_TIMEOUT = 5.0
_exit_hook_registered = False


def _current_pool_locked() -> WorkerPool | None:
    global _pool, _exit_hook_registered
    size = conf.SYNC_WORKERS
    if size is None:
        return None
    if _pool is None or _pool._closing:
        _pool = WorkerPool(size)
        if not _exit_hook_registered:
            # A script or a server without lifespan never stops the pool: close each worker's
            # connections on it at exit, rather than dropping them with the threads. A plain
            # atexit hook runs after the toolkit's exit drain of background dispatch (a
            # threading exit hook), which may still need the workers.
            atexit.register(_shutdown_at_exit)
            _exit_hook_registered = True
    elif _pool.size != size:
        _pool._resize_locked(size)  # the setting changed (override_settings in tests)
    return _pool


def get_pool() -> WorkerPool | None:
    """The process-wide pool (started lazily), or ``None`` when ``ASYNC_TOOLKIT_SYNC_WORKERS`` is
    ``None``."""
    with _pool_module._lock:
        return _current_pool_locked()


def pool_stats() -> PoolStats | None:
    """The process-wide pool's figures, or ``None`` when no pool has started (yet)."""
    with _pool_module._lock:
        pool = _pool
    return None if pool is None else pool.stats()


def shutdown_pool(timeout: float | None = None) -> None:
    """Stop the process-wide pool: each worker's connections closed on it, the threads joined.

    Leased workers stop when their lease ends; waits at most ``timeout`` seconds for the threads.
    A later lease starts a new pool. Safe to call when no pool runs, and twice.
    This blocks: from async code, ``await asyncio.to_thread(shutdown_pool)``.
    """
    global _pool
    with _pool_module._lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close(timeout)


def _shutdown_at_exit() -> None:
    # Like shutdown_pool(), but the closed pool stays readable: exit hooks that run after this
    # one may still report its figures (pool_stats()).
    with _pool_module._lock:
        pool = _pool
    if pool is not None:
        pool.close(_EXIT_TIMEOUT)


async def ashutdown_pool(timeout: float | None = None) -> None:
    """:func:`shutdown_pool` from async code, also from inside a unit that holds a worker.

    The worker of the calling unit (an async command's, when its cleanup stops the machinery)
    cannot be joined before the unit ends: it closes its connections and stops when its lease
    ends, and is not waited for here.
    """
    global _pool
    own = _own_worker_thread()
    with _pool_module._lock:
        pool, _pool = _pool, None
    if pool is not None:
        await asyncio.to_thread(pool.close, timeout, own)


def _own_worker_thread() -> threading.Thread | None:
    executor = _current_lease_executor()
    if executor is not None:
        with _pool_module._lock:
            lease = executor._lease
            if lease is not None and lease.worker is not None:
                return lease.worker.thread
    return None


def _forget_after_fork() -> None:
    # The child has none of the parent's threads: start afresh (the lock may be held).
    global _pool
    _pool = None
    _pool_module._lock = threading.Lock()


_compat.after_fork_in_child(_forget_after_fork)
