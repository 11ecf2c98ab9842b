"""Async commands in real ``manage.py`` subprocesses: signals, exit codes, cleanup, connections.

Each test starts ``tests/cmdproject/manage.py``, waits for the ``ready`` line on the child's
stdout (never a sleep), sends a signal, and reads the exit status, stderr and the markers that the
command's ``finally`` blocks wrote.
The child inherits the environment, so coverage's subprocess patch measures it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent / "cmdproject"
TIMEOUT = 60


class Child:
    """A ``manage.py`` subprocess whose stdout lines can be awaited, and which is always reaped."""

    def __init__(self, tmp_path: Path, *args: str, event_loop: str = "asyncio") -> None:
        self.marker = tmp_path / "marker.txt"
        self.close_log = tmp_path / "closed.txt"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "cmdsettings",
            "CMDPROJECT_DB": str(tmp_path / "db.sqlite3"),
            "CMDPROJECT_CLOSE_LOG": str(self.close_log),
            "CMDPROJECT_EVENT_LOOP": event_loop,
            # A child that hangs is sent SIGABRT, which makes it print every thread's stack.
            "PYTHONFAULTHANDLER": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr = ""
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def wait_for_line(self, expected: str) -> None:
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no {expected!r} line from the child within {TIMEOUT} s")
            if line is None:
                self.finish()
                pytest.fail(f"the child ended before {expected!r}: {self.stderr}")
            if line == expected:
                return

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self) -> int:
        try:
            returncode = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=TIMEOUT)
            self.kill()
            pytest.fail(
                f"the child did not exit within {TIMEOUT} s; its stderr, with each thread's "
                f"stack:\n{self.stderr}"
            )
        finally:
            self.kill()
        return returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=TIMEOUT)
        for reader in self._readers:
            reader.join(timeout=TIMEOUT)
        assert self.process.stdout is not None and self.process.stderr is not None
        self.process.stdout.close()
        self.process.stderr.close()

    def markers(self) -> list[str]:
        return self.marker.read_text().splitlines() if self.marker.exists() else []

    def closed(self) -> list[str]:
        return self.close_log.read_text().splitlines() if self.close_log.exists() else []

    def worker_thread(self) -> str:
        (line,) = [m for m in self.markers() if m.startswith("worker ")]
        return line.removeprefix("worker ")


@pytest.fixture
def manage(tmp_path: Path) -> Iterator[Callable[..., Child]]:
    """Start ``manage.py <args>`` in the test project; every child is reaped at the end."""
    children: list[Child] = []

    def start(*args: str, event_loop: str = "asyncio") -> Child:
        child = Child(tmp_path, *args, event_loop=event_loop)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()


@pytest.fixture
def waitsignal(manage: Callable[..., Child], tmp_path: Path) -> Callable[..., Child]:
    """Start the ``waitsignal`` command, which writes its markers to ``Child.marker``."""

    def start(*args: str, event_loop: str = "asyncio") -> Child:
        return manage(
            "waitsignal", "--marker", str(tmp_path / "marker.txt"), *args, event_loop=event_loop
        )

    return start


#: Lines the interpreter itself may add to a child's stderr on a loaded machine: with
#: PYTHONDEVMODE=1 asyncio reports every callback slower than 0.1 s.
INTERPRETER_NOISE = re.compile(r"^Executing <.*> took \d+(\.\d+)? seconds$")


def _stderr_lines(child: Child) -> list[str]:
    """The child's stderr lines that the command wrote (blank lines and interpreter noise out)."""
    return [
        line
        for line in child.stderr.splitlines()
        if line.strip() and not INTERPRETER_NOISE.match(line)
    ]


def _loop_marker(event_loop: str) -> str:
    return "loop uvloop" if event_loop == "uvloop" else "loop asyncio.unix_events"


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_signal_cancels_handle_runs_cleanup_and_exits_with_status(
    waitsignal: Callable[..., Child], signum: signal.Signals, status: int, event_loop: str
) -> None:
    child = waitsignal(event_loop=event_loop)
    child.wait_for_line("ready")
    child.send(signum)
    assert child.finish() == status

    markers = child.markers()
    assert markers[0] == _loop_marker(event_loop)
    # handle()'s finally block ran to its end, then its `async with` exit saw the cancellation,
    # and the task that handle() started was cancelled and awaited.
    assert markers[2:] == ["finally", "finally done", "aexit CancelledError", "child cancelled"]
    assert _stderr_lines(child) == [
        f"{signum.name}: the command was cancelled and cleaned up; exiting with status {status}."
    ]
    # The connection opened on the command's thread-sensitive worker thread was closed there.
    assert f"closed default {child.worker_thread()}" in child.closed()


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_a_signal_delivered_to_a_worker_thread_still_wakes_the_idle_loop(
    waitsignal: Callable[..., Child], signum: signal.Signals, status: int, event_loop: str
) -> None:
    # Linux may deliver a process's signal to any thread. Python runs the handler on the main
    # thread only when that thread runs Python code, and a loop idle in its selector does not:
    # without a wakeup fd the command would wait forever.
    child = waitsignal("--signal-from-thread", signum.name, event_loop=event_loop)
    assert child.finish() == status
    assert child.markers()[2:] == [
        "finally",
        "finally done",
        "aexit CancelledError",
        "child cancelled",
    ]
    assert _stderr_lines(child) == [
        f"{signum.name}: the command was cancelled and cleaned up; exiting with status {status}."
    ]


def test_error_raised_during_the_shutdown_is_shown_and_the_status_kept(
    waitsignal: Callable[..., Child],
) -> None:
    child = waitsignal("--on-cancel", "raise")
    child.wait_for_line("ready")
    child.send(signal.SIGTERM)
    assert child.finish() == 143
    assert child.markers()[2:] == ["finally", "aexit CommandError", "child cancelled"]
    assert _stderr_lines(child) == [
        "CommandError during shutdown: the cleanup failed",
        "SIGTERM: the command was cancelled and cleaned up; exiting with status 143.",
    ]


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
@pytest.mark.parametrize("on_cancel", ["hang", "block"])
def test_shutdown_timeout_exits_at_once_with_the_signal_status(
    waitsignal: Callable[..., Child], signum: signal.Signals, status: int, on_cancel: str
) -> None:
    # "hang" awaits forever in its finally block; "block" blocks the event loop itself there,
    # so only the deadline's own thread can end the process.
    child = waitsignal("--on-cancel", on_cancel, "--shutdown-timeout", "0.5")
    child.wait_for_line("ready")
    child.send(signum)
    child.wait_for_line("cleaning")
    assert child.finish() == status

    assert child.markers()[2:] == ["finally"]
    assert _stderr_lines(child) == [
        f"{signum.name}: the command did not finish its cleanup within shutdown_timeout "
        f"(0.5 s); exiting with status {status}; the remaining cleanup was skipped."
    ]


@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        (signal.SIGINT, signal.SIGINT, 130),
        (signal.SIGTERM, signal.SIGINT, 143),
        (signal.SIGINT, signal.SIGTERM, 130),
    ],
    ids=["INT-INT", "TERM-INT", "INT-TERM"],
)
@pytest.mark.parametrize("on_cancel", ["hang", "block"])
@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_second_signal_exits_at_once(
    waitsignal: Callable[..., Child],
    first: signal.Signals,
    second: signal.Signals,
    status: int,
    on_cancel: str,
    event_loop: str,
) -> None:
    # The shutdown timeout (60 s by default) is far away: the second signal is what ends it.
    child = waitsignal("--on-cancel", on_cancel, event_loop=event_loop)
    child.wait_for_line("ready")
    child.send(first)
    child.wait_for_line("cleaning")
    child.send(second)
    assert child.finish() == status

    assert child.markers()[2:] == ["finally"]
    assert _stderr_lines(child) == [
        f"{first.name}, then {second.name}: exiting at once with status {status}; "
        "the remaining cleanup was skipped."
    ]


def test_label_command_from_the_command_line(manage: Callable[..., Child]) -> None:
    child = manage("shout", "a", "b", "c", "--max-concurrency", "2")
    assert child.finish() == 0
    assert child.stdout == ["A", "B", "C"]
    assert _stderr_lines(child) == []


def test_command_error_from_the_command_line(manage: Callable[..., Child]) -> None:
    child = manage("shout", "a", "fail")
    assert child.finish() == 1
    assert child.stdout == []
    assert _stderr_lines(child) == ["CommandError: cannot shout 'fail'"]


def test_traceback_option_shows_the_traceback(manage: Callable[..., Child]) -> None:
    child = manage("shout", "fail", "--traceback")
    assert child.finish() == 1
    assert "Traceback (most recent call last):" in child.stderr
    assert child.stderr.rstrip().endswith("CommandError: cannot shout 'fail'")


def test_invalid_max_concurrency_is_a_usage_error(manage: Callable[..., Child]) -> None:
    child = manage("shout", "a", "--max-concurrency", "0")
    assert child.finish() == 2
    assert "--max-concurrency: '0' is not an integer of at least 1" in child.stderr
