"""The management guide's example (docs/examples/management_fetch_pages.py), run for real:
pages served by uvicorn on 127.0.0.1, fetched with httpx, stored with the async ORM.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from django_async_toolkit.management import AsyncLabelCommand, acall_command
from tests.docs_examples import load_example
from tests.models import Page
from tests.servers import serve_asgi

EXAMPLE = (
    Path(__file__).resolve().parent.parent / "docs" / "examples" / "management_fetch_pages.py"
)


async def pages_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app serving ``/page/<n>`` (n bytes of text) and a 404 elsewhere."""
    assert scope["type"] == "http"
    path = scope["path"]
    status, body = (200, b"x" * int(path.rsplit("/", 1)[1])) if "/page/" in path else (404, b"")
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(autouse=True)
def close_memory_connections_off_the_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Really close in-memory SQLite connections on other threads when the command closes them.

    Django ignores ``close()`` on an in-memory SQLite database (closing would lose it); the
    command's worker thread then ends with its connection open, and Python 3.13 warns about it.
    The main thread's connection keeps the shared test database alive.
    """
    wrapper = type(connections["default"])
    if wrapper.vendor != "sqlite":
        return
    original = wrapper.close

    def close(self: Any) -> None:
        if self.is_in_memory_db() and threading.current_thread() is not threading.main_thread():
            BaseDatabaseWrapper.close(self)
        else:
            original(self)

    monkeypatch.setattr(wrapper, "close", close)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_asgi(pages_app) as url:
        yield url


@pytest.fixture
def command_class(monkeypatch: pytest.MonkeyPatch) -> type[AsyncLabelCommand]:
    """The example's Command, with ``pages.models.Page`` being the tests' Page model."""
    package = types.ModuleType("pages")
    models = types.ModuleType("pages.models")
    models.Page = Page  # type: ignore[attr-defined]
    package.models = models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pages", package)
    monkeypatch.setitem(sys.modules, "pages.models", models)
    return load_example("management_fetch_pages").Command  # type: ignore[no-any-return]


@pytest.mark.django_db(transaction=True)
def test_fetch_pages_stores_them_and_reports_in_url_order(
    server: str, command_class: type[AsyncLabelCommand]
) -> None:
    urls = [f"{server}/page/{n}" for n in (30, 10, 20)]
    Page.objects.create(url=urls[1], status=200, body="old", fetched_at="2026-01-01T00:00Z")
    out = StringIO()
    call_command(command_class(), *urls, max_concurrency=2, stdout=out)
    assert out.getvalue().splitlines() == [
        f"Stored {urls[0]} (30 bytes)",
        f"Updated {urls[1]} (10 bytes)",
        f"Stored {urls[2]} (20 bytes)",
    ]
    assert {p.url: len(p.body) for p in Page.objects.all()} == {
        urls[0]: 30,
        urls[1]: 10,
        urls[2]: 20,
    }


@pytest.mark.django_db(transaction=True)
async def test_fetch_pages_reports_failures(
    server: str, command_class: type[AsyncLabelCommand]
) -> None:
    out, err = StringIO(), StringIO()
    urls = [f"{server}/page/5", f"{server}/missing"]
    with pytest.raises(CommandError, match="1 of 2 pages failed"):
        await acall_command(command_class(), *urls, timeout=5, stdout=out, stderr=err)
    assert out.getvalue() == f"Stored {urls[0]} (5 bytes)\n"
    assert err.getvalue().startswith(f"{urls[1]}: Client error '404 Not Found'")
    assert await Page.objects.acount() == 1
    # The count ran on asgiref's process-wide thread: close the connection it opened there.
    await sync_to_async(connections.close_all)()
