"""What an async command's run leaves behind: connections its threads opened, and its tasks.

:class:`~django_async_toolkit.management.AsyncBaseCommand` closes the one and reports the other
(failed tasks nobody awaited, tasks still running when ``handle`` returned).
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from typing import Any

from django.db import connections

from django_async_toolkit import _compat


def open_aliases() -> set[str]:
    """The aliases whose connection is open on the current thread."""
    return {
        conn.alias
        for conn in connections.all(initialized_only=True)
        if conn.connection is not None
    }


def close_opened_since(before: set[str]) -> None:
    """Close this thread's connections that were not open in ``before`` (none in a transaction)."""
    for conn in connections.all(initialized_only=True):
        if conn.alias not in before and conn.connection is not None and not conn.in_atomic_block:
            conn.close()


async def cancel_and_report_stragglers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and await the tasks ``handle`` left running; report those that failed."""
    tasks = [task for task in asyncio.all_tasks(loop) if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, Exception):
            loop.call_exception_handler(
                {
                    "message": "unhandled exception in a task left running by an async command",
                    "exception": result,
                    "task": task,
                }
            )


class TaskFailures:
    """Follows the tasks created on the command's own loop, to report the failures nobody saw.

    A task that ``handle`` started and that failed before ``handle`` returned is done, so it is
    not among the stragglers cancelled at the end; if nothing retrieved its error (awaited it,
    or asked for ``exception()``), the failure would pass without a word.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._failed: list[asyncio.Task[Any]] = []
        previous = loop.get_task_factory()

        def factory(
            loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
        ) -> asyncio.Future[Any]:
            if previous is not None:
                task = previous(loop, coro, **kwargs)
            else:
                task = asyncio.Task(coro, loop=loop, **kwargs)
            if isinstance(task, asyncio.Task):
                task.add_done_callback(self._done)
            return task

        loop.set_task_factory(factory)

    def _done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and _compat.exception_unretrieved(task):
            self._failed.append(task)

    def report(self, write: Callable[[str], Any]) -> None:
        """Write each failure that is still unretrieved on stderr, with its traceback."""
        for task in self._failed:
            if not _compat.exception_unretrieved(task):
                continue  # retrieved after it failed (handle awaited it later)
            error = task.exception()  # (marks it retrieved: asyncio says nothing more at exit)
            assert error is not None
            trace = "".join(traceback.format_exception(error)).rstrip()
            write(
                f"Task {task.get_name()} ({_coroutine_name(task)}) failed and nothing "
                f"awaited it:\n{trace}"
            )
        self._failed.clear()


def _coroutine_name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or repr(coro)
