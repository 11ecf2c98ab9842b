"""The drain at interpreter exit: the thread that drains runs the pending dispatches' sync work.

Python 3.12 refuses to start a thread once the interpreter is finalizing, which it is before any
exit hook runs (``threading._register_atexit`` ones included): a background dispatch whose sync
receivers (or ORM calls) need a new thread would fail there with "can't create new thread at
interpreter shutdown". So, while the exit drain lasts, dispatches get a thread-sensitive context
whose executor is the draining thread itself, which runs their sync calls one at a time.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

__all__ = ["DrainingThreadExecutor", "register"]

_Item = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]

#: How often the draining thread looks whether everything has finished, when it has nothing to run.
_POLL = 0.05


class DrainingThreadExecutor(Executor):
    """An executor whose calls run on the thread that calls :meth:`run_until`, in order."""

    def __init__(self) -> None:
        self._items: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if self._closed:
            future.cancel()  # the drain is over: nothing would ever run it
            return future
        self._items.put((future, fn, args, kwargs))
        return future

    def close(self) -> None:
        """Cancel what is still queued, and every later call, once nothing runs them."""
        self._closed = True
        while True:
            try:
                future, *_ = self._items.get_nowait()
            except queue.Empty:
                return
            future.cancel()

    def run_until(self, finished: Callable[[], bool], timeout: float | None) -> bool:
        """Run submitted calls until ``finished()`` or ``timeout`` seconds; whether it finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not finished():
            remaining = _POLL if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                future, fn, args, kwargs = self._items.get(timeout=min(_POLL, remaining))
            except queue.Empty:
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:  # the dispatch that made the call gets it
                future.set_exception(error)
        return True


def register(hook: Callable[[], None], *, fallback: Callable[[], None]) -> None:
    """Run ``hook`` at interpreter exit, before ``concurrent.futures`` refuses new work.

    Plain ``atexit`` hooks run after ``threading._shutdown`` (Python 3.12), when the executors
    have shut down; threading's own exit hooks run before it, the latest registered first.
    Without that hook (or once the interpreter is exiting), ``fallback`` goes to ``atexit``.
    """
    try:
        threading._register_atexit(hook)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        atexit.register(fallback)
