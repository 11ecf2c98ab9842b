"""The webhook: a ``background_receiver`` on ``post_save``, sent after commit, never lost."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from django.db import transaction
from e2e import ThreadedUvicorn, Upstream
from orders.models import Order

from django_async_toolkit.asgi import get_asgi_application
from django_async_toolkit.signals import drain_background_sync

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


def test_shipping_an_order_sends_a_webhook(site: str, upstream: Upstream) -> None:
    httpx.post(site + "/orders/fetch/", timeout=30).raise_for_status()
    order = next(o for o in upstream.api.orders if o["status"] in ("new", "paid"))
    response = httpx.post(site + f"/orders/{order['id']}/ship/", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "shipped"
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
    drain_background_sync(timeout=10)
    assert upstream.api.webhooks == []


def test_the_webhook_waits_for_the_commit(upstream_settings: Upstream) -> None:
    api = upstream_settings.api
    with transaction.atomic():
        make_order().save()
        drain_background_sync(timeout=10)  # nothing is scheduled before the commit
        assert api.webhooks == []
    drain_background_sync(timeout=10)
    [delivery] = api.webhooks
    assert delivery["event"] == "order.created"
    assert delivery["body"]["order"] == "ord-test1"


def test_no_webhook_for_a_rolled_back_save(upstream_settings: Upstream) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"), transaction.atomic():
        make_order().save()
        raise RuntimeError("changed my mind")
    drain_background_sync(timeout=10)
    assert upstream_settings.api.webhooks == []
    assert not Order.objects.exists()


async def test_asave_does_not_wait_for_the_webhook(upstream_settings: Upstream) -> None:
    api = upstream_settings.api
    api.latency = 0  # /webhooks has none; the point is the save returns before delivery
    order = make_order()
    await order.asave()
    # The receiver runs on this loop once the save has returned; drain to see it finish.
    from django_async_toolkit.signals import drain_background

    await drain_background(timeout=10)
    assert [d["body"]["order"] for d in api.webhooks] == ["ord-test1"]


def test_server_shutdown_delivers_pending_webhooks(
    upstream_settings: Upstream, transactional_db: None
) -> None:
    Order.objects.bulk_create([make_order("ord-a"), make_order("ord-b")])  # no signal
    with ThreadedUvicorn(get_asgi_application(), lifespan="on") as server:
        for external_id in ("ord-a", "ord-b"):
            response = httpx.post(server.url + f"/orders/{external_id}/ship/", timeout=10)
            assert response.status_code == 200
    # The lifespan shutdown drained background dispatch before the server stopped.
    assert sorted(d["body"]["order"] for d in upstream_settings.api.webhooks) == ["ord-a", "ord-b"]
