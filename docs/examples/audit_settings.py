"""Settings that tell the checks and the audit how the project is served."""

from __future__ import annotations

# The project runs under uvicorn (`uvicorn orders.asgi:application`), which needs no setting:
# say so, so that async_toolkit.W001 can warn about sync-only middleware.
ASYNC_TOOLKIT_INTERFACE = "asgi"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django_async_toolkit.middleware.TimeoutMiddleware",
    "django.middleware.common.CommonMiddleware",
    "orders.middleware.PoweredByMiddleware",
]

# A warning you have decided to live with can be silenced by its id:
SILENCED_SYSTEM_CHECKS: list[str] = [
    # "async_toolkit.W001",
]
