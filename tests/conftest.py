from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.http.response import HttpResponseBase
from django.test import AsyncClient, Client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``postgres_only`` unless the default database is PostgreSQL."""
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    skip = pytest.mark.skip(
        reason="PostgreSQL is not configured: set DATABASE_URL=postgres://... "
        "(e.g. postgres://postgres@127.0.0.1:5432/test) to run this test"
    )
    for item in items:
        if item.get_closest_marker("postgres_only"):
            item.add_marker(skip)


@pytest.fixture(params=["wsgi", "asgi"])
def get(request: pytest.FixtureRequest) -> Callable[..., HttpResponseBase]:
    """``client.get`` of Django's test client on the sync (WSGI) or the async (ASGI) path.

    For a test whose two paths differ only in the client: on the async path the request goes
    through Django's ASGI handler (``AsyncClient``) on an event loop of its own.
    """
    if request.param == "wsgi":
        return Client().get
    client = AsyncClient()

    async def get(*args: Any, **kwargs: Any) -> HttpResponseBase:
        # (On Django 4.2 AsyncClient.get is a plain def that returns a coroutine.)
        return await client.get(*args, **kwargs)  # type: ignore[no-any-return]

    return async_to_sync(get)


@pytest.fixture(autouse=True)
def _stop_the_worker_pool() -> Iterator[None]:
    """Stop the toolkit's worker pool after each test that started it.

    A pool worker keeps its database connection from one request to the next; kept into the next
    test, pytest-django's database guard would refuse the worker's housekeeping on it.
    """
    yield
    from django_async_toolkit import workers

    if workers.pool_stats() is not None:
        workers.shutdown_pool(timeout=30)
