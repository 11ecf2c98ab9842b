"""The pool itself: reused worker threads, leases, and their housekeeping.

See :mod:`django_async_toolkit.workers` for what it is for; this module knows nothing of asgiref's
contexts (:mod:`.context` plugs the pool into them).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from django.core import signals
from django.db import close_old_connections, connections, reset_queries

from django_async_toolkit import _compat
from django_async_toolkit._validation import is_positive_int

logger = logging.getLogger("django_async_toolkit.workers")

#: One unit of work on a worker: the future to complete (``None`` for housekeeping, whose errors
#: are logged), the function and its arguments.
_Item = tuple["Future[Any] | None", Callable[..., Any], tuple[Any, ...], dict[str, Any]]

#: Guards the state of every pool, lease and lease executor. It is held only for bookkeeping
#: (never while work runs), so one lock for all is simpler than ordering several, and costs
#: nothing measurable.
_lock = threading.Lock()

#: Django's receivers that act on the connections of the thread they run on.
_START_RECEIVERS = (close_old_connections, reset_queries)


def _receivers_connected(signal: Any, candidates: tuple[Callable[..., Any], ...]) -> list[Any]:
    sync_receivers, _ = _compat.signal_live_receivers(signal, None)
    return [receiver for receiver in candidates if receiver in sync_receivers]


def _start_of_lease() -> None:
    """Django's request-start housekeeping for this thread's connections (runs on the worker)."""
    for receiver in _receivers_connected(signals.request_started, _START_RECEIVERS):
        receiver()


def _end_of_lease() -> None:
    """Django's request-end housekeeping for this thread's connections (runs on the worker)."""
    for receiver in _receivers_connected(signals.request_finished, (close_old_connections,)):
        receiver()


def _close_connections() -> None:
    """Close every database connection of this thread (runs on the worker that owns them)."""
    connections.close_all()


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a :class:`WorkerPool`, for monitoring."""

    #: The most workers the pool runs at once (``ASYNC_TOOLKIT_SYNC_WORKERS``).
    size: int
    #: Worker threads started and still running (workers start when first needed).
    threads: int
    #: Workers leased now.
    leased: int
    #: Leases waiting for a worker now.
    waiting: int
    #: The most workers leased at once since the pool started.
    peak: int
    #: Leases granted since the pool started.
    leases: int


class _Worker:
    """One reused thread: runs the items put on its queue, in order."""

    def __init__(self, pool: WorkerPool, number: int) -> None:
        self.pool = pool
        self.queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=self._run, name=f"async-toolkit-worker-{number}", daemon=True
        )

    def put(self, item: _Item) -> None:
        self.queue.put(item)

    def stop(self) -> None:
        """Close this worker's connections on it, then end its thread (after queued work)."""
        self.queue.put((None, _close_connections, (), {}))
        self.queue.put(None)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            future, func, args, kwargs = item
            if future is None:
                try:
                    func(*args, **kwargs)
                except Exception:
                    logger.exception("Worker housekeeping failed: %s", _describe(func))
                continue
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            try:
                result = func(*args, **kwargs)
            except BaseException as error:
                future.set_exception(error)
                del error  # no reference cycle through the traceback
            else:
                future.set_result(result)
            del item, future, func, args, kwargs


def _describe(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", repr(func))


class _Lease:
    """One unit's claim on a worker: waiting for one, then holding it until it is released.

    Once the unit ended, the release is queued on the worker behind its last call. Work that
    comes in meanwhile (a task that outlived the unit) reopens the lease: it runs on the same
    worker, and the release moves behind it, rather than taking another worker.
    """

    __slots__ = ("ended", "pending", "pool", "released", "reopened", "worker")

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.worker: _Worker | None = None
        self.pending: list[_Item] = []
        self.ended = False
        self.reopened = False
        self.released = False

    # submit, grant, end and reopen run with _lock held.

    def submit(self, item: _Item) -> None:
        if self.worker is not None:
            self.worker.put(item)
        else:
            self.pending.append(item)

    def grant(self, worker: _Worker) -> None:
        self.worker = worker
        worker.put((None, _start_of_lease, (), {}))
        for item in self.pending:
            worker.put(item)
        self.pending.clear()
        if self.ended:
            worker.put((None, self._finish, (), {}))

    def end(self) -> None:
        """Give the worker back once the work queued on it and the end housekeeping ran."""
        self.ended = True
        if self.worker is not None:
            self.worker.put((None, self._finish, (), {}))
        elif all(item[0] is not None and item[0].done() for item in self.pending):
            # Nothing left to run (its calls were cancelled while they waited): stop waiting.
            self.pool._forget_waiter(self)
            self.pending.clear()
            self.released = True

    def reopen(self, item: _Item) -> bool:
        """Run ``item`` on this ended lease's worker if it has not been released yet."""
        if self.released:
            return False
        if self.worker is None:
            self.pending.append(item)  # still waiting: it runs when the worker comes
            return True
        self.reopened = True
        self.worker.put(item)
        return True

    def _finish(self) -> None:
        """On the worker: the end housekeeping, then the release (unless work came in since)."""
        _end_of_lease()
        with _lock:
            if self.reopened:
                self.reopened = False
                assert self.worker is not None
                self.worker.put((None, self._finish, (), {}))
                return
            self.released = True
            assert self.worker is not None
            self.pool._release_locked(self.worker)


def _check_size(size: object) -> None:
    if not is_positive_int(size):
        raise ValueError(f"WorkerPool size is {size!r}; it must be an integer of at least 1.")


class WorkerPool:
    """A bounded pool of reused worker threads; leases are granted first come, first served.

    Workers start when first needed, up to ``size``. Use the process-wide pool through
    :func:`pooled_context` and :func:`get_pool` rather than making your own.
    """

    def __init__(self, size: int) -> None:
        _check_size(size)
        self._size = size
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []  # a stack: the most recently used worker goes first
        self._waiters: deque[_Lease] = deque()
        self._leased = 0
        self._peak = 0
        self._leases = 0
        self._numbers = 0
        self._closing = False
        self._all_released = threading.Condition(_lock)

    @property
    def size(self) -> int:
        return self._size

    def stats(self) -> PoolStats:
        """A consistent snapshot of the pool's figures."""
        with _lock:
            return PoolStats(
                size=self._size,
                threads=len(self._workers),
                leased=self._leased,
                waiting=len(self._waiters),
                peak=self._peak,
                leases=self._leases,
            )

    def resize(self, size: int) -> None:
        """Run at most ``size`` workers from now on (extra ones stop when they are released)."""
        _check_size(size)
        with _lock:
            self._resize_locked(size)

    def _resize_locked(self, size: int) -> None:
        self._size = size
        while len(self._workers) > size and self._idle:
            self._retire(self._idle.pop())
        while len(self._workers) < size and (waiter := self._next_waiter()) is not None:
            self._grant(waiter, self._new_worker())

    # --- leasing (all with _lock held) ---------------------------------------------------------

    def _lease(self) -> _Lease:
        lease = _Lease(self)
        if self._idle:
            self._grant(lease, self._idle.pop())
        elif len(self._workers) < self._size and not self._closing:
            self._grant(lease, self._new_worker())
        else:
            self._waiters.append(lease)
        return lease

    def _next_waiter(self) -> _Lease | None:
        """The first waiting lease that still has work (one whose unit ended with all its calls
        cancelled while it waited is dropped)."""
        while self._waiters:
            lease = self._waiters.popleft()
            if not lease.ended or any(
                item[0] is None or not item[0].done() for item in lease.pending
            ):
                return lease
            lease.released = True
        return None

    def _new_worker(self) -> _Worker:
        self._numbers += 1
        worker = _Worker(self, self._numbers)
        worker.thread.start()
        self._workers.append(worker)
        return worker

    def _grant(self, lease: _Lease, worker: _Worker) -> None:
        self._leased += 1
        self._leases += 1
        self._peak = max(self._peak, self._leased)
        lease.grant(worker)

    def _forget_waiter(self, lease: _Lease) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(lease)

    def _retire(self, worker: _Worker) -> None:
        self._workers.remove(worker)
        worker.stop()

    def _release_locked(self, worker: _Worker) -> None:
        """On ``worker``, after the end housekeeping (``_lock`` held): hand it on, park it, or
        stop it."""
        self._leased -= 1
        waiter = self._next_waiter() if len(self._workers) <= self._size else None
        if waiter is not None:
            self._grant(waiter, worker)
        elif self._closing or len(self._workers) > self._size:
            self._retire(worker)
        else:
            self._idle.append(worker)
        if not self._leased:
            self._all_released.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no worker is leased and no lease waits; ``False`` if ``timeout`` ran out.

        For tests and orderly shutdowns (a released worker goes back asynchronously, after the
        end-of-work housekeeping ran on it).
        """
        with self._all_released:
            return self._all_released.wait_for(
                lambda: not self._leased and not self._waiters, timeout
            )

    # --- closing --------------------------------------------------------------------------------

    def close(self, timeout: float | None = None, _skip: threading.Thread | None = None) -> None:
        """Stop the pool: close each worker's connections on that worker, then join the threads.

        Idle workers stop at once; leased ones when their lease ends (leases already waiting
        are still served). Waits at most ``timeout`` seconds for the threads (``None``: without
        limit) and returns; a thread still busy then is left to finish (it is a daemon thread).
        Called from one of the pool's own workers, it does not wait for that one (it stops when
        its lease ends).
        """
        skip = {_skip, threading.current_thread()}
        with _lock:
            self._closing = True
            threads = [worker.thread for worker in self._workers if worker.thread not in skip]
            while self._idle:
                self._retire(self._idle.pop())
        _join(threads, timeout)


def _join(threads: list[threading.Thread], timeout: float | None) -> None:
    if timeout is None:
        for thread in threads:
            thread.join()
        return
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
