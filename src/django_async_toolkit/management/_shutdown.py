"""SIGINT/SIGTERM handling for an async command run from the command line.

The first signal cancels ``handle`` and starts a deadline of ``shutdown_timeout`` seconds; the
command then finishes its cleanup and exits with 130 (SIGINT) or 143 (SIGTERM), writing one line on
stderr.
A second signal, or the deadline, exits the process at once with the same status after flushing
output: that hard exit skips whatever cleanup has not run yet.

The handlers are installed with :func:`signal.signal`, not ``loop.add_signal_handler``: Python
runs them on the main thread between two bytecodes, so a second Ctrl-C works even while ``handle``
blocks the event loop.
The deadline is kept by a timer thread, which fires even when the loop, or
``asyncio.Runner.close()`` waiting for a stuck thread, never returns.

The operating system may deliver a process's signal to any of its threads, a worker thread
included.
Python then runs the handler on the main thread only when that thread next executes Python code,
and a loop idle in its selector does not: the handler would wait until something else woke the
loop, which for a command waiting on an event may be never.
While ``handle`` runs, the guard therefore points :func:`signal.set_wakeup_fd` at a socket the loop
watches, so that a signal wakes the loop whichever thread received it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any, NoReturn

#: The exit status after each signal: 128 + the signal number, as a shell reports it.
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _exit(status: int) -> NoReturn:
    """End the process now: no ``finally`` blocks, ``atexit`` hooks or thread joins run."""
    os._exit(status)


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        # A closed stream, or one the signal interrupted mid-write, must not stop the exit.
        with contextlib.suppress(Exception):
            stream.flush()


def _discard_pending_bytes(reader: socket.socket) -> None:
    """Empty the wakeup socket; the signal's Python handler runs as soon as the loop wakes."""
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while reader.recv(4096):
            pass


class ShutdownGuard:
    """Owns SIGINT and SIGTERM for one command run, from ``install()`` to ``uninstall()``."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.signum: signal.Signals | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Future[Any] | None = None
        self._previous: dict[signal.Signals, Any] = {}
        self._exit_lock = threading.Lock()
        self._line_written = False
        self._deadline: threading.Timer | None = None
        self._wakeup: tuple[asyncio.AbstractEventLoop, socket.socket, socket.socket] | None = None
        self._previous_wakeup_fd = -1

    @property
    def status(self) -> int:
        assert self.signum is not None
        return EXIT_STATUS[self.signum]

    def install(self) -> None:
        for signum in EXIT_STATUS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def attach(self, loop: asyncio.AbstractEventLoop, task: asyncio.Future[Any]) -> None:
        """Cancel ``task`` on the first signal (at once if one came already).

        Call it on ``loop``, which must be running on the main thread; until :meth:`detach`, a
        signal wakes ``loop`` whichever thread the operating system delivered it to.
        """
        self._loop = loop
        self._task = task
        self._wake_loop_on_signals(loop)
        if self.signum is not None:
            task.cancel()

    def detach(self) -> None:
        """Stop cancelling the task and waking the loop (call it on the loop, before it ends)."""
        self._task = None
        self._stop_waking_loop()

    def _wake_loop_on_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        try:
            loop.add_reader(reader.fileno(), _discard_pending_bytes, reader)
        except NotImplementedError:  # a loop without add_reader (Windows' proactor)
            reader.close()
            writer.close()
            return
        self._previous_wakeup_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._wakeup = (loop, reader, writer)

    def _stop_waking_loop(self) -> None:
        if self._wakeup is None:
            return
        loop, reader, writer = self._wakeup
        self._wakeup = None
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        self._previous_wakeup_fd = -1
        loop.remove_reader(reader.fileno())
        reader.close()
        writer.close()

    def _cancel_task(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            received = signal.Signals(signum).name
            self._hard_exit(
                f"{self.signum.name}, then {received}: exiting at once with status "
                f"{self.status}; the remaining cleanup was skipped.",
                wait=False,
            )
            return
        self.signum = signal.Signals(signum)
        self._deadline = threading.Timer(self.timeout, self._on_deadline)
        self._deadline.name = "async-command-shutdown-deadline"
        self._deadline.daemon = True
        self._deadline.start()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._cancel_task)

    def _on_deadline(self) -> None:
        self._hard_exit(
            f"{self.signum.name if self.signum else 'Signal'}: the command did not finish its "
            f"cleanup within shutdown_timeout ({self.timeout:g} s); exiting with status "
            f"{self.status}; the remaining cleanup was skipped.",
            wait=True,
        )

    def _hard_exit(self, line: str, *, wait: bool) -> None:
        # The signal handler runs on the main thread, which may hold the lock in finish():
        # it must not wait for it (the normal exit is then already printing its line).
        if not self._exit_lock.acquire(blocking=wait):
            return
        _flush_standard_streams()
        if not self._line_written:
            os.write(2, (line + "\n").encode(errors="replace"))
        _exit(self.status)

    def finish(self, write_line: Any) -> NoReturn:
        """The orderly exit after the cleanup has run: one line on stderr, then the status.

        The deadline timer keeps running until the interpreter is gone, so a hang in its own
        shutdown (a non-daemon thread, an ``atexit`` hook) still ends at the deadline.
        """
        with self._exit_lock:
            assert self.signum is not None
            write_line(
                f"{self.signum.name}: the command was cancelled and cleaned up; exiting with "
                f"status {self.status}."
            )
            _flush_standard_streams()
            self._line_written = True
        raise SystemExit(self.status)
