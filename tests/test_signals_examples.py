"""The signals guide's examples (``docs/examples/signals_*.py``) run and do what the guide says."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connection
from django.db.models.signals import post_save
from django.test import override_settings

from django_async_toolkit.signals import drain_background
from tests.docs_examples import load_example
from tests.servers import serve_asgi
from tests.signals_fixtures import worker_closes_fixture  # noqa: F401 - a fixture


class Upstream:
    """A webhook endpoint that records each JSON body and answers only once released."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.got_request = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(json.loads(body))
        self.got_request.set()
        await asyncio.to_thread(self.release.wait, 30)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.mark.django_db(transaction=True)
async def test_webhook_example_save_returns_before_the_http_call_ends(
    worker_closes: list[str],
) -> None:
    upstream = Upstream()
    with serve_asgi(upstream) as url, override_settings(CRM_WEBHOOK_URL=f"{url}/hooks/user"):
        example = load_example("signals_webhook")  # the receiver lives as long as its module
        try:
            user = User(username="ada")
            await user.asave()  # returns at once: the webhook is called in the background
            await asyncio.to_thread(upstream.got_request.wait, 30)
            assert upstream.bodies == [{"id": user.pk, "username": "ada", "created": True}]
            upstream.release.set()  # only now does the HTTP call end
            await drain_background(timeout=30)
            # One client for every call, closed by the lifespan shutdown of the example's handler.
            assert not example.crm.is_closed
            assert await run_lifespan(example.Handler()) == [
                {"type": "lifespan.startup.complete"},
                {"type": "lifespan.shutdown.complete"},
            ]
            assert example.crm.is_closed
        finally:
            upstream.release.set()
            assert post_save.disconnect(sender=User, dispatch_uid="crm_user_saved")
            await example.crm.aclose()
            del example
            await sync_to_async(lambda: connection.close())()


async def run_lifespan(app: Any) -> list[dict[str, Any]]:
    """Start and shut down ``app`` through the ASGI lifespan protocol; what it sent back."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "lifespan.startup"})
    inbox.put_nowait({"type": "lifespan.shutdown"})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app({"type": "lifespan"}, inbox.get, send), 60)
    return sent


async def test_asend_example_reports_the_receivers_that_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    example = load_example("signals_asend")
    example.RECEIVER_TIMEOUT = 0.05
    seen: list[int] = []

    async def books_the_courier(order_id: int, **kwargs: Any) -> None:
        seen.append(order_id)

    async def never_answers(**kwargs: Any) -> None:
        await asyncio.Event().wait()

    def emails_the_customer(order_id: int, **kwargs: Any) -> None:
        raise ConnectionError("mail server down")

    for receiver in (books_the_courier, never_answers, emails_the_customer):
        example.order_paid.connect(receiver)

    failed = await example.announce_order_paid(7)

    assert seen == [7]
    assert sorted(name.rsplit(".", 1)[-1] for name in failed) == [
        "emails_the_customer",
        "never_answers",
    ]
    assert len(caplog.records) == 2
