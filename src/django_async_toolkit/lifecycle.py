"""Start-up and shutdown of the toolkit's process-wide machinery, once for every entry point.

Two entry points own a process's lifetime: the ASGI lifespan of
:class:`~django_async_toolkit.asgi.ASGIHandler` and the command line run of an
:class:`~django_async_toolkit.management.AsyncBaseCommand`.
Both call the functions here, so the order of the steps, and what each one stops, is the same:

1. :func:`drain_background_work`: let background signal dispatch finish, for at most
   ``ASYNC_TOOLKIT_DRAIN_TIMEOUT`` seconds;
2. :func:`stop_machinery`: stop the toolkit's own threads (the private signal loop, the
   ``run_blocking`` pool, the blocking detector) and close the database connections of the
   thread-sensitive thread of the current context (asgiref's process-wide thread under the ASGI
   lifespan, the command's own thread in a command).

Every step of :func:`stop_machinery` runs even when an earlier one fails; the failures are raised
afterwards (several as an :class:`ExceptionGroup`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import connections

from django_async_toolkit.blocking import start_process_detector, stop_process_detector
from django_async_toolkit.conf import conf
from django_async_toolkit.signals import drain_background, stop_background_loop
from django_async_toolkit.sync import shutdown_blocking_pool

__all__ = ["drain_background_work", "shutdown", "startup", "stop_machinery"]


async def startup() -> None:
    """Start what the toolkit's settings enable, on the running event loop.

    That is the process-wide blocking detector, when ``ASYNC_TOOLKIT_BLOCKING_DETECTOR`` is true.
    """
    if conf.BLOCKING_DETECTOR:
        start_process_detector()


async def drain_background_work() -> None:
    """Wait for pending background signal dispatch, ``ASYNC_TOOLKIT_DRAIN_TIMEOUT`` at most.

    Raises :class:`TimeoutError` naming the dispatches that did not finish.
    """
    await drain_background(timeout=conf.DRAIN_TIMEOUT)


async def _close_connections() -> None:
    await sync_to_async(connections.close_all, thread_sensitive=True)()


async def _stop_detector() -> None:
    stop_process_detector()


async def stop_machinery() -> None:
    """Stop the toolkit's threads and close their database connections (see the module doc)."""
    steps: list[Callable[[], Awaitable[None]]] = [
        lambda: asyncio.to_thread(stop_background_loop),
        lambda: asyncio.to_thread(shutdown_blocking_pool),
        _stop_detector,
        _close_connections,
    ]
    await _run_all(steps, "stopping the toolkit's threads failed")


async def shutdown() -> None:
    """The whole shutdown: :func:`drain_background_work`, then :func:`stop_machinery`.

    The machinery is stopped even when draining failed; every failure is raised afterwards.
    """
    await _run_all([drain_background_work, stop_machinery], "the toolkit's shutdown failed")


async def _run_all(steps: list[Callable[[], Awaitable[None]]], what: str) -> None:
    errors: list[Exception] = []
    for step in steps:
        try:
            await step()
        except ExceptionGroup as group:
            errors.extend(group.exceptions)
        except Exception as error:
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ExceptionGroup(what, errors)
