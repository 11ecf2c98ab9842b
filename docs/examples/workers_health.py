"""A health endpoint that reports the worker pool (run by tests/test_workers_docs.py).

In settings.py::

    ASYNC_TOOLKIT_SYNC_WORKERS = 8  # the default; None restores Django's thread per request
    DATABASES = {"default": {..., "CONN_MAX_AGE": 600, "CONN_HEALTH_CHECKS": True}}

and serve the project with ``django_async_toolkit.asgi.get_asgi_application()``.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest, JsonResponse

from django_async_toolkit.workers import pool_stats


async def health(request: HttpRequest) -> JsonResponse:
    """Touch the database once, then say how busy the pool is."""
    users = await User.objects.acount()  # leases a worker (and its kept connection)
    stats = pool_stats()
    return JsonResponse(
        {
            "users": users,
            "workers": None if stats is None else stats.size,
            "leased": None if stats is None else stats.leased,
            "waiting": None if stats is None else stats.waiting,
            "peak": None if stats is None else stats.peak,
        }
    )


def ping(request: HttpRequest) -> JsonResponse:
    """A sync view: it runs on a pool worker, like an ORM call of an async view."""
    return JsonResponse({"pong": True})
