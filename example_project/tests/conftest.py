"""Fixtures of the example's end-to-end tests: real servers on 127.0.0.1, real HTTP.

``upstream`` serves the upstream order API and ``site`` the Django project (the toolkit's ASGI
handler, lifespan on), each with uvicorn in a thread of the test process, on an ephemeral port.
The project's database is pytest-django's test database (a file for SQLite, so the server's
threads share it; committed data, hence ``transactional_db``, with ``serialized_rollback`` so
that the statuses seeded by migration 0002 are there in every test).
Tests that need another process (``manage.py`` commands, the stock stack, the demo) get
``subprocess_env``: the environment that points a child process at the same database and upstream.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from e2e import UPSTREAM_ORDERS, ThreadedUvicorn, Upstream, database_url
from upstream.app import OrderAPI

from django_async_toolkit.signals import drain_background_sync, stop_background_loop


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """The upstream order API, without artificial latency."""
    api = OrderAPI(orders=UPSTREAM_ORDERS, latency=0)
    with ThreadedUvicorn(api, lifespan="on") as server:
        yield Upstream(server.url, api)


@pytest.fixture
def upstream_settings(upstream: Upstream, settings: Any) -> Upstream:
    """The project talks to ``upstream``."""
    settings.ORDERS_UPSTREAM_URL = upstream.url
    return upstream


@pytest.fixture
def site(
    upstream_settings: Upstream, django_db_serialized_rollback: None, transactional_db: None
) -> Iterator[str]:
    """The project, served through ``django_async_toolkit.asgi`` with the lifespan protocol.

    Leaving the fixture shuts the server down: the lifespan shutdown drains the webhooks still
    in flight, before the upstream stops.
    """
    from django_async_toolkit.asgi import get_asgi_application

    with ThreadedUvicorn(get_asgi_application(), lifespan="on") as server:
        yield server.url


OWN_THREADS = ("django-async-toolkit", "async-toolkit-blocking", "uvicorn ")


@pytest.fixture(autouse=True)
def _no_background_leftovers() -> Iterator[None]:
    """Each test ends with its webhooks sent and no thread of the toolkit or of a server left.

    (asgiref's process-wide executor thread is not a leak: it lives as long as the process.)
    """
    yield
    drain_background_sync(timeout=10)
    stop_background_loop()
    leaked = [
        thread.name for thread in threading.enumerate() if thread.name.startswith(OWN_THREADS)
    ]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def subprocess_env(
    upstream_settings: Upstream, django_db_serialized_rollback: None, transactional_db: None
) -> dict[str, str]:
    """The environment for a child process that uses this test's database and upstream."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "ORDERS_STACK", "PYTHONPATH"}
    }
    env.update(
        DATABASE_URL=database_url(),
        ORDERS_UPSTREAM_URL=upstream_settings.url,
        PYTHONUNBUFFERED="1",
    )
    return env
