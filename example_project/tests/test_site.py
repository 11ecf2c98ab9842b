"""The orders service end to end: uvicorn, the toolkit's handler and middleware, real HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import hold_urls
import httpx
import pytest
from django.conf import settings as django_settings
from e2e import UPSTREAM_ORDERS, Upstream
from orders.models import Order

# serialized_rollback: the statuses that migration 0002 seeded survive each test's flush.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


async def acquire(semaphore: threading.Semaphore, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not semaphore.acquire(blocking=False):
        assert time.monotonic() < deadline, "the held requests did not reach their view"
        await asyncio.sleep(0.005)


def fetch(site: str, **params: Any) -> httpx.Response:
    return httpx.post(site + "/orders/fetch/", params=params, timeout=30)


def test_the_project_ships_the_toolkit_stack() -> None:
    assert django_settings.ORDERS_STACK == "toolkit"
    assert django_settings.MIDDLEWARE[:3] == [
        "django_async_toolkit.middleware.BlockingDetectorMiddleware",
        "django_async_toolkit.middleware.ConcurrencyLimitMiddleware",
        "django_async_toolkit.middleware.TimeoutMiddleware",
    ]


def test_index_lists_endpoints_and_the_seeded_statuses(site: str) -> None:
    data = httpx.get(site + "/", timeout=10).json()
    assert data["stack"] == "toolkit"
    assert [status["code"] for status in data["statuses"]] == [
        "new",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
    ]
    assert "/orders/fetch/" in data["endpoints"].values()


def test_fetch_stores_the_latest_orders_once(site: str, upstream: Upstream) -> None:
    response = fetch(site, pages=3)
    assert response.status_code == 200
    data = response.json()
    assert {key: data[key] for key in ("pages", "fetched", "created", "total")} == {
        "pages": 3,
        "fetched": 60,
        "created": 60,
        "total": 60,
    }
    stored = list(Order.objects.order_by("-placed_at").values_list("external_id", flat=True))
    assert stored == [order["id"] for order in upstream.api.orders[:60]]

    again = fetch(site, pages=4).json()
    assert (again["fetched"], again["created"], again["total"]) == (80, 20, 80)


def test_fetch_asks_for_no_more_pages_than_there_are(site: str) -> None:
    data = fetch(site, pages=50).json()
    assert (data["pages"], data["fetched"], data["created"]) == (6, UPSTREAM_ORDERS, 120)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pages": 0}, "pages must be between 1 and 50, not 0"),
        ({"pages": "all"}, "pages must be an integer, not 'all'"),
    ],
)
def test_fetch_rejects_bad_pages(site: str, params: dict[str, Any], message: str) -> None:
    response = fetch(site, **params)
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_fetch_has_its_own_longer_timeout(site: str, upstream: Upstream, settings: Any) -> None:
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 0.1
    upstream.api.latency = 0.3  # each page takes longer than the site-wide timeout
    assert fetch(site, pages=2).status_code == 200  # @request_timeout(20) on the view
    assert httpx.get(site + "/demo/slow/", params={"seconds": 0.3}, timeout=10).status_code == 504


def test_fetch_is_post_only(site: str) -> None:
    response = httpx.get(site + "/orders/fetch/", timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_fetch_reports_an_unreachable_upstream(site: str, settings: Any) -> None:
    settings.ORDERS_UPSTREAM_URL = "http://127.0.0.1:9"  # discard: nothing listens
    response = fetch(site)
    assert response.status_code == 502
    assert "orders?page=1 failed" in response.json()["error"]
    assert Order.objects.count() == 0


def test_list_filters_and_bounds(site: str, upstream: Upstream) -> None:
    fetch(site, pages=6)
    paid = [order["id"] for order in upstream.api.orders if order["status"] == "paid"]
    response = httpx.get(site + "/orders/", params={"status": "paid", "limit": 5}, timeout=10)
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == len(paid)
    assert [order["id"] for order in data["results"]] == paid[:5]
    assert {order["status_label"] for order in data["results"]} == {"Paid"}
    assert httpx.get(site + "/orders/", params={"limit": 101}, timeout=10).status_code == 400


def test_detail(site: str, upstream: Upstream) -> None:
    fetch(site)
    expected = upstream.api.orders[0]
    data = httpx.get(site + f"/orders/{expected['id']}/", timeout=10).json()
    assert data["customer"] == expected["customer"]
    assert data["total"] == f"{expected['total_cents'] / 100:.2f}"
    assert httpx.get(site + "/orders/ord-99999/", timeout=10).status_code == 404


def test_request_id_middleware_echoes_or_makes_one(site: str) -> None:
    given = httpx.get(site + "/health/", headers={"X-Request-ID": "abc-123"}, timeout=10)
    made = httpx.get(site + "/health/", timeout=10)
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32


def test_server_timing_reports_the_loop_lag(site: str) -> None:
    response = httpx.get(site + "/health/", timeout=10)
    assert "server-timing" in response.headers


def test_timeout_middleware_answers_504(site: str, settings: Any) -> None:
    settings.ASYNC_TOOLKIT_REQUEST_TIMEOUT = 0.2
    response = httpx.get(site + "/demo/slow/", params={"seconds": 20}, timeout=10)
    assert response.status_code == 504
    assert httpx.get(site + "/demo/slow/", params={"seconds": 0}, timeout=10).status_code == 200


async def test_concurrency_limit_sheds_load(site: str, settings: Any) -> None:
    settings.ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = 2
    settings.ASYNC_TOOLKIT_CONCURRENCY_WAIT = 0
    settings.ROOT_URLCONF = "hold_urls"
    hold_urls.release.clear()
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=6)) as client:
        held = [asyncio.create_task(client.get(site + "/hold/")) for _ in range(2)]
        for _ in held:  # both are in their view, holding the two slots
            await acquire(hold_urls.entered)
        shed = await asyncio.gather(*(client.get(site + "/health/") for _ in range(4)))
        hold_urls.release.set()
        served = await asyncio.gather(*held)
    assert [response.status_code for response in shed] == [503] * 4
    assert {response.headers["retry-after"] for response in shed} == {"1"}
    assert [response.status_code for response in served] == [200, 200]
    after = httpx.get(site + "/health/", timeout=10)
    assert after.status_code == 200


def test_blocking_detector_points_at_the_blocking_line(site: str) -> None:
    assert httpx.get(site + "/demo/blocking-events/", timeout=10).json()["running"] is True
    response = httpx.get(site + "/demo/block/", params={"ms": 400}, timeout=10)
    assert response.status_code == 200
    data = httpx.get(site + "/demo/blocking-events/", timeout=10).json()
    assert data["count"] >= 1
    event = data["events"][-1]
    assert event["where"].startswith("orders/views.py:")
    assert event["where"].endswith(" in block")
    assert "time.sleep" in event["line"]
    assert event["duration_ms"] >= 100
