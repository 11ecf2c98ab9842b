"""A child process that puts load on the toolkit's handler and reports what it created.

``python -m tests.workers_child SCENARIO [ARGS]`` with ``DJANGO_SETTINGS_MODULE`` set to
``tests.workers_settings`` (see there for the environment it reads); prints one JSON object on
its last line of stdout. Scenarios:

- ``load PATH REQUESTS CONCURRENCY``: requests straight through the handler, in-process;
- ``serve PATH REQUESTS CONCURRENCY``: the same through uvicorn on 127.0.0.1 (lifespan on), with
  PostgreSQL's count of this database's connections taken while the server still runs, and again
  after its lifespan shutdown;
- ``background DISPATCHES``: ``send_background`` with a sync receiver that uses the ORM;
- ``exit [stuck]``: a unit opens a connection on a worker and the script ends without stopping
  the pool (with ``stuck``, a second worker is still busy then); the report comes from an exit
  hook that runs after the pool's own.

Each report has the threads started, ``connection_created`` signals, the connections closed
(with the thread that closed them), and the pool's statistics.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.workers_settings")
django.setup()

from django.db import connection, connections  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402

from django_async_toolkit import workers  # noqa: E402

report: dict[str, Any] = {"threads": [], "created": 0, "closed_on": [], "statuses": {}}


def _install_counters() -> None:
    original_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        report["threads"].append(thread.name)
        original_start(thread)

    threading.Thread.start = start  # type: ignore[method-assign]

    def created(sender: Any, connection: Any, **kwargs: Any) -> None:
        report["created"] += 1

    connection_created.connect(created, weak=False)
    backend = type(connections["default"])
    original_close = backend.close

    def close(wrapper: Any) -> None:
        if wrapper.connection is not None:
            report["closed_on"].append(threading.current_thread().name)
        original_close(wrapper)

    backend.close = close  # type: ignore[method-assign]


def _prepare_database() -> None:
    from tests.models import Item

    with connection.schema_editor() as editor:
        editor.create_model(Item)
    Item.objects.create(name="row")
    connection.close()


def _count(status: int) -> None:
    key = str(status)
    report["statuses"][key] = report["statuses"].get(key, 0) + 1


async def _in_process(app: Any, path: str, requests: int, concurrency: int) -> None:
    from tests.asgi_helpers import call

    remaining = requests

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            response = await call(app, path)
            _count(response.status)

    await asyncio.gather(*(client() for _ in range(concurrency)))


def _server_connections() -> int | None:
    """PostgreSQL's count of connections to this database (this query's own left out)."""
    settings_dict = connections["default"].settings_dict
    if settings_dict["ENGINE"] != "django.db.backends.postgresql":
        return None
    import psycopg

    with psycopg.connect(
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    ) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [settings_dict["NAME"]],
        ).fetchone()
    assert row is not None
    return int(row[0])


def _serve(path: str, requests: int, concurrency: int) -> None:
    import httpx

    from django_async_toolkit.asgi import get_asgi_application
    from tests.servers import serve_asgi

    app = get_asgi_application()
    with serve_asgi(app, lifespan="on") as url:

        async def load() -> None:
            remaining = requests
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

                async def one() -> None:
                    nonlocal remaining
                    while remaining > 0:
                        remaining -= 1
                        response = await client.get(path)
                        _count(response.status_code)

                await asyncio.gather(*(one() for _ in range(concurrency)))

        asyncio.run(load())
        report["server_connections_while_serving"] = _server_connections()
        report["stats_while_serving"] = _stats()
    report["server_connections_after_shutdown"] = _server_connections()


def _background(dispatches: int) -> None:
    from django.dispatch import Signal

    from django_async_toolkit.signals import drain_background, send_background
    from tests.models import Item

    signal = Signal()
    calls: list[str] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        Item.objects.count()
        calls.append(threading.current_thread().name)

    signal.connect(receiver, weak=False)

    async def burst() -> None:
        for _ in range(dispatches):
            send_background(signal, None)
        report["stats_after_sending"] = _stats()
        await drain_background(timeout=120)

    asyncio.run(burst())
    report["calls"] = len(calls)
    report["receiver_threads"] = sorted(set(calls))


def _fork() -> None:
    """Start the pool, fork, and use the pool in the child (a pre-forking server's worker)."""
    from asgiref.sync import sync_to_async

    async def unit() -> str:
        async with workers.pooled_context():
            return await sync_to_async(lambda: threading.current_thread().name)()

    report["parent_worker"] = asyncio.run(unit())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: none of the parent's threads exist here
        try:
            name = asyncio.run(unit())
            os.write(write, name.encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    report["child_status"] = status
    report["child_worker"] = os.read(read, 200).decode()


def _exit_without_shutdown(stuck: bool) -> None:
    """Use a worker's connection, and end without stopping the pool (a plain script).

    The report is printed by an exit hook registered before the pool starts, so it runs after
    the pool's own exit hook (atexit runs the latest registered first).
    """
    import atexit

    from asgiref.sync import sync_to_async

    def print_report() -> None:
        report["workers_alive_at_exit"] = sum(
            thread.name.startswith("async-toolkit-worker-") and thread.is_alive()
            for thread in threading.enumerate()
        )
        report["stats_at_exit"] = _stats()  # the closed pool's figures are still readable
        print(json.dumps(report), flush=True)

    atexit.register(print_report)
    held = threading.Event()

    def hold_a_worker() -> None:
        held.set()
        threading.Event().wait()  # never returns: this worker is still busy at exit

    async def units() -> None:
        async with workers.pooled_context():
            # (a lambda: the worker's own connection, not the one of the thread that wraps it)
            await sync_to_async(lambda: connection.ensure_connection())()
        if stuck:
            # A unit holds a worker forever, not the one with the connection: once that one is
            # back (its release runs on it, after the unit), the blocker leases it (the most
            # recently used idle worker), so the holder, which starts next, gets a new one.
            pool = workers.get_pool()
            assert pool is not None
            assert await asyncio.to_thread(pool.wait_idle, 60)

            async def holder() -> None:
                async with workers.pooled_context():
                    await sync_to_async(hold_a_worker)()

            async def blocker() -> None:
                async with workers.pooled_context():
                    await sync_to_async(held.wait)()

            asyncio.get_running_loop().create_task(holder())
            await blocker()

    asyncio.run(units())
    report["stats"] = _stats()


def _stats() -> dict[str, int] | None:
    stats = workers.pool_stats()
    return None if stats is None else stats.__dict__.copy()


def main(argv: list[str]) -> None:
    _prepare_database()
    _install_counters()
    scenario, *args = argv
    if scenario == "load":
        from django_async_toolkit.asgi import get_asgi_application

        path, requests, concurrency = args[0], int(args[1]), int(args[2])
        asyncio.run(_in_process(get_asgi_application(), path, requests, concurrency))
        if workers.pool_stats() is not None:  # (get_pool() would start one)
            pool = workers.get_pool()
            assert pool is not None
            pool.wait_idle(60)
    elif scenario == "serve":
        _serve(args[0], int(args[1]), int(args[2]))
    elif scenario == "background":
        _background(int(args[0]))
    elif scenario == "fork":
        _fork()
    elif scenario == "exit":
        _exit_without_shutdown(stuck=args == ["stuck"])
        return  # the pool stays up: the exit hooks report
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    report["stats"] = _stats()
    report["workers_alive"] = sum(
        thread.name.startswith("async-toolkit-worker-") for thread in threading.enumerate()
    )
    workers.shutdown_pool(timeout=60)
    report["workers_alive_after_shutdown"] = sum(
        thread.name.startswith("async-toolkit-worker-") for thread in threading.enumerate()
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
