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
   lifespan, the command's own thread in a command); then stop the worker pool
   (:mod:`~django_async_toolkit.workers`): each worker closes its connections, and the threads
   are joined (a command's own worker stops when the command's lease ends).

Every step of :func:`stop_machinery` runs even when an earlier one fails; the failures are raised
afterwards (several as an :class:`ExceptionGroup`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from django_async_toolkit import workers
from django_async_toolkit.blocking import start_process_detector, stop_process_detector
from django_async_toolkit.conf import (
    conf,
    describe_problem,
    invalid_settings,
    unknown_setting_message,
    unknown_settings,
)
from django_async_toolkit.signals import drain_background, stop_background_loop
from django_async_toolkit.sync import shutdown_blocking_pool

__all__ = ["drain_background_work", "shutdown", "startup", "stop_machinery", "validate_settings"]

logger = logging.getLogger("django_async_toolkit")


async def startup() -> None:
    """Check every toolkit setting, then start what they enable, on the running event loop.

    An invalid setting (any of them, not only those start-up uses) raises
    :class:`~django.core.exceptions.ImproperlyConfigured` naming each one, so that a server
    refuses to start rather than failing every request; an unknown ``ASYNC_TOOLKIT_*`` name (a
    typo) is logged as a warning with the closest real name.
    Then the process-wide blocking detector is started when ``ASYNC_TOOLKIT_BLOCKING_DETECTOR`` is
    true.
    """
    validate_settings()
    if conf.BLOCKING_DETECTOR:
        start_process_detector()


def validate_settings() -> None:
    """Raise ImproperlyConfigured for invalid toolkit settings; log unknown names."""
    problems = invalid_settings()
    if problems:
        raise ImproperlyConfigured(
            " ".join(describe_problem(setting, value) for setting, value in problems)
        )
    for name, close in unknown_settings():
        logger.warning(unknown_setting_message(name, close))


async def drain_background_work() -> None:
    """Wait for pending background signal dispatch, ``ASYNC_TOOLKIT_DRAIN_TIMEOUT`` at most.

    Raises :class:`TimeoutError` naming the dispatches that did not finish.
    """
    await drain_background(timeout=conf.DRAIN_TIMEOUT)


async def _close_connections() -> None:
    await sync_to_async(connections.close_all, thread_sensitive=True)()


async def _stop_detector() -> None:
    stop_process_detector()


async def _stop_workers() -> None:
    # Each worker closes its own connections, then its thread is joined.
    await workers.ashutdown_pool(timeout=conf.DRAIN_TIMEOUT)


async def stop_machinery() -> None:
    """Stop the toolkit's threads and close their database connections (see the module doc)."""
    steps: list[Callable[[], Awaitable[None]]] = [
        lambda: asyncio.to_thread(stop_background_loop),
        lambda: asyncio.to_thread(shutdown_blocking_pool),
        _stop_detector,
        _close_connections,
        _stop_workers,
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
