"""Calling an ASGI application directly, without a server: the handler's own cost."""

from __future__ import annotations

import asyncio
from typing import Any


def http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench.local")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call(app: Any, path: str) -> int:
    """One request through ``app``; returns the status code."""
    received = False
    status = 0
    disconnect = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(http_scope(path), receive, send)
    disconnect.set()
    return status


async def hammer(app: Any, path: str, requests: int, concurrency: int) -> None:
    """``requests`` requests through ``app``, ``concurrency`` at a time; all must answer 200."""
    per_worker, rest = divmod(requests, concurrency)

    async def worker(count: int) -> None:
        for _ in range(count):
            status = await call(app, path)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")

    await asyncio.gather(*(worker(per_worker + (i < rest)) for i in range(concurrency)))
