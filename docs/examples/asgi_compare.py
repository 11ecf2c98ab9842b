"""Serve a trivial async view with Django's ASGI handler and with the toolkit's, in process.

Run it with ``python docs/examples/asgi_compare.py [--requests N] [--rounds R]``: it calls each
handler directly (no server, no sockets), alternating rounds so that both see the same machine
load, and prints requests per second for each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path


async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello", content_type="text/plain")


urlpatterns = [path("", hello)]

SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"localhost")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


def configure() -> None:
    """A minimal project: this module is its URLconf; no middleware, no database access."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="asgi-compare",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django_async_toolkit"],
        MIDDLEWARE=[],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    )
    django.setup()


async def serve(app: Any, requests: int) -> float:
    """Send ``requests`` requests one after another; return requests per second."""

    async def receive() -> Mapping[str, Any]:
        return await asyncio.Future()  # After the body: wait until the handler cancels us.

    start = time.perf_counter()
    for _ in range(requests):
        sent: list[Mapping[str, Any]] = []
        body_sent = False

        async def receive_once() -> Mapping[str, Any]:
            nonlocal body_sent
            if body_sent:
                return await receive()
            body_sent = True
            return {"type": "http.request", "body": b""}

        async def send(message: Mapping[str, Any], sent: list[Mapping[str, Any]] = sent) -> None:
            sent.append(message)

        await app(dict(SCOPE), receive_once, send)
        assert sent[0]["status"] == 200, sent
    return requests / (time.perf_counter() - start)


async def compare(requests: int, rounds: int) -> dict[str, float]:
    from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler

    from django_async_toolkit.asgi import ASGIHandler

    handlers = {"django": DjangoASGIHandler(), "toolkit": ASGIHandler()}
    best = dict.fromkeys(handlers, 0.0)
    for _ in range(rounds):
        for name, app in handlers.items():
            best[name] = max(best[name], await serve(app, requests))
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per handler (best kept)")
    args = parser.parse_args(argv)
    configure()
    best = asyncio.run(compare(args.requests, args.rounds))
    print(f"Django ASGIHandler:  {best['django']:8.0f} requests/s")
    print(f"toolkit ASGIHandler: {best['toolkit']:8.0f} requests/s")
    print(f"ratio: {best['toolkit'] / best['django']:.1f}x")


if __name__ == "__main__":
    main()
