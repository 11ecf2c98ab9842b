"""Find what blocks the event loop, cheaply enough to leave on in production.

* :mod:`~django_async_toolkit.blocking.detector`: :class:`BlockingDetector`, the heartbeat and its
  watchdog, which tells a blocked loop from a paused process.
* :mod:`~django_async_toolkit.blocking.events`: :class:`BlockingEvent`, one stall and the lines
  that caused it.
* Here: :func:`detect_blocking`, for a block of async code, and the process-wide detector that the
  middleware and the ASGI lifespan start (:func:`start_process_detector`).
"""

from __future__ import annotations

import threading

from django_async_toolkit.blocking._support import _closed, _running_loop, _StartStopContext
from django_async_toolkit.blocking.detector import BlockingDetector
from django_async_toolkit.blocking.events import BlockingEvent
from django_async_toolkit.conf import conf

__all__ = [
    "BlockingDetector",
    "BlockingEvent",
    "detect_blocking",
    "get_process_detector",
    "start_process_detector",
    "stop_process_detector",
]

# --- detect_blocking -------------------------------------------------------------------------


class detect_blocking(_StartStopContext[list[BlockingEvent]]):  # noqa: N801 - used like a function, as contextlib's helpers are
    """Collect the stalls of the running event loop seen inside a block.

    ::

        async with detect_blocking(threshold=0.05) as events:
            await something()
        assert not events, events[0].format()

    Also usable as ``with detect_blocking(): ...`` in code running on the loop (the stall caused
    by the block itself is closed when it exits).
    The events are collected, not logged (pass ``log=True`` to log them too).
    """

    def __init__(self, threshold: float = 0.1, *, log: bool = False) -> None:
        self.events: list[BlockingEvent] = []
        self._detector = BlockingDetector(threshold, on_block=self.events.append, log=log)

    def _enter(self) -> list[BlockingEvent]:
        if _running_loop() is None:
            raise RuntimeError(
                "detect_blocking() watches the running event loop: use it inside async code "
                "(`async with detect_blocking():` or `with detect_blocking():` in a coroutine)."
            )
        self._detector.start()
        return self.events

    def _exit(self) -> None:
        self._detector.stop()


# --- the process-wide detector ---------------------------------------------------------------

_process_lock = threading.Lock()
_process_detector: BlockingDetector | None = None


def start_process_detector() -> BlockingDetector:
    """Start the process's detector on the running loop, with ``ASYNC_TOOLKIT_BLOCKING_THRESHOLD``.

    Idempotent: while a detector runs on a loop that is still open, it is returned as it is.
    A detector left on a closed loop (a test's loop, a finished ``asyncio.run``) is replaced.
    """
    global _process_detector
    loop = _running_loop()
    if loop is None:
        raise RuntimeError(
            "start_process_detector() must be called from code running on the event loop to watch."
        )
    with _process_lock:
        current = _process_detector
        if current is not None and current.running and not _closed(current.loop):
            return current
        if current is not None:
            current.stop()
        detector = BlockingDetector(conf.BLOCKING_THRESHOLD)
        detector.start()
        _process_detector = detector
        return detector


def stop_process_detector() -> None:
    """Stop the process's detector, if one runs; idempotent."""
    global _process_detector
    with _process_lock:
        detector, _process_detector = _process_detector, None
    if detector is not None:
        detector.stop()


def get_process_detector() -> BlockingDetector | None:
    """The process's detector, or ``None`` when none was started (or it was stopped)."""
    return _process_detector
