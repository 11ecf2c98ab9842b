"""The benchmark suites. Each returns :class:`~benchmarks.harness.Result` objects.

Every suite runs its contenders interleaved in one process (or, for servers, against servers
started side by side), so each ratio compares like with like on the same machine at the same time.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import tasks as bench_tasks
from benchmarks.harness import Result, interleave, rate, seconds

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Config:
    rounds: int
    requests: int  # per in-process measurement
    duration: float  # seconds of load per server measurement
    connections: int
    dispatches: int  # per signal measurement
    calls: int  # per wrapper measurement
    command_runs: int
    #: Rounds of the in-process signal and wrapper suites: each round takes a fraction of a
    #: second, and a single thread hop varies by 10-20% from one round to the next on a small
    #: VM, so these take more rounds than the server suites for a steadier median.
    micro_rounds: int


FULL = Config(
    rounds=7,
    requests=2000,
    duration=2.0,
    connections=16,
    dispatches=2000,
    calls=2000,
    command_runs=11,
    micro_rounds=21,
)
QUICK = Config(
    rounds=2,
    requests=100,
    duration=0.3,
    connections=4,
    dispatches=50,
    calls=50,
    command_runs=2,
    micro_rounds=2,
)


# ---------------------------------------------------------------------------------------------
# servers


#: The process id of each server started here, by its port (for :func:`server_cpu_seconds`).
SERVER_PIDS: dict[int, int] = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server_process(what: str, port: int, args: list[str], env: dict[str, str]) -> Iterator[int]:
    """Run ``args`` (a server listening on 127.0.0.1:``port``) until the block ends; yield the
    port once it accepts connections. Its pid is in :data:`SERVER_PIDS` meanwhile."""
    process = subprocess.Popen(args, cwd=ROOT, env=env)
    SERVER_PIDS[port] = process.pid
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{what} did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        SERVER_PIDS.pop(port, None)
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def uvicorn_server(app_kind: str, **env: str) -> Iterator[int]:
    """A uvicorn subprocess on 127.0.0.1 serving ``benchmarks.asgi`` (``BENCH_APP=app_kind``)."""
    port = _free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "auto",
    ]
    environment = {**os.environ, "BENCH_APP": app_kind, **env}
    with server_process(f"uvicorn ({app_kind})", port, args, environment):
        yield port


def _stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def server_cpu_seconds(port: int) -> float | None:
    """The CPU time (user and system) used so far by the server on ``port`` and its child
    processes (gunicorn's worker), or ``None`` where ``/proc`` does not tell (not Linux)."""
    pid = SERVER_PIDS.get(port)
    if pid is None:
        return None
    try:
        total = _cpu_seconds(_stat(pid))
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and entry.name != str(pid):
                try:
                    fields = _stat(entry.name)
                    if int(fields[1]) == pid:  # its parent
                        total += _cpu_seconds(fields)
                except (OSError, IndexError, ValueError):
                    continue  # gone meanwhile
        return total
    except OSError:
        return None


def _server_rounds(
    servers: dict[str, int], path: str, config: Config, extra: dict[str, Any]
) -> dict[str, list[float]]:
    from benchmarks.loadgen import load

    latencies: dict[str, list[float]] = {name: [] for name in servers}
    # Per round: the server's CPU microseconds per request, and its CPU seconds per second of
    # load (1.0 = one core kept busy: a Python server is then bound by its own CPU, the GIL).
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}

    def measure(name: str) -> Callable[[], float]:
        def run() -> float:
            before = server_cpu_seconds(servers[name])
            result = load(
                "127.0.0.1",
                servers[name],
                path,
                connections=config.connections,
                duration=config.duration,
            )
            if result.errors:
                raise RuntimeError(f"{name}: {result.errors} non-2xx answers on {path}")
            latencies[name].extend(result.latencies)
            after = server_cpu_seconds(servers[name])
            if before is not None and after is not None and result.requests:
                used = after - before
                cpu[name].append((1e6 * used / result.requests, used / result.elapsed))
            return result.rps

        return run

    rounds = interleave({name: measure(name) for name in servers}, config.rounds)
    for name, values in latencies.items():
        values.sort()
        extra.setdefault("latency_ms", {})[name] = {
            "p50": 1000 * values[len(values) // 2] if values else 0.0,
            "p99": 1000 * values[min(len(values) - 1, int(0.99 * len(values)))] if values else 0.0,
        }
    for name, figures in cpu.items():
        if figures:
            extra.setdefault("server_cpu", {})[name] = {
                "us_per_request": statistics.median(us for us, _ in figures),
                "cores": statistics.median(cores for _, cores in figures),
            }
    return rounds


# ---------------------------------------------------------------------------------------------
# 1. the ASGI handler


def handler_in_process(config: Config) -> list[Result]:
    from django.core.handlers.asgi import ASGIHandler

    from benchmarks.asgi import inline_housekeeping, raw_app
    from benchmarks.inprocess import hammer
    from django_async_toolkit.asgi import get_asgi_application

    stock = ASGIHandler()
    toolkit = get_asgi_application()
    runner = asyncio.Runner()
    concurrency = 8

    def measure(app: Any, path: str, inline: bool = False) -> Callable[[], float]:
        def run() -> float:
            def go() -> None:
                runner.run(hammer(app, path, config.requests, concurrency))

            if inline:
                with inline_housekeeping():
                    return rate(go, config.requests)
            return rate(go, config.requests)

        return run

    try:
        trivial = interleave(
            {
                "raw ASGI app": measure(raw_app, "/"),
                "Django handler": measure(stock, "/"),
                "Django handler, housekeeping inline (probe)": measure(stock, "/", inline=True),
                "toolkit handler": measure(toolkit, "/"),
            },
            config.rounds,
        )
        orm = interleave(
            {
                "Django handler": measure(stock, "/orm/"),
                "toolkit handler": measure(toolkit, "/orm/"),
            },
            config.rounds,
        )
    finally:
        runner.close()
    return [
        Result(
            "handler",
            "trivial async view, in-process",
            "requests/s",
            trivial,
            baseline="Django handler",
            subject="toolkit handler",
            target=">= 4x",
        ),
        Result(
            "handler",
            "async view with one ORM query, in-process",
            "requests/s",
            orm,
            baseline="Django handler",
            subject="toolkit handler",
            target=">= 1x",
        ),
    ]


def handler_uvicorn(config: Config) -> list[Result]:
    results = []
    with (
        uvicorn_server("raw") as raw,
        uvicorn_server("stock") as stock,
        uvicorn_server("inline") as inline,
        uvicorn_server("toolkit") as toolkit,
    ):
        extra: dict[str, Any] = {}
        trivial = _server_rounds(
            {
                "raw ASGI app": raw,
                "Django handler": stock,
                "Django handler, housekeeping inline (probe)": inline,
                "toolkit handler": toolkit,
            },
            "/",
            config,
            extra,
        )
        results.append(
            Result(
                "handler",
                "trivial async view, uvicorn",
                "requests/s",
                trivial,
                baseline="Django handler",
                subject="toolkit handler",
                target=">= 4x",
                extra=extra,
            )
        )
        extra = {}
        orm = _server_rounds(
            {"Django handler": stock, "toolkit handler": toolkit}, "/orm/", config, extra
        )
        results.append(
            Result(
                "handler",
                "async view with one ORM query, uvicorn",
                "requests/s",
                orm,
                baseline="Django handler",
                subject="toolkit handler",
                target=">= 1x",
                extra=extra,
            )
        )
    return results


# ---------------------------------------------------------------------------------------------
# 2. middleware


def middleware(config: Config) -> list[Result]:
    from django.test import override_settings

    from benchmarks.inprocess import hammer
    from benchmarks.middlewares import STACKS, stack
    from django_async_toolkit.asgi import get_asgi_application

    handlers = {}
    for kind in STACKS:
        with override_settings(MIDDLEWARE=stack(kind)):
            handlers[kind] = get_asgi_application()
    runner = asyncio.Runner()

    def measure(kind: str) -> Callable[[], float]:
        def go() -> None:
            runner.run(hammer(handlers[kind], "/", config.requests, 8))

        return lambda: rate(go, config.requests)

    labels = {
        "toolkit_async_hooks": "5 AsyncMiddleware, async def hooks",
        "toolkit_def_hooks": "5 AsyncMiddleware, plain def hooks",
        "hand_written_async": "5 hand-written pure async",
        "middleware_mixin": "5 MiddlewareMixin",
        "sync_only": "5 sync-only",
    }
    try:
        rounds = interleave({labels[k]: measure(k) for k in STACKS}, config.rounds)
    finally:
        runner.close()
    hand = labels["hand_written_async"]
    return [
        Result(
            "middleware",
            "AsyncMiddleware (async hooks) vs hand-written",
            "requests/s",
            rounds,
            baseline=hand,
            subject=labels["toolkit_async_hooks"],
            target=">= 0.9x",
        ),
        Result(
            "middleware",
            "AsyncMiddleware (def hooks) vs hand-written",
            "requests/s",
            rounds,
            baseline=hand,
            subject=labels["toolkit_def_hooks"],
            target=">= 0.9x",
        ),
        Result(
            "middleware",
            "AsyncMiddleware (async hooks) vs MiddlewareMixin",
            "requests/s",
            rounds,
            baseline=labels["middleware_mixin"],
            subject=labels["toolkit_async_hooks"],
            target="about 10x",
        ),
        Result(
            "middleware",
            "AsyncMiddleware (async hooks) vs sync-only",
            "requests/s",
            rounds,
            baseline=labels["sync_only"],
            subject=labels["toolkit_async_hooks"],
        ),
    ]


# ---------------------------------------------------------------------------------------------
# 3. signals


def signals(config: Config) -> list[Result]:
    from django.dispatch import Signal

    from django_async_toolkit import _compat
    from django_async_toolkit.signals import asend, drain_background, send_background

    noop_signal = Signal()
    wait_signal = Signal()
    receivers: list[Any] = []  # strong references: receivers are weakly connected

    for _ in range(20):

        async def noop(sender: Any, **kwargs: Any) -> None:
            return None

        async def wait(sender: Any, **kwargs: Any) -> None:
            await asyncio.sleep(0.01)

        receivers += [noop, wait]
        noop_signal.connect(noop)
        wait_signal.connect(wait)

    runner = asyncio.Runner()
    n = config.dispatches

    async def ours_noop() -> None:
        for _ in range(n):
            await asend(noop_signal, None)

    async def django_noop() -> None:
        for _ in range(n):
            await noop_signal.asend(None)  # type: ignore[attr-defined,unused-ignore]

    async def background() -> None:
        for _ in range(n):
            send_background(noop_signal, None)
        await drain_background()

    waits = max(3, n // 100)

    async def ours_wait() -> None:
        for _ in range(waits):
            await asend(wait_signal, None)

    overhead = {
        "toolkit asend": lambda: rate(lambda: runner.run(ours_noop()), n),
        "send_background + drain": lambda: rate(lambda: runner.run(background()), n),
    }
    if _compat.HAS_SIGNAL_ASEND:
        overhead["Django Signal.asend"] = lambda: rate(lambda: runner.run(django_noop()), n)
    try:
        rounds = interleave(overhead, config.micro_rounds)
        wall = interleave(
            {
                "toolkit asend, 20 x 10 ms receivers": lambda: (
                    seconds(lambda: runner.run(ours_wait())) / waits
                ),
                "one receiver's wait": lambda: seconds(lambda: runner.run(asyncio.sleep(0.01))),
            },
            config.micro_rounds,
        )
    finally:
        runner.close()
    results = []
    if _compat.HAS_SIGNAL_ASEND:
        results.append(
            Result(
                "signals",
                "asend vs Signal.asend, 20 no-op async receivers",
                "dispatches/s",
                rounds,
                baseline="Django Signal.asend",
                subject="toolkit asend",
                target=">= 1x",
            )
        )
        results.append(
            Result(
                "signals",
                "send_background (+drain) vs Signal.asend, 20 no-op receivers",
                "dispatches/s",
                rounds,
                baseline="Django Signal.asend",
                subject="send_background + drain",
            )
        )
    results.append(
        Result(
            "signals",
            "asend wall time, 20 receivers waiting 10 ms, vs one wait",
            "seconds",
            wall,
            baseline="one receiver's wait",
            subject="toolkit asend, 20 x 10 ms receivers",
            higher_is_better=False,
            target=">= 0.9x (within 10%)",
        )
    )
    return results


# ---------------------------------------------------------------------------------------------
# 4. wrappers


def wrappers(config: Config) -> list[Result]:
    from asgiref.sync import sync_to_async

    from django_async_toolkit.sync import db_sync_to_async, run_blocking, shutdown_blocking_pool

    def work() -> int:
        return 1

    plain = sync_to_async(work)
    ours = db_sync_to_async(work)
    n = config.calls
    runner = asyncio.Runner()

    async def many(func: Callable[[], Any]) -> None:
        for _ in range(n):
            await func()

    async def blocking_ours() -> None:
        for _ in range(n):
            await run_blocking(work)

    async def blocking_to_thread() -> None:
        for _ in range(n):
            await asyncio.to_thread(work)

    try:
        hop = interleave(
            {
                "sync_to_async": lambda: rate(lambda: runner.run(many(plain)), n),
                "db_sync_to_async": lambda: rate(lambda: runner.run(many(ours)), n),
            },
            config.micro_rounds,
        )
        pool = interleave(
            {
                "asyncio.to_thread": lambda: rate(lambda: runner.run(blocking_to_thread()), n),
                "run_blocking": lambda: rate(lambda: runner.run(blocking_ours()), n),
            },
            config.micro_rounds,
        )
    finally:
        runner.close()
        shutdown_blocking_pool()
    return [
        Result(
            "wrappers",
            "db_sync_to_async vs sync_to_async, per call",
            "calls/s",
            hop,
            baseline="sync_to_async",
            subject="db_sync_to_async",
            target=">= 0.9x",
        ),
        Result(
            "wrappers",
            "run_blocking vs asyncio.to_thread, per call",
            "calls/s",
            pool,
            baseline="asyncio.to_thread",
            subject="run_blocking",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# 5. blocking detector


def blocking(config: Config) -> list[Result]:
    with (
        uvicorn_server("toolkit") as off,
        uvicorn_server("toolkit", BENCH_BLOCKING_DETECTOR="1") as on,
    ):
        extra: dict[str, Any] = {}
        rounds = _server_rounds({"detector off": off, "detector on": on}, "/", config, extra)
    return [
        Result(
            "blocking",
            "toolkit handler under uvicorn, blocking detector on vs off",
            "requests/s",
            rounds,
            baseline="detector off",
            subject="detector on",
            target=">= 0.97x",
            extra=extra,
        )
    ]


# ---------------------------------------------------------------------------------------------
# 6. AsyncBaseCommand start-up


def command(config: Config) -> list[Result]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings"}

    def run(name: str) -> Callable[[], float]:
        def go() -> None:
            # Not subprocess.run(timeout=...): waiting with a timeout polls the child with sleeps
            # of up to 50 ms, which rounded every figure to a 50 ms step (and a median of such
            # steps once showed a +46 ms "difference"). A blocking wait sees the exit at once;
            # a timer kills a child that hangs.
            child = subprocess.Popen([sys.executable, "-m", "django", name], cwd=ROOT, env=env)
            killer = threading.Timer(60, child.kill)
            killer.start()
            try:
                status = child.wait()
            finally:
                killer.cancel()
            if status != 0:
                raise subprocess.CalledProcessError(status, child.args)

        return lambda: seconds(go)

    rounds = interleave(
        {"BaseCommand": run("bench_noop_sync"), "AsyncBaseCommand": run("bench_noop_async")},
        config.command_runs,
    )
    result = Result(
        "command",
        "start-up of a no-op command, AsyncBaseCommand vs BaseCommand",
        "seconds",
        rounds,
        baseline="BaseCommand",
        subject="AsyncBaseCommand",
        higher_is_better=False,
        target="within 20 ms",
    )
    result.extra["difference_ms"] = 1000 * (
        result.median("AsyncBaseCommand") - result.median("BaseCommand")
    )
    return [result]


SUITES: dict[str, Callable[[Config], list[Result]]] = {
    "handler": handler_in_process,
    "handler-uvicorn": handler_uvicorn,
    "middleware": middleware,
    "signals": signals,
    "wrappers": wrappers,
    "blocking": blocking,
    "command": command,
    "tasks": bench_tasks.tasks,
}

# The worker-pool suites live in their own module (which uses the servers above).
from benchmarks.workers import SUITES as _WORKER_SUITES  # noqa: E402

SUITES.update(_WORKER_SUITES)

# Django's own middleware (startproject's MIDDLEWARE) under both handlers.
from benchmarks.django_middleware import SUITES as _DJANGO_MIDDLEWARE_SUITES  # noqa: E402

SUITES.update(_DJANGO_MIDDLEWARE_SUITES)
