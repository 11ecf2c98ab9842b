"""Waits for a signal, then cleans up as ``--on-cancel`` says, writing markers to ``--marker``."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from asgiref.sync import sync_to_async
from django.core.management.base import CommandError, CommandParser
from django.db import connection

from django_async_toolkit.management import AsyncBaseCommand


def _query() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return threading.current_thread().name


def _loop_is_idle(main: int) -> bool:
    """Whether the main thread waits in its event loop's selector (asyncio's or uvloop's)."""
    frame = sys._current_frames().get(main)
    if frame is None:
        return False
    code = frame.f_code
    # asyncio waits in selectors.py; uvloop's wait is C code called from asyncio.Runner.run().
    return (code.co_name == "select" and code.co_filename.endswith("selectors.py")) or (
        code.co_name == "run" and code.co_filename.endswith("runners.py")
    )


def _signal_from_this_thread_when_idle(signum: signal.Signals) -> None:
    """Deliver ``signum`` to this (non-main) thread once the main thread's loop is idle.

    The operating system may hand a process's signal to any thread; this makes that happen,
    at the moment when nothing else would wake the loop.
    """
    main = threading.main_thread().ident
    assert main is not None
    deadline = time.monotonic() + 30
    while not _loop_is_idle(main):
        if time.monotonic() > deadline:
            raise RuntimeError("the main thread's loop never went idle")
        time.sleep(0.001)
    signal.pthread_kill(threading.get_ident(), signum)


class _Resource:
    def __init__(self, note: Any) -> None:
        self.note = note

    async def __aenter__(self) -> _Resource:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.note(f"aexit {kind.__name__ if kind else None}")


class Command(AsyncBaseCommand):
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--marker", required=True)
        parser.add_argument(
            "--on-cancel", choices=["finish", "hang", "block", "raise"], default="finish"
        )
        # Shorter than the tests' own timeout, so that a stuck cleanup ends with the
        # deadline's message rather than being killed without one.
        parser.add_argument("--shutdown-timeout", type=float, default=30.0)
        parser.add_argument(
            "--signal-from-thread",
            choices=["SIGINT", "SIGTERM"],
            help="once ready, a worker thread receives this signal while the loop is idle",
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        self.shutdown_timeout = options["shutdown_timeout"]  # type: ignore[misc]
        return super().execute(*args, **options)

    async def handle(self, *args: Any, **options: Any) -> None:
        marker = Path(options["marker"])

        def note(text: str) -> None:
            with marker.open("a") as file:
                file.write(text + "\n")

        note(f"loop {type(asyncio.get_running_loop()).__module__}")
        note(f"worker {await sync_to_async(_query)()}")

        async def child() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                note("child cancelled")

        started = asyncio.get_running_loop().create_task(child())
        await asyncio.sleep(0)
        async with _Resource(note):
            try:
                self.stdout.write("ready")
                self.stdout.flush()
                if options["signal_from_thread"]:
                    threading.Thread(
                        target=_signal_from_this_thread_when_idle,
                        args=(signal.Signals[options["signal_from_thread"]],),
                        daemon=True,
                    ).start()
                await asyncio.Event().wait()
            finally:
                note("finally")
                if options["on_cancel"] == "hang":
                    self.stdout.write("cleaning")
                    self.stdout.flush()
                    await asyncio.Event().wait()
                elif options["on_cancel"] == "block":
                    self.stdout.write("cleaning")
                    self.stdout.flush()
                    time.sleep(3600)
                elif options["on_cancel"] == "raise":
                    raise CommandError("the cleanup failed")
                note("finally done")
        started.cancel()
