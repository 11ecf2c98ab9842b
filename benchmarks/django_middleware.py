"""Django's own middleware (startproject's MIDDLEWARE) under the toolkit's handler and Django's.

The toolkit's handler serves startproject's seven middleware classes without a thread hop per
hook (``django_async_toolkit.middleware.builtins``); Django's handler pays 13 hops per request for
them. Two views behind that stack: a DB-free async view, and an async view that saves the
session (a new session per request, as for a first visit). The sessions live in the cache engine
(LocMem): with the database engine on SQLite, concurrent saves measure SQLite's single writer
lock (and fail with "database is locked" at 8 concurrent requests), not the handler.
In-process and under uvicorn, each pair measured side by side in one run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from benchmarks.harness import Result, interleave, rate

if TYPE_CHECKING:  # benchmarks.suites imports this module (and benchmarks.urls its view)
    from benchmarks.suites import Config

STARTPROJECT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TARGETS = {"/": ">= 3x", "/session/": ">= 1.5x"}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
LABELS = {"/": "DB-free async view", "/session/": "session-saving async view"}


async def session_view(request: HttpRequest) -> HttpResponse:
    """Count the visits in the session: the session middleware saves it after the view."""
    session = request.session
    if hasattr(session, "aget"):  # Django 5.1+
        await session.aset("visits", await session.aget("visits", 0) + 1)
    else:
        await sync_to_async(session.__setitem__)("visits", session.get("visits", 0) + 1)
    return HttpResponse(b"saved")


def in_process(config: Config) -> list[Result]:
    from django.core.handlers.asgi import ASGIHandler
    from django.test import override_settings

    from benchmarks.inprocess import hammer
    from django_async_toolkit.asgi import ASGIHandler as ToolkitHandler

    with override_settings(MIDDLEWARE=STARTPROJECT_MIDDLEWARE, SESSION_ENGINE=SESSION_ENGINE):
        handlers = {"Django handler": ASGIHandler(), "toolkit handler": ToolkitHandler()}
    runner = asyncio.Runner()

    def measure(app: Any, path: str) -> Callable[[], float]:
        def go() -> None:
            with override_settings(SESSION_ENGINE=SESSION_ENGINE):
                runner.run(hammer(app, path, config.requests, 8))

        return lambda: rate(go, config.requests)

    results = []
    try:
        for path, target in TARGETS.items():
            rounds = interleave(
                {name: measure(app, path) for name, app in handlers.items()}, config.rounds
            )
            results.append(_result(f"{LABELS[path]}, in-process", rounds, target))
    finally:
        runner.close()
    return results


def under_uvicorn(config: Config) -> list[Result]:
    from benchmarks.suites import _server_rounds, uvicorn_server

    env = {
        "BENCH_MIDDLEWARE": ",".join(STARTPROJECT_MIDDLEWARE),
        "BENCH_SESSION_ENGINE": SESSION_ENGINE,
    }
    results = []
    with uvicorn_server("stock", **env) as stock, uvicorn_server("toolkit", **env) as toolkit:
        for path, target in TARGETS.items():
            extra: dict[str, Any] = {}
            rounds = _server_rounds(
                {"Django handler": stock, "toolkit handler": toolkit}, path, config, extra
            )
            results.append(_result(f"{LABELS[path]}, uvicorn", rounds, target, extra))
    return results


def _result(
    name: str, rounds: dict[str, list[float]], target: str, extra: dict[str, Any] | None = None
) -> Result:
    return Result(
        "django-middleware",
        f"startproject MIDDLEWARE, {name}",
        "requests/s",
        rounds,
        baseline="Django handler",
        subject="toolkit handler",
        target=target,
        extra=extra or {},
    )


SUITES = {"django-middleware": in_process, "django-middleware-uvicorn": under_uvicorn}
