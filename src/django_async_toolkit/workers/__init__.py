"""A bounded pool of reused worker threads for thread-sensitive sync work.

Django's ASGI handler gives each request a ``ThreadSensitiveContext`` of its own: the first
thread-sensitive ``sync_to_async`` call of the request (the async ORM, a sync view or middleware)
starts a new thread, which opens its own database connections, and both die with the request.
So ``CONN_MAX_AGE > 0`` cannot work under ASGI, and a burst of requests or background dispatches
means as many threads and connections.

This module keeps a process-wide pool of ``ASYNC_TOOLKIT_SYNC_WORKERS`` threads instead.
A unit of work (a request, a background dispatch, an async command) runs inside a
:func:`pooled_context`; its first thread-sensitive call *leases* a worker, every later
thread-sensitive call of the same unit runs on that worker (as on the unit's own thread before),
and the worker goes back to the pool when the unit ends, after the end-of-work housekeeping ran on
it:

- when a lease starts, Django's request-start receivers that act on the thread's connections
  (``close_old_connections`` and ``reset_queries``, while they are connected to
  ``request_started``) run on the worker first: a reused worker has connections;
- when it ends, ``close_old_connections`` (while connected to ``request_finished``) runs on the
  worker, then the worker is free for the next lease.

A unit that does no sync work never leases a worker, also while every worker is leased.
When every worker is leased, a lease waits for one, first come first served; the event loop never
blocks on it (the call's future completes when a worker takes the work).
Each worker keeps its connections across leases, so a process holds at most one connection per
database alias per worker, and ``CONN_MAX_AGE``, ``CONN_HEALTH_CHECKS`` and Django's own
connection pool work as under a threaded WSGI server.

A task that outlives its unit (created inside it, still running after it ended) may still make
thread-sensitive calls: each such call leases a worker for that call only.
"""

from __future__ import annotations

from django_async_toolkit.workers.context import (
    PooledContext,
    ashutdown_pool,
    get_pool,
    pool_stats,
    pooled_context,
    release_worker,
    shutdown_pool,
)
from django_async_toolkit.workers.pool import PoolStats, WorkerPool

__all__ = [
    "PoolStats",
    "PooledContext",
    "WorkerPool",
    "ashutdown_pool",
    "get_pool",
    "pool_stats",
    "pooled_context",
    "release_worker",
    "shutdown_pool",
]
