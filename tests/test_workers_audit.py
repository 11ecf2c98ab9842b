"""``manage.py async_audit`` shows the worker pool: its size, and this process's figures."""

from __future__ import annotations

import asyncio
import json
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import override_settings

from django_async_toolkit import workers

pytestmark = pytest.mark.urls("tests.audit_empty_urls")


def audit(*args: str) -> str:
    out = StringIO()
    call_command("async_audit", *args, stdout=out)
    return out.getvalue()


def test_the_pool_before_it_started() -> None:
    assert "Sync work: a pool of 8 reused worker threads (not started in this process)." in (
        audit()
    )
    assert json.loads(audit("--json"))["sync_workers"] == {"size": 8, "stats": None}


def test_the_pool_switched_off() -> None:
    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=None):
        assert "Sync work: a thread per request (ASYNC_TOOLKIT_SYNC_WORKERS = None)." in audit()
        assert json.loads(audit("--json"))["sync_workers"] == {"size": None, "stats": None}


def test_the_figures_of_a_running_pool() -> None:
    async def one_unit() -> None:
        async with workers.pooled_context():
            await sync_to_async(lambda: None)()

    with override_settings(ASYNC_TOOLKIT_SYNC_WORKERS=3):
        asyncio.run(one_unit())
        pool = workers.get_pool()
        assert pool is not None and pool.wait_idle(30)
        text = audit()
        document = json.loads(audit("--json"))["sync_workers"]
    assert (
        "Sync work: a pool of 3 reused worker threads, now size 3, threads 1, leased 0, "
        "waiting 0, peak 1, leases 1." in text
    )
    assert document == {
        "size": 3,
        "stats": {"size": 3, "threads": 1, "leased": 0, "waiting": 0, "peak": 1, "leases": 1},
    }
