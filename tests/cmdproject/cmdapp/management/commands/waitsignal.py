"""Waits for a signal, then cleans up as ``--on-cancel`` says, writing markers to ``--marker``."""

from __future__ import annotations

import asyncio
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
        parser.add_argument("--shutdown-timeout", type=float, default=60.0)

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
