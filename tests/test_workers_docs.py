"""The example of docs/guide/workers.rst runs as written, through the toolkit's handler."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.urls import path

from django_async_toolkit.asgi import ASGIHandler
from django_async_toolkit.workers import get_pool
from tests.asgi_helpers import call
from tests.docs_examples import load_example
from tests.test_sync import close_thread_sensitive_connection

# The test creates its user on asgiref's process-wide thread: close what it leaves there.
pytestmark = pytest.mark.usefixtures(close_thread_sensitive_connection.__name__)


@pytest.mark.django_db(transaction=True)
async def test_health_endpoint_reports_the_pool() -> None:
    example = load_example("workers_health")

    class urls:  # a URLconf (hashable, as Django's resolver cache needs)
        urlpatterns = [path("health/", example.health), path("ping/", example.ping)]

    await User.objects.acreate(username="ann")
    with override_settings(ROOT_URLCONF=urls, ASYNC_TOOLKIT_SYNC_WORKERS=2):
        handler = ASGIHandler()
        ping = await call(handler, "/ping/")
        # The ping's worker goes back after its end-of-request housekeeping, which runs on the
        # worker and may still be queued there when the response is in: wait for it.
        pool = get_pool()
        assert pool is not None
        assert await asyncio.to_thread(pool.wait_idle, 30)
        health = await call(handler, "/health/")
    assert json.loads(ping.body) == {"pong": True}
    body = json.loads(health.body)
    assert body["users"] == 1
    assert body["workers"] == 2
    assert body["leased"] == 1  # the health request itself holds a worker
    assert body["waiting"] == 0
    assert body["peak"] in (1, 2)
