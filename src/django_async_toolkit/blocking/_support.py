"""Small pieces that the detector and ``detect_blocking`` share: the ``with``/``async with``
pair written once, the loop lookups, and the run-queue clock (Linux's schedstat).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Generic, TypeVar

_EnteredT = TypeVar("_EnteredT")


class _StartStopContext(Generic[_EnteredT]):
    """``with`` and ``async with`` around a start and a stop, written once for both."""

    def _enter(self) -> _EnteredT:
        raise NotImplementedError

    def _exit(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _EnteredT:
        return self._enter()

    def __exit__(self, *exc_info: object) -> None:
        self._exit()

    async def __aenter__(self) -> _EnteredT:
        return self._enter()

    async def __aexit__(self, *exc_info: object) -> None:
        self._exit()


class _RunQueueClock:
    """Seconds a thread spent runnable but waiting for a CPU, from Linux's schedstat."""

    def __init__(self, native_id: int) -> None:
        self._fd: int | None = None
        with contextlib.suppress(OSError):
            self._fd = os.open(f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY)

    def read(self) -> float | None:
        if self._fd is None:
            return None
        try:
            return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _closed(loop: asyncio.AbstractEventLoop | None) -> bool:
    return loop is None or loop.is_closed()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
