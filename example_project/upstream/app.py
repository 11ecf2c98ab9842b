"""The upstream order API: deterministic, paged orders and a webhook sink, as a bare ASGI app.

It stands in for the third-party service an orders site would talk to, so the example runs offline.
No framework: one ASGI callable, served by uvicorn on 127.0.0.1.

Routes (JSON in, JSON out):

``GET /health``
    ``{"ok": true}``; the demo polls it to know the server is up.
``GET /orders?page=K&page_size=S``
    Page ``K`` (from 1) of the orders, newest first:
    ``{"page": K, "pages": P, "count": N, "results": [order, ...]}``.
    A page past the last one is a 404 that says how many pages there are.
``GET /orders/<id>``
    One order.
``POST /webhooks``
    Records the JSON object it receives and answers 201 with the delivery's number.
``GET /webhooks``
    ``{"count": n, "results": [delivery, ...]}``: every delivery recorded so far, in order.
``DELETE /webhooks``
    Forgets the deliveries (tests use it to start clean).

The orders are generated from a seed, so every run serves the same data.
``latency`` (seconds) delays each ``/orders`` answer, as a remote service would: with it, fetching
pages one after the other is visibly slower than fetching them concurrently.

Served with uvicorn, the module-level ``app`` reads its parameters from the environment:
``UPSTREAM_ORDERS`` (how many orders, default 200), ``UPSTREAM_SEED`` (default 7) and
``UPSTREAM_LATENCY`` (seconds, default 0.05)::

    python -m uvicorn upstream.app:app --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 1024 * 1024
MAX_PAGE_SIZE = 100
EPOCH = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

CUSTOMERS = (
    "Ada Lovelace",
    "Alan Turing",
    "Barbara Liskov",
    "Donald Knuth",
    "Edsger Dijkstra",
    "Frances Allen",
    "Grace Hopper",
    "Guido van Rossum",
    "Jacob Kaplan-Moss",
    "Katherine Johnson",
    "Margaret Hamilton",
    "Simon Willison",
)
PRODUCTS = (
    ("Espresso beans, 1 kg", 2400),
    ("Pour-over kettle", 5900),
    ("Burr grinder", 14900),
    ("Paper filters, 100", 650),
    ("Ceramic mug", 1800),
    ("Milk frother", 3900),
)
STATUSES = ("new", "paid", "paid", "shipped")


def make_orders(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` orders generated from ``seed``, newest first (the same for the same arguments)."""
    rng = random.Random(seed)
    orders = []
    for number in range(count, 0, -1):
        lines: list[dict[str, Any]] = []
        for product, price in rng.sample(PRODUCTS, k=rng.randint(1, 3)):
            lines.append({"product": product, "quantity": rng.randint(1, 4), "price_cents": price})
        orders.append(
            {
                "id": f"ord-{number:05d}",
                "customer": rng.choice(CUSTOMERS),
                "status": rng.choice(STATUSES),
                "lines": lines,
                "total_cents": sum(line["quantity"] * line["price_cents"] for line in lines),
                "placed_at": (EPOCH + timedelta(minutes=7 * number)).isoformat(),
            }
        )
    return orders


class HTTPError(Exception):
    """An error answer: its status and the message that the JSON body carries."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class OrderAPI:
    """The upstream service as an ASGI callable; its state (the webhooks received) lives here."""

    def __init__(
        self, *, orders: int = 200, seed: int = 7, latency: float = 0.05, page_size: int = 20
    ) -> None:
        if orders < 0:
            raise ValueError(f"orders must be 0 or more, not {orders!r}")
        if latency < 0:
            raise ValueError(f"latency must be 0 or more seconds, not {latency!r}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size!r}")
        self.orders = make_orders(orders, seed)
        self.by_id = {order["id"]: order for order in self.orders}
        self.latency = latency
        self.page_size = page_size
        self.webhooks: list[dict[str, Any]] = []
        #: How many ``/orders`` requests arrived (counted before the latency).
        self.order_requests = 0
        self._changed = threading.Condition()

    @classmethod
    def from_env(cls, environ: MutableMapping[str, str] = os.environ) -> OrderAPI:
        """An API configured by ``UPSTREAM_ORDERS``, ``UPSTREAM_SEED`` and ``UPSTREAM_LATENCY``."""
        try:
            return cls(
                orders=int(environ.get("UPSTREAM_ORDERS", "200")),
                seed=int(environ.get("UPSTREAM_SEED", "7")),
                latency=float(environ.get("UPSTREAM_LATENCY", "0.05")),
            )
        except ValueError as exc:
            raise ValueError(
                f"upstream settings: {exc} (set UPSTREAM_ORDERS and UPSTREAM_SEED to integers, "
                "UPSTREAM_LATENCY to seconds)"
            ) from exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"the upstream API serves HTTP only, not {scope['type']!r}")
        try:
            body = await self._read_body(receive)
            status, payload = await self.route(
                scope["method"], scope["path"], parse_qs(scope["query_string"].decode()), body
            )
        except HTTPError as exc:
            status, payload = exc.status, {"detail": exc.detail}
        await self._respond(send, status, payload)

    async def route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        """The status and JSON payload for one request."""
        path = path.rstrip("/") or "/"
        if path == "/health":
            self._allow(method, "GET")
            return 200, {"ok": True}
        if path == "/orders":
            self._allow(method, "GET")
            with self._changed:
                self.order_requests += 1
                self._changed.notify_all()
            await asyncio.sleep(self.latency)
            return 200, self.page(self._int(query, "page", 1), self._int(query, "page_size", 0))
        if path.startswith("/orders/"):
            self._allow(method, "GET")
            await asyncio.sleep(self.latency)
            order_id = path.removeprefix("/orders/")
            if order_id not in self.by_id:
                raise HTTPError(404, f"no order {order_id!r}")
            return 200, self.by_id[order_id]
        if path == "/webhooks":
            self._allow(method, "GET", "POST", "DELETE")
            if method == "POST":
                return 201, self.record_webhook(body)
            if method == "DELETE":
                with self._changed:
                    self.webhooks.clear()
                return 200, {"count": 0}
            with self._changed:
                deliveries = list(self.webhooks)
            return 200, {"count": len(deliveries), "results": deliveries}
        raise HTTPError(404, f"no route {path!r}; try /orders?page=1 or /webhooks")

    def page(self, number: int, size: int) -> dict[str, Any]:
        """Page ``number`` (from 1) of ``size`` orders (0: the default size), newest first."""
        size = size or self.page_size
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise HTTPError(400, f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        pages = max(1, math.ceil(len(self.orders) / size))
        if not 1 <= number <= pages:
            raise HTTPError(404, f"page {number} does not exist; there are {pages} pages")
        start = (number - 1) * size
        return {
            "page": number,
            "pages": pages,
            "count": len(self.orders),
            "results": self.orders[start : start + size],
        }

    def record_webhook(self, body: bytes) -> dict[str, Any]:
        """Record one delivery; its body must be a JSON object."""
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise HTTPError(400, f"the webhook body is not JSON: {exc}") from exc
        if not isinstance(event, dict):
            raise HTTPError(400, "the webhook body must be a JSON object")
        with self._changed:
            delivery = {
                "id": len(self.webhooks) + 1,
                "received_at": datetime.now(UTC).isoformat(),
                "event": event.get("event"),
                "body": event,
            }
            self.webhooks.append(delivery)
            self._changed.notify_all()
        return {"id": delivery["id"]}

    def wait_for_webhooks(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """The deliveries, once there are at least ``count``; TimeoutError if they do not arrive
        within ``timeout`` seconds. Call it from another thread than the server's."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.webhooks) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.webhooks)} webhooks arrived within {timeout} s, not {count}"
                )
            return list(self.webhooks)

    def wait_for_order_requests(self, count: int, timeout: float) -> None:
        """Return once ``count`` requests for ``/orders`` have arrived (see wait_for_webhooks)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.order_requests >= count, timeout):
                raise TimeoutError(
                    f"{self.order_requests} order requests arrived within {timeout} s, not {count}"
                )

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise HTTPError(405, f"method {method} not allowed; use {', '.join(allowed)}")

    @staticmethod
    def _int(query: dict[str, list[str]], name: str, default: int) -> int:
        values = query.get(name)
        if not values:
            return default
        try:
            return int(values[-1])
        except ValueError:
            raise HTTPError(400, f"{name} must be an integer, not {values[-1]!r}") from None

    @staticmethod
    async def _read_body(receive: Receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                raise HTTPError(413, f"request bodies are limited to {MAX_BODY} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    async def _respond(send: Send, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> OrderAPI:
    """The API configured from the environment (what ``upstream.app:app`` is)."""
    return OrderAPI.from_env()


app = create_app()
