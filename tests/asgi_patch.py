"""Put the toolkit's ASGI handler in place of Django's, for Django's own test modules.

Imported first by ``tests.django_suite.run_django_tests`` (see ``tests/test_asgi_django.py``),
before Django's ``asgi`` and ``handlers`` test modules import ``get_asgi_application`` and
``ASGIHandler``, so every handler those tests build (subclasses included) is ours.
"""

from __future__ import annotations

import atexit
import sys
from typing import Any

import django.core.asgi
import django.core.handlers.asgi

from django_async_toolkit import asgi

django.core.asgi.get_asgi_application = asgi.get_asgi_application  # type: ignore[assignment]
django.core.handlers.asgi.ASGIHandler = asgi.ASGIHandler  # type: ignore[misc]

# Count the requests our handler served, and say so at exit, so the test that runs Django's suite
# can tell that the tests really went through the toolkit's handler.
_served = 0
_send_request_started = asgi.ASGIHandler.send_request_started


async def _counting_send_request_started(self: asgi.ASGIHandler, scope: dict[str, Any]) -> None:
    global _served
    _served += 1
    await _send_request_started(self, scope)


asgi.ASGIHandler.send_request_started = _counting_send_request_started  # type: ignore[method-assign]
atexit.register(
    lambda: print(f"django_async_toolkit.asgi served {_served} requests", file=sys.stderr)
)
