"""Talking to the upstream order API with ``httpx.AsyncClient``, and storing what it sends.

The view ``POST /orders/fetch/`` and the command ``manage.py sync_orders`` share this code.
Every call has a timeout (``ORDERS_UPSTREAM_TIMEOUT``, ``ORDERS_UPSTREAM_CONNECT_TIMEOUT``):
a request that hangs on a remote service holds its worker forever otherwise.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from django.conf import settings

from orders.models import Order, OrderStatus


class UpstreamError(Exception):
    """The upstream order API did not answer, or answered something we cannot use."""


# httpx would load the CA bundle again for every client it creates: a fifth of a second of the
# event loop on the first call here (the blocking detector caught it), milliseconds after that.
# One context, made when Django starts (the app's ready() imports this module), serves them all.
TLS_CONTEXT = ssl.create_default_context()


def upstream_client() -> httpx.AsyncClient:
    """A client for the upstream API, with its base URL and timeouts set."""
    return httpx.AsyncClient(
        base_url=settings.ORDERS_UPSTREAM_URL,
        timeout=httpx.Timeout(
            settings.ORDERS_UPSTREAM_TIMEOUT, connect=settings.ORDERS_UPSTREAM_CONNECT_TIMEOUT
        ),
        verify=TLS_CONTEXT,
    )


async def fetch_page(client: httpx.AsyncClient, page: int) -> dict[str, Any]:
    """Page ``page`` of the upstream's orders (newest first)."""
    try:
        response = await client.get("/orders", params={"page": page})
        response.raise_for_status()
        data = response.json()
    except httpx.HTTPError as exc:
        raise UpstreamError(f"GET {client.base_url}orders?page={page} failed: {exc!r}") from exc
    except ValueError as exc:
        raise UpstreamError(f"page {page} of the upstream orders is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise UpstreamError(f"page {page} of the upstream orders has no 'results' list")
    return data


async def fetch_latest(
    client: httpx.AsyncClient, pages: int, concurrency: int
) -> tuple[list[dict[str, Any]], int]:
    """The orders of the first ``pages`` pages (fewer if the upstream has fewer), and how many
    pages that was.

    Page 1 says how many pages there are; the others are fetched concurrently, at most
    ``concurrency`` at once.
    """
    if pages < 1 or concurrency < 1:
        raise ValueError(
            f"pages and concurrency must be at least 1, not {pages} and {concurrency}"
        )
    first = await fetch_page(client, 1)
    last = min(pages, int(first.get("pages", 1)))
    slots = asyncio.Semaphore(concurrency)

    async def bounded(page: int) -> dict[str, Any]:
        async with slots:
            return await fetch_page(client, page)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(bounded(page)) for page in range(2, last + 1)]
    except* UpstreamError as failed:
        # The first failure cancelled the other fetches; report it as itself.
        raise failed.exceptions[0] from None
    orders = list(first["results"])
    for task in tasks:
        orders.extend(task.result()["results"])
    return orders, last


async def store(orders: list[dict[str, Any]]) -> int:
    """Insert the orders we do not have yet (``abulk_create``); how many that was."""
    known_statuses = {code async for code in OrderStatus.objects.values_list("code", flat=True)}
    unknown = {order.get("status") for order in orders} - known_statuses
    if unknown:
        raise UpstreamError(f"the upstream sent unknown statuses {sorted(map(str, unknown))}")
    ids = [order["id"] for order in orders]
    existing = {
        external_id
        async for external_id in Order.objects.filter(external_id__in=ids).values_list(
            "external_id", flat=True
        )
    }
    new: dict[str, Order] = {}
    for order in orders:
        if order["id"] not in existing:
            new[order["id"]] = Order.from_upstream(order)
    # ignore_conflicts: an order that another request stored meanwhile is not an error.
    await Order.objects.abulk_create(new.values(), ignore_conflicts=True, batch_size=500)
    return len(new)


@dataclass(frozen=True)
class SyncResult:
    """What one sync did."""

    pages: int
    fetched: int
    created: int
    total: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


async def sync_latest(pages: int, concurrency: int) -> SyncResult:
    """Fetch the first ``pages`` pages of upstream orders and store the new ones."""
    started = time.perf_counter()
    async with upstream_client() as client:
        orders, fetched_pages = await fetch_latest(client, pages, concurrency)
    created = await store(orders)
    return SyncResult(
        pages=fetched_pages,
        fetched=len(orders),
        created=created,
        total=await Order.objects.acount(),
        seconds=time.perf_counter() - started,
    )


async def post_webhook(event: dict[str, Any]) -> None:
    """Deliver one webhook to the upstream's ``/webhooks`` sink; an error answer raises."""
    async with upstream_client() as client:
        response = await client.post("/webhooks", json=event)
        response.raise_for_status()
