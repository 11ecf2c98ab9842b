"""The examples of docs/guide/sync.rst run as written."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from django_async_toolkit.sync import shutdown_blocking_pool
from tests.test_sync import close_thread_sensitive_connection

pytestmark = pytest.mark.usefixtures(close_thread_sensitive_connection.__name__)

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def load_example(name: str) -> dict[str, Any]:
    """The example's globals, after running it as a script would be run."""
    return runpy.run_path(str(EXAMPLES / f"{name}.py"))


@pytest.mark.django_db(transaction=True)
async def test_export_usernames(tmp_path: Path) -> None:
    example = load_example("sync_wrappers")
    for name in ["ann", "bob", "anton"]:
        await User.objects.acreate(username=name)
    target = tmp_path / "names.txt"
    try:
        assert await example["export_usernames"]("an", target) == 2
    finally:
        shutdown_blocking_pool()
    assert target.read_text(encoding="utf-8") == "ann\nanton\n"


async def test_notify_sync_and_async_hooks() -> None:
    example = load_example("sync_wrappers")
    seen: list[str] = []

    def sync_hook(event: str) -> None:
        seen.append(f"sync {event}")

    async def async_hook(event: str) -> None:
        seen.append(f"async {event}")

    await example["notify"]([sync_hook, async_hook], "exported")
    assert seen == ["sync exported", "async exported"]
