"""The in-process half of the worker-pool benchmarks, run in a child process per database.

``python -m benchmarks.workers_inprocess prepare`` creates the table and its row;
``python -m benchmarks.workers_inprocess measure ROUNDS REQUESTS CONCURRENCY`` prints, as JSON,
the requests/s of each round for each view and contender: Django's handler with
``CONN_MAX_AGE = 0`` (what Django's docs require under ASGI) and the toolkit's handler with
``CONN_MAX_AGE = 600`` (what the worker pool makes possible), interleaved.
``DJANGO_SETTINGS_MODULE=benchmarks.workers_settings`` and ``BENCH_DATABASE_URL`` pick the
database.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from typing import Any

STOCK = "Django handler, CONN_MAX_AGE=0"
TOOLKIT = "toolkit handler, CONN_MAX_AGE=600"


def prepare() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from benchmarks.models import Row

    call_command("migrate", run_syncdb=True, verbosity=0)
    if not Row.objects.exists():
        Row.objects.create(name="benchmark row")
    connections.close_all()


def measure(rounds: int, requests: int, concurrency: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.handlers.asgi import ASGIHandler
    from django.db import connections

    from benchmarks.harness import interleave, rate
    from benchmarks.inprocess import hammer
    from django_async_toolkit.asgi import get_asgi_application
    from django_async_toolkit.workers import pool_stats, shutdown_pool

    settings_dict = connections["default"].settings_dict
    stock = ASGIHandler()
    toolkit = get_asgi_application()
    runner = asyncio.Runner()

    def contender(app: Any, max_age: int, path: str) -> Callable[[], float]:
        def run() -> float:
            settings_dict["CONN_MAX_AGE"] = max_age
            return rate(lambda: runner.run(hammer(app, path, requests, concurrency)), requests)

        return run

    figures: dict[str, Any] = {}
    try:
        for label, path in [("async", "/orm/"), ("sync", "/sync-orm/")]:
            figures[label] = interleave(
                {STOCK: contender(stock, 0, path), TOOLKIT: contender(toolkit, 600, path)},
                rounds,
            )
    finally:
        runner.close()
        stats = pool_stats()
        figures["pool"] = None if stats is None else stats.__dict__.copy()
        shutdown_pool(timeout=30)
    return figures


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.workers_settings")
    command, *args = sys.argv[1:]
    if command == "prepare":
        prepare()
    else:
        print(json.dumps(measure(*(int(a) for a in args))))
