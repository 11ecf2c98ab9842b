"""Put the toolkit's ASGI handler in place of Django's, for Django's own test modules.

Imported first by ``tests.django_suite.run_django_tests`` (see ``tests/test_asgi_django.py``),
before Django's ``asgi`` and ``handlers`` test modules import ``get_asgi_application`` and
``ASGIHandler``, so every handler those tests build (subclasses included) is ours.
"""

from __future__ import annotations

import atexit
import sys
import threading
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


class _PatientBarrier(threading.Barrier):
    """A barrier whose short timeouts wait long enough for a loaded machine.

    Django's ``test_concurrent_async_uses_multiple_thread_pools`` proves that two requests run
    on two threads at once with a barrier that waits 0.5 s: on a busy 2-core machine the second
    thread may start later than that. What it proves does not depend on the timeout.
    """

    def wait(self, timeout: float | None = None) -> int:
        return super().wait(None if timeout is None else max(timeout, 30.0))


def _patient_sync_waiter() -> None:
    try:
        import asgi.urls  # Django's tests/asgi/urls.py (tests/ is on sys.path here)
    except ImportError:  # another test module is being run
        return
    asgi.urls.sync_waiter.barrier = _PatientBarrier(2)  # type: ignore[attr-defined]


_patient_sync_waiter()
