"""The webhook: a ``background_receiver`` on Django Tasks, enqueued with the commit, never lost.

Each save enqueues one task in the database (django-tasks-db) inside the save's transaction; the
tests run the worker as a project does, ``manage.py db_worker`` (``--batch``: what is queued, then
exit), and look at what reached the upstream's ``/webhooks`` sink.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.db import transaction
from django_tasks_db.models import DBTaskResult
from e2e import ThreadedUvicorn, Upstream
from orders.models import Order

from django_async_toolkit.asgi import get_asgi_application

# serialized_rollback: the statuses that migration 0002 seeded survive each test's flush.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def make_order(external_id: str = "ord-test1", status: str = "paid") -> Order:
    return Order(
        external_id=external_id,
        customer="Ada Lovelace",
        status_id=status,
        total_cents=1200,
        lines=[],
        placed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def run_worker() -> None:
    """``manage.py db_worker --batch``: run every queued task, then return."""
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)


def test_shipping_an_order_sends_a_webhook(site: str, upstream: Upstream) -> None:
    httpx.post(site + "/orders/fetch/", timeout=30).raise_for_status()
    run_worker()  # the fetch's abulk_create sends no signal: nothing to deliver
    assert upstream.api.webhooks == []
    order = next(o for o in upstream.api.orders if o["status"] in ("new", "paid"))
    response = httpx.post(site + f"/orders/{order['id']}/ship/", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "shipped"
    run_worker()
    [delivery] = upstream.api.wait_for_webhooks(1, timeout=10)
    assert delivery["event"] == "order.updated"
    assert delivery["body"]["order"] == order["id"]
    assert delivery["body"]["status"] == "shipped"
    assert Order.objects.get(external_id=order["id"]).status_id == "shipped"


def test_ship_errors(site: str, upstream: Upstream) -> None:
    httpx.post(site + "/orders/fetch/", timeout=30).raise_for_status()
    shipped = next(o for o in upstream.api.orders if o["status"] == "shipped")
    again = httpx.post(site + f"/orders/{shipped['id']}/ship/", timeout=10)
    assert again.status_code == 409
    assert again.json() == {"error": f"order {shipped['id']} is shipped already"}
    assert httpx.post(site + "/orders/ord-99999/ship/", timeout=10).status_code == 404
    assert httpx.get(site + f"/orders/{shipped['id']}/ship/", timeout=10).status_code == 405
    run_worker()
    assert upstream.api.webhooks == []


def test_the_task_is_enqueued_with_the_commit(upstream_settings: Upstream) -> None:
    api = upstream_settings.api
    with transaction.atomic():
        make_order().save()
        # In the save's transaction: no other connection (no worker) sees it before the commit.
        assert DBTaskResult.objects.count() == 1
    assert api.webhooks == []
    run_worker()
    [delivery] = api.webhooks
    assert delivery["event"] == "order.created"
    assert delivery["body"]["order"] == "ord-test1"
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"


def test_no_webhook_for_a_rolled_back_save(upstream_settings: Upstream) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"), transaction.atomic():
        make_order().save()
        raise RuntimeError("changed my mind")
    assert not DBTaskResult.objects.exists()
    run_worker()
    assert upstream_settings.api.webhooks == []
    assert not Order.objects.exists()


def test_asave_does_not_wait_for_the_webhook(upstream_settings: Upstream) -> None:
    api = upstream_settings.api
    async_to_sync(make_order().asave)()
    assert api.webhooks == []  # the save returned with the task queued
    run_worker()
    assert [d["body"]["order"] for d in api.webhooks] == ["ord-test1"]


def test_webhooks_outlive_the_server(upstream_settings: Upstream, transactional_db: None) -> None:
    Order.objects.bulk_create([make_order("ord-a"), make_order("ord-b")])  # no signal
    with ThreadedUvicorn(get_asgi_application(), lifespan="on") as server:
        for external_id in ("ord-a", "ord-b"):
            response = httpx.post(server.url + f"/orders/{external_id}/ship/", timeout=10)
            assert response.status_code == 200
    # The server is gone; its webhooks are tasks in the database, and a worker delivers them.
    assert upstream_settings.api.webhooks == []
    run_worker()
    assert sorted(d["body"]["order"] for d in upstream_settings.api.webhooks) == ["ord-a", "ord-b"]
