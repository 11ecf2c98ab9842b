"""The sync/async wrappers in a small export job (run by tests/test_sync_examples.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User

from django_async_toolkit.sync import db_sync_to_async, ensure_async, run_blocking


@db_sync_to_async
def usernames(prefix: str) -> list[str]:
    """Sync ORM code: it runs on the thread-sensitive thread and leaves no stale connection."""
    users = User.objects.filter(username__startswith=prefix).order_by("username")
    return list(users.values_list("username", flat=True))


async def export_usernames(prefix: str, path: Path) -> int:
    names = await usernames(prefix)
    # Writing a file blocks: run it in the blocking pool, with a deadline.
    await run_blocking(path.write_text, "\n".join(names) + "\n", encoding="utf-8", timeout=5)
    return len(names)


async def notify(hooks: Iterable[Callable[[str], Any]], event: str) -> None:
    """Call hooks that other code registered, whether they are sync or async."""
    for hook in hooks:
        await ensure_async(hook)(event)
