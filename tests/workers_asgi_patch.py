"""``tests.asgi_patch``, and a report of the worker pool's use at exit.

Imported first by ``tests/test_workers_django.py`` when it runs Django's own ``asgi`` tests
against the toolkit's handler with the worker pool on (its default).
"""

from __future__ import annotations

import atexit
import sys

import tests.asgi_patch  # noqa: F401 - puts the toolkit's handler in place of Django's
from django_async_toolkit import workers


def _report() -> None:
    stats = workers.pool_stats()
    leases = 0 if stats is None else stats.leases
    print(f"django_async_toolkit.workers granted {leases} leases", file=sys.stderr)


atexit.register(_report)
