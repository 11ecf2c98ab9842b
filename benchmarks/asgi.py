"""The ASGI applications under test, picked by ``BENCH_APP`` when served by uvicorn.

- ``raw``: a bare ASGI app, the floor of what the server can do;
- ``stock``: Django's own ``get_asgi_application()``;
- ``inline``: the probe of DESIGN.md, Django's handler with its housekeeping run inline;
- ``toolkit``: ``django_async_toolkit.asgi.get_asgi_application()``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


class _InlineSignal:
    """Stands in for a Django signal in the probe: ``asend`` runs the receivers inline."""

    def __init__(self, signal: Any) -> None:
        self.signal = signal

    async def asend(self, sender: Any, **named: Any) -> Any:
        return self.signal.send(sender, **named)


def _inline_sync_to_async(func: Callable[..., Any], **_: Any) -> Callable[..., Awaitable[Any]]:
    async def run(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return run


@contextlib.contextmanager
def inline_housekeeping() -> Iterator[None]:
    """The probe: Django's ASGI handler with its housekeeping run inline on the loop.

    It swaps the handler module's ``sync_to_async`` and ``signals`` for inline versions while it is
    active, so ``request_started`` receivers and ``response.close()`` run without a thread hop.
    Only for measuring: it is not safe for a real project (sync receivers would block the loop).
    """
    from types import SimpleNamespace

    from django.core import signals
    from django.core.handlers import asgi

    saved = asgi.sync_to_async, asgi.signals
    asgi.sync_to_async = _inline_sync_to_async  # type: ignore[assignment]
    asgi.signals = SimpleNamespace(  # type: ignore[assignment]
        request_started=_InlineSignal(signals.request_started),
        request_finished=_InlineSignal(signals.request_finished),
    )
    try:
        yield
    finally:
        asgi.sync_to_async, asgi.signals = saved


def build(kind: str) -> Any:
    """The ASGI application of ``kind`` (see the module docstring)."""
    if kind == "raw":
        return raw_app
    import django

    django.setup()
    if kind in {"stock", "inline"}:
        from django.core.handlers.asgi import ASGIHandler

        return ASGIHandler()
    if kind == "toolkit":
        from django_async_toolkit.asgi import get_asgi_application

        return get_asgi_application()
    raise ValueError(f"BENCH_APP={kind!r}: use raw, stock, inline or toolkit")


def _served() -> Any:
    kind = os.environ.get("BENCH_APP", "toolkit")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    app = build(kind)
    if kind == "inline":
        # uvicorn serves one app per process: the probe stays switched on for its lifetime (the
        # context manager is kept referenced: collected, it would switch the probe off again).
        global _PROBE
        _PROBE = inline_housekeeping()
        _PROBE.__enter__()
    return app


_PROBE: contextlib.AbstractContextManager[None] | None = None


def __getattr__(name: str) -> Any:
    # ``uvicorn benchmarks.asgi:application`` builds the app on first access, in the server.
    if name == "application":
        app = _served()
        globals()["application"] = app
        return app
    raise AttributeError(name)
