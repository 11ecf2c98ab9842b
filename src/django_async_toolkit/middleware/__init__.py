"""Middleware that runs natively under both WSGI and ASGI, with no thread hop.

* :mod:`~django_async_toolkit.middleware.base`: :class:`AsyncMiddleware`, the base class.
* :mod:`~django_async_toolkit.middleware.timeout`: :class:`TimeoutMiddleware` and
  :func:`request_timeout`.
* :mod:`~django_async_toolkit.middleware.concurrency`: :class:`ConcurrencyLimitMiddleware`.
* :mod:`~django_async_toolkit.middleware.blocking`: :class:`BlockingDetectorMiddleware`.

Import them from here: ``MIDDLEWARE = ["django_async_toolkit.middleware.TimeoutMiddleware", ...]``.
"""

from __future__ import annotations

from django_async_toolkit.middleware.base import AsyncMiddleware
from django_async_toolkit.middleware.blocking import BlockingDetectorMiddleware
from django_async_toolkit.middleware.concurrency import ConcurrencyLimitMiddleware
from django_async_toolkit.middleware.timeout import TimeoutMiddleware, request_timeout

__all__ = [
    "AsyncMiddleware",
    "BlockingDetectorMiddleware",
    "ConcurrencyLimitMiddleware",
    "TimeoutMiddleware",
    "request_timeout",
]
