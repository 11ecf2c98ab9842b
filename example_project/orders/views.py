"""The orders service's views: all ``async def``, JSON in and out."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import reverse

from django_async_toolkit.blocking import get_process_detector
from django_async_toolkit.conf import conf
from django_async_toolkit.middleware import request_timeout
from django_async_toolkit.sync import db_sync_to_async
from orders.models import Order, OrderStatus
from orders.monitoring import recent_events
from orders.upstream import UpstreamError, sync_latest

MAX_FETCH_PAGES = 50
MAX_LIST_LIMIT = 100


AsyncView = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def allow(*methods: str) -> Callable[[AsyncView], AsyncView]:
    """Answer 405 to other methods.

    Django 4.2's ``require_http_methods`` cannot wrap an async view; this works on every version.
    """

    def decorator(view: AsyncView) -> AsyncView:
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                return HttpResponseNotAllowed(methods)
            return await view(request, *args, **kwargs)

        return wrapper

    return decorator


def bad_request(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=400)


def int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter between ``low`` and ``high``; ValueError says what is wrong."""
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")
    return value


@allow("GET")
async def index(request: HttpRequest) -> JsonResponse:
    """What this service offers, with the URL of each endpoint."""
    statuses = [
        {"code": status.code, "label": status.label, "is_final": status.is_final}
        async for status in OrderStatus.objects.all()
    ]
    return JsonResponse(
        {
            "service": "orders (django-async-toolkit example)",
            "upstream": settings.ORDERS_UPSTREAM_URL,
            "stack": settings.ORDERS_STACK,
            "max_concurrent_requests": conf.MAX_CONCURRENT_REQUESTS,
            "statuses": statuses,
            "endpoints": {
                "health": reverse("health"),
                "list orders (GET, ?status=paid&limit=20)": reverse("order-list"),
                "fetch from upstream (POST, ?pages=3)": reverse("order-fetch"),
                "one order (GET)": reverse("order-detail", args=["ord-00200"]),
                "ship an order (POST)": reverse("order-ship", args=["ord-00200"]),
                "slow request (GET, ?seconds=3: answered 504 at the timeout)": reverse(
                    "demo-slow"
                ),
                "block the event loop (GET, ?ms=300)": reverse("demo-block"),
                "blocking events seen": reverse("demo-blocking-events"),
            },
        }
    )


@allow("GET")
async def health(request: HttpRequest) -> JsonResponse:
    """Liveness: answers without touching the database."""
    return JsonResponse({"ok": True})


@request_timeout(20)
@allow("POST")
async def fetch_orders(request: HttpRequest) -> JsonResponse:
    """Fetch the latest ``?pages=N`` pages from the upstream concurrently, store the new orders.

    It may take longer than the site-wide ``ASYNC_TOOLKIT_REQUEST_TIMEOUT``, so the view sets its
    own with ``@request_timeout``.
    """
    try:
        pages = int_param(request, "pages", 1, 1, MAX_FETCH_PAGES)
    except ValueError as exc:
        return bad_request(str(exc))
    try:
        result = await sync_latest(pages, settings.ORDERS_FETCH_CONCURRENCY)
    except UpstreamError as exc:
        return JsonResponse({"error": str(exc)}, status=502)
    return JsonResponse(result.as_dict())


@allow("GET")
async def order_list(request: HttpRequest) -> JsonResponse:
    """The newest orders, ``?status=<code>`` to filter, ``?limit=N`` (default 20) to bound."""
    try:
        limit = int_param(request, "limit", 20, 1, MAX_LIST_LIMIT)
    except ValueError as exc:
        return bad_request(str(exc))
    orders = Order.objects.select_related("status")
    if status := request.GET.get("status"):
        orders = orders.filter(status_id=status)
    return JsonResponse(
        {
            "count": await orders.acount(),
            "results": [order.as_dict() async for order in orders[:limit]],
        }
    )


@allow("GET")
async def order_detail(request: HttpRequest, external_id: str) -> JsonResponse:
    try:
        order = await Order.objects.select_related("status").aget(external_id=external_id)
    except Order.DoesNotExist:
        return JsonResponse({"error": f"no order {external_id!r}"}, status=404)
    return JsonResponse(order.as_dict())


class ShipError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@db_sync_to_async
def ship(external_id: str) -> Order:
    """Mark the order shipped, under a row lock, in a transaction.

    There is no async ``transaction.atomic``: the transaction is sync code, run with
    ``db_sync_to_async`` so that the thread's connection is not left stale.
    The webhook receiver is ``on_commit``: it is scheduled when this block commits.
    """
    with transaction.atomic():
        try:
            order = (
                Order.objects.select_for_update()
                .select_related("status")
                .get(external_id=external_id)
            )
        except Order.DoesNotExist:
            raise ShipError(404, f"no order {external_id!r}") from None
        if order.status.is_final or order.status_id == "shipped":
            raise ShipError(409, f"order {external_id} is {order.status.label.lower()} already")
        order.status_id = "shipped"
        order.save(update_fields=["status", "updated_at"])
    return Order.objects.select_related("status").get(pk=order.pk)


@allow("POST")
async def ship_order(request: HttpRequest, external_id: str) -> JsonResponse:
    """Ship an order; the upstream hears of it by webhook once the change is committed."""
    try:
        order = await ship(external_id)
    except ShipError as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    return JsonResponse(order.as_dict())


@allow("GET")
async def slow(request: HttpRequest) -> JsonResponse:
    """Sleeps ``?seconds=S`` (without blocking): past the request timeout the answer is a 504."""
    try:
        seconds = float(request.GET.get("seconds", "1"))
    except ValueError:
        return bad_request("seconds must be a number")
    if not 0 <= seconds <= 30:
        return bad_request("seconds must be between 0 and 30")
    await asyncio.sleep(seconds)
    return JsonResponse({"slept": seconds})


@allow("GET")
async def block(request: HttpRequest) -> JsonResponse:
    """A bug on purpose: ``time.sleep`` in an async view blocks the event loop for every request.

    The toolkit's blocking detector reports it, with this line.
    """
    try:
        ms = int_param(request, "ms", 300, 1, 2000)
    except ValueError as exc:
        return bad_request(str(exc))
    time.sleep(ms / 1000)  # the blocking call the detector will point at
    return JsonResponse({"blocked_ms": ms})


@allow("GET")
async def blocking_events(request: HttpRequest) -> JsonResponse:
    """What the process's blocking detector has seen (it runs when the toolkit's handler does)."""
    detector = get_process_detector()
    return JsonResponse(
        {
            "running": detector is not None and detector.running,
            "count": detector.events_seen if detector is not None else 0,
            "events": recent_events(),
        }
    )
