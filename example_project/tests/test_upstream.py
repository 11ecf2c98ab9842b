"""The upstream order API: deterministic pages and a webhook sink, over real HTTP."""

from __future__ import annotations

import httpx
import pytest
from e2e import UPSTREAM_ORDERS, Upstream
from upstream.app import OrderAPI, make_orders


def test_orders_are_the_same_for_the_same_seed() -> None:
    assert make_orders(30, seed=3) == make_orders(30, seed=3)
    assert make_orders(30, seed=3) != make_orders(30, seed=4)
    orders = make_orders(30, seed=3)
    assert [order["id"] for order in orders[:2]] == ["ord-00030", "ord-00029"]
    assert orders[0]["placed_at"] > orders[1]["placed_at"]  # newest first
    for order in orders:
        assert order["total_cents"] == sum(
            line["quantity"] * line["price_cents"] for line in order["lines"]
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"orders": -1}, "orders must be 0 or more"),
        ({"latency": -0.5}, "latency must be 0 or more"),
        ({"page_size": 0}, "page_size must be between 1 and 100"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OrderAPI(**kwargs)  # type: ignore[arg-type]


def test_from_env_names_the_variables() -> None:
    api = OrderAPI.from_env({"UPSTREAM_ORDERS": "5", "UPSTREAM_LATENCY": "0"})
    assert len(api.orders) == 5
    with pytest.raises(ValueError, match="UPSTREAM_ORDERS"):
        OrderAPI.from_env({"UPSTREAM_ORDERS": "many"})


def test_pages(upstream: Upstream) -> None:
    with httpx.Client(base_url=upstream.url, timeout=10) as client:
        first = client.get("/orders", params={"page": 1}).json()
        last = client.get("/orders", params={"page": 6}).json()
        past = client.get("/orders", params={"page": 7})
        small = client.get("/orders", params={"page": 2, "page_size": 50}).json()
        bad = client.get("/orders", params={"page": "two"})
        one = client.get("/orders/ord-00001")
        missing = client.get("/orders/ord-99999")
    assert (first["page"], first["pages"], first["count"]) == (1, 6, UPSTREAM_ORDERS)
    assert first["results"] == upstream.api.orders[:20]
    assert last["results"] == upstream.api.orders[100:]
    assert past.status_code == 404
    assert past.json() == {"detail": "page 7 does not exist; there are 6 pages"}
    assert small["results"] == upstream.api.orders[50:100]
    assert bad.status_code == 400
    assert "page must be an integer" in bad.json()["detail"]
    assert one.json()["id"] == "ord-00001"
    assert missing.status_code == 404


def test_webhook_sink(upstream: Upstream) -> None:
    with httpx.Client(base_url=upstream.url, timeout=10) as client:
        assert client.post("/webhooks", json={"event": "ping", "n": 1}).json() == {"id": 1}
        assert client.post("/webhooks", content=b"[1]").status_code == 400
        assert client.post("/webhooks", content=b"{nope").status_code == 400
        assert client.put("/webhooks", json={}).status_code == 405
        listed = client.get("/webhooks").json()
        assert listed["count"] == 1
        assert listed["results"][0]["event"] == "ping"
        assert listed["results"][0]["body"] == {"event": "ping", "n": 1}
        assert client.delete("/webhooks").json() == {"count": 0}
        assert client.get("/webhooks").json() == {"count": 0, "results": []}
        assert client.get("/nowhere").status_code == 404
        assert client.post("/webhooks", content=b"x" * (1024 * 1024 + 1)).status_code == 413
    with pytest.raises(TimeoutError, match="0 webhooks arrived"):
        upstream.api.wait_for_webhooks(1, timeout=0.01)
