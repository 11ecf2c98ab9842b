"""The driver behind ``scripts/demo``: run the orders service and walk through the toolkit.

``scripts/demo`` makes ``.venv-demo/`` and runs this file with it. By hand::

    python example_project/demo.py            # the walkthrough, a load comparison, then stop
    python example_project/demo.py --serve    # start everything and keep it running for you

It migrates a fresh database, starts the upstream order API and the Django project with uvicorn
on free ports of 127.0.0.1, shows each feature with one line of output, runs a short bounded load
against the project as it ships and against the same app on Django's stock handler with sync-only
middleware, prints a table, and stops every process it started, also on an error or Ctrl-C.

The database is SQLite in ``example_project/.run/`` (made anew each run) unless ``DATABASE_URL``
names a PostgreSQL database; that one is migrated back to zero and up again.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django
import httpx
from loadgen import LoadResult, Plan, run_load

HERE = Path(__file__).resolve().parent
#: Where the database and the servers' logs go (made anew each run).
RUN_DIR = Path(os.environ.get("DEMO_RUN_DIR", HERE / ".run")).resolve()
MANAGE = HERE / "manage.py"
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
COMMAND_TIMEOUT = 120.0
UPSTREAM_ORDERS = 600
UPSTREAM_LATENCY = 0.05
PR_SET_PDEATHSIG = 1  # prctl(2), Linux
# Looked up here, in the parent: between fork and exec the child should only make the call.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


class DemoError(Exception):
    """A step did not do what it should; the message says which and why."""


def say(step: str, text: str) -> None:
    print(f"  {step:<26} {text}", flush=True)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stop_with_parent() -> None:
    """In the child, before it runs: on Linux, get SIGTERM when the demo dies, however it dies.

    The demo stops its servers itself, also on errors, Ctrl-C and SIGTERM; this covers SIGKILL.
    """
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Server:
    """A server process we started, its URL and the file its output goes to."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("      " + line for line in text.splitlines()[-lines:])


class Processes:
    """Starts servers and commands and stops every process it started (use it with ``with``)."""

    def __init__(self, env: dict[str, str], run_dir: Path = RUN_DIR) -> None:
        self.env = env
        self.run_dir = run_dir
        self.servers: list[Server] = []
        self.worker: Server | None = None

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def start_server(
        self,
        name: str,
        app: str,
        *,
        env: dict[str, str] | None = None,
        lifespan: str = "on",
        health: str = "/health",
    ) -> Server:
        """Serve ``app`` (``module:attribute``) with uvicorn on a free port, once it answers."""
        for attempt in range(3):
            port = free_port()
            log = self.run_dir / f"{name.replace(' ', '-')}.log"
            argv = [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--host",
                HOST,
                "--port",
                str(port),
                "--lifespan",
                lifespan,
                "--no-access-log",
                "--log-level",
                "warning",
            ]
            with log.open("wb") as output:
                process = subprocess.Popen(
                    argv,
                    cwd=HERE,
                    env={**self.env, **(env or {})},
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    # Its own session: a Ctrl-C in the terminal reaches us only, and we stop it.
                    start_new_session=True,
                    preexec_fn=stop_with_parent,
                )
            server = Server(name, f"http://{HOST}:{port}", process, log)
            self.servers.append(server)
            if self._wait_ready(server, health):
                return server
            self.stop(server)
            if b"address already in use" not in log.read_bytes().lower() or attempt == 2:
                raise DemoError(f"{name} did not start; its output:\n{server.log_tail()}")
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _wait_ready(server: Server, health: str) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            try:
                if httpx.get(server.url + health, timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return False

    def stop(self, server: Server) -> int:
        """Stop a server (SIGTERM: a graceful shutdown; SIGKILL if it hangs); its exit status."""
        if server in self.servers:
            self.servers.remove(server)
        process = server.process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def start_worker(self) -> Server:
        """``manage.py db_worker``: the Django Tasks worker that delivers the webhooks."""
        log = self.run_dir / "db-worker.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, str(MANAGE), "db_worker", "--interval", "0.1"],
                cwd=HERE,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=stop_with_parent,
            )
        self.worker = Server("db_worker", "", process, log)
        self.servers.append(self.worker)
        return self.worker

    def stop_all(self) -> None:
        for server in reversed(list(self.servers)):
            self.stop(server)

    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run ``manage.py <args>``; its output, or DemoError with the output when it fails."""
        try:
            done = subprocess.run(
                [sys.executable, str(MANAGE), *args],
                cwd=HERE,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DemoError(
                f"manage.py {' '.join(args)} did not finish in {exc.timeout} s"
            ) from exc
        if done.returncode != 0:
            raise DemoError(
                f"manage.py {' '.join(args)} exited with {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done.stdout


def database_env() -> tuple[dict[str, str], str, bool]:
    """The ``DATABASE_URL`` for the run, a description of it, and whether it is PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        where = url.split("@")[-1]
        return {"DATABASE_URL": url}, f"PostgreSQL ({where}), migrated from zero", True
    path = RUN_DIR / "orders.sqlite3"
    shown = path.relative_to(HERE.parent) if path.is_relative_to(HERE.parent) else path
    return {"DATABASE_URL": f"sqlite:///{path}"}, f"SQLite, fresh: {shown}", False


def reset_run_dir() -> None:
    """Make the run directory, without the database and logs of an earlier run."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    for pattern in ("orders.sqlite3*", "*.log"):
        for path in RUN_DIR.glob(pattern):
            path.unlink()


def get_json(url: str, **kwargs: Any) -> Any:
    response = httpx.get(url, timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


def post_json(url: str, **kwargs: Any) -> Any:
    response = httpx.post(url, timeout=30, **kwargs)
    response.raise_for_status()
    return response.json()


def wait_for_webhooks(upstream: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The upstream's webhook deliveries once there are ``count`` of them (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        deliveries: list[dict[str, Any]] = get_json(upstream + "/webhooks")["results"]
        if len(deliveries) >= count or time.monotonic() >= deadline:
            return deliveries
        time.sleep(0.02)


def blocking_count(site: str) -> int | None:
    data = get_json(site + "/demo/blocking-events/")
    return int(data["count"]) if data["running"] else None


# --- the walkthrough ------------------------------------------------------------------------


def setup(procs: Processes, db_text: str, postgres: bool) -> tuple[Server, Server]:
    say("database", db_text)
    if postgres:
        procs.manage("migrate", "orders", "zero", "--no-input")
    out = procs.manage("migrate", "--no-input")
    applied = [line.split()[1].rstrip(".") for line in out.splitlines() if "Applying" in line]
    ours = [name for name in applied if name.startswith("orders.")]
    say("migrate", f"{len(applied)} migrations applied, ours: {', '.join(ours)}")
    hops = {
        stack: json.loads(procs.manage("async_audit", "--json", env={"ORDERS_STACK": stack}))
        for stack in ("toolkit", "stock")
    }
    say(
        "async_audit",
        f"thread hops per request under ASGI, at most: {hops['toolkit']['max_hops']['asgi']} "
        f"with the toolkit's middleware, {hops['stock']['max_hops']['asgi']} with the sync-only "
        "stack",
    )
    upstream = procs.start_server(
        "upstream order API",
        "upstream.app:app",
        env={"UPSTREAM_ORDERS": str(UPSTREAM_ORDERS), "UPSTREAM_LATENCY": str(UPSTREAM_LATENCY)},
    )
    say(
        "upstream order API",
        f"{upstream.url} ({UPSTREAM_ORDERS} orders, {UPSTREAM_LATENCY * 1000:.0f} ms per call)",
    )
    procs.env["ORDERS_UPSTREAM_URL"] = upstream.url
    worker = procs.start_worker()
    say(
        "db_worker",
        f"manage.py db_worker (pid {worker.process.pid}): the Django Tasks worker that delivers "
        "the webhooks (django-tasks-db)",
    )
    site = start_site(procs, "toolkit")
    index = get_json(site.url + "/")
    say(
        "orders service",
        f"{site.url} (uvicorn, django_async_toolkit.asgi, lifespan on; stack: {index['stack']})",
    )
    labels = ", ".join(status["label"] for status in index["statuses"])
    say(
        "RunPythonAsync migration", f"0002_seed_statuses seeded {len(index['statuses'])}: {labels}"
    )
    return upstream, site


def start_site(procs: Processes, stack: str) -> Server:
    """The orders service with ``ORDERS_STACK=stack``: ``toolkit`` (lifespan on) or ``stock``."""
    return procs.start_server(
        "orders service" if stack == "toolkit" else f"orders service ({stack})",
        "orders_site.asgi:application",
        env={"ORDERS_STACK": stack},
        # Django's own handler does not speak the lifespan protocol.
        lifespan="on" if stack == "toolkit" else "off",
        health="/health/",
    )


def walkthrough(procs: Processes, upstream: Server, site: Server) -> None:
    url = site.url
    data = post_json(url + "/orders/fetch/", params={"pages": 3})
    say(
        "async view + httpx",
        f"POST /orders/fetch/?pages=3: fetched {data['fetched']} orders from {data['pages']} "
        f"pages in {data['seconds'] * 1000:.0f} ms, {data['created']} new (abulk_create)",
    )

    out = procs.manage("sync_orders", "--pages", "30", "--concurrency", "8").strip()
    say("AsyncBaseCommand", f"sync_orders --pages 30 --concurrency 8: {out}")

    response = httpx.get(url + "/orders/", params={"status": "paid", "limit": 3}, timeout=10)
    response.raise_for_status()
    listing = response.json()
    newest = listing["results"][0]
    say(
        "async list view",
        f"GET /orders/?status=paid: {listing['count']} paid, newest {newest['id']} "
        f"({newest['customer']}, {newest['total']}); "
        f"X-Request-ID {response.headers['x-request-id']}",
    )

    before = len(get_json(upstream.url + "/webhooks")["results"])
    started = time.perf_counter()
    shipped = post_json(url + f"/orders/{newest['id']}/ship/")
    answered = time.perf_counter() - started
    deliveries = wait_for_webhooks(upstream.url, before + 1)
    mine = [d for d in deliveries[before:] if d["body"].get("order") == shipped["id"]]
    if not mine:
        worker_log = procs.worker.log_tail() if procs.worker else "(no worker)"
        raise DemoError(
            f"no webhook reached the upstream for {shipped['id']} within 15 s; db_worker's "
            f"output:\n{worker_log}"
        )
    say(
        "background_receiver",
        f"POST /orders/{shipped['id']}/ship/ answered in {answered * 1000:.0f} ms; webhook "
        f"{mine[0]['event']} enqueued as a task with the commit and delivered by db_worker, "
        "without the request waiting for it",
    )

    started = time.perf_counter()
    response = httpx.get(url + "/demo/slow/", params={"seconds": 5}, timeout=10)
    took = time.perf_counter() - started
    if response.status_code != 504:
        raise DemoError(f"GET /demo/slow/?seconds=5 answered {response.status_code}, not 504")
    say("TimeoutMiddleware", f"a 5 s request was cancelled and answered 504 after {took:.2f} s")

    limit = int(get_json(url + "/")["max_concurrent_requests"])
    statuses, retry_after = asyncio.run(burst(url + "/demo/slow/?seconds=1", limit + 8))
    say(
        "ConcurrencyLimitMiddleware",
        f"{limit + 8} requests at once, limit {limit}: {statuses.get(200, 0)} served, "
        f"{statuses.get(503, 0)} shed with 503 (Retry-After: {retry_after})",
    )

    before_events = blocking_count(url) or 0
    response = httpx.get(url + "/demo/block/", params={"ms": 300}, timeout=10)
    response.raise_for_status()
    events = get_json(url + "/demo/blocking-events/")
    if events["count"] <= before_events:
        raise DemoError("the blocking detector saw no event for GET /demo/block/?ms=300")
    event = events["events"][-1]
    say(
        "BlockingDetector",
        f"GET /demo/block/ stalled the loop {event['duration_ms']:.0f} ms at {event['where']}",
    )
    timing = httpx.get(url + "/health/", timeout=10).headers.get("server-timing", "(none)")
    say("Server-Timing", f"GET /health/: {timing}")


async def burst(url: str, count: int) -> tuple[dict[int, int], str]:
    """Send ``count`` requests at once; how many got each status, and a 503's Retry-After."""
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        responses = await asyncio.gather(*(client.get(url) for _ in range(count)))
    statuses: dict[int, int] = {}
    for response in responses:
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    shed = [r for r in responses if r.status_code == 503]
    return statuses, shed[0].headers.get("retry-after", "?") if shed else "-"


# --- the load comparison --------------------------------------------------------------------


@dataclass
class Side:
    """One column of the summary table."""

    title: str
    result: LoadResult
    webhooks_sent: int
    webhooks_delivered: int
    blocking_events: int | None


@dataclass(frozen=True)
class LoadSpec:
    """How much load each side gets: at most ``requests``, at most ``seconds``."""

    requests: int
    concurrency: int
    seconds: float

    @property
    def ships(self) -> int:
        return self.requests // SHIP_EVERY + 1


#: One request in this many ships an order (a write, then a webhook).
SHIP_EVERY = 40


def make_plan(ship: Sequence[str]) -> Plan:
    """Every 40th request ships an order (a write and a webhook), the others read:
    half list the newest orders (a query), half ask for /health/ (no database)."""
    pending: Iterator[str] = iter(ship)

    def plan(number: int) -> tuple[str, str]:
        if number % SHIP_EVERY == 0 and (order := next(pending, None)) is not None:
            return "POST", f"/orders/{order}/ship/"
        if number % 2:
            return "GET", "/health/"
        return "GET", "/orders/?limit=20"

    return plan


def measure(title: str, site: str, upstream: str, ship: Sequence[str], spec: LoadSpec) -> Side:
    before_hooks = len(get_json(upstream + "/webhooks")["results"])
    before_blocks = blocking_count(site)
    result = asyncio.run(
        run_load(
            site,
            make_plan(ship),
            requests=spec.requests,
            concurrency=spec.concurrency,
            deadline=spec.seconds,
        )
    )
    sent = result.by_method["POST", 200]
    delivered = len(wait_for_webhooks(upstream, before_hooks + sent)) - before_hooks
    after_blocks = blocking_count(site)
    events = (
        None if before_blocks is None or after_blocks is None else after_blocks - before_blocks
    )
    say(
        f"load: {title.split(' ')[0]}",
        f"{result.sent} requests, {spec.concurrency} at a time, in {result.seconds:.1f} s",
    )
    return Side(title, result, sent, delivered, events)


def shippable(site: str, count: int) -> list[str]:
    """Up to ``count`` orders that can be shipped (paid or new)."""
    ids: list[str] = []
    for status in ("paid", "new"):
        listing = get_json(site + "/orders/", params={"status": status, "limit": 100})
        ids.extend(order["id"] for order in listing["results"])
    return ids[:count]


def compare(procs: Processes, upstream: Server, site: Server, spec: LoadSpec) -> list[Side]:
    """The same load against the project as it ships, then against the stock configuration."""
    ids = shippable(site.url, 2 * spec.ships)
    half = len(ids) // 2
    toolkit = measure(
        "toolkit handler + toolkit middleware", site.url, upstream.url, ids[:half], spec
    )
    stock_site = start_site(procs, "stock")
    try:
        stock = measure(
            "Django handler + sync-only middleware", stock_site.url, upstream.url, ids[half:], spec
        )
    finally:
        procs.stop(stock_site)
    return [toolkit, stock]


def table(sides: list[Side]) -> str:
    rows: list[tuple[str, Callable[[Side], str]]] = [
        ("requests (errors)", lambda s: f"{s.result.sent} ({s.result.errors})"),
        ("requests/s", lambda s: f"{s.result.requests_per_second:,.0f}"),
        ("p50 latency", lambda s: f"{s.result.percentile(0.50) * 1000:.1f} ms"),
        ("p99 latency", lambda s: f"{s.result.percentile(0.99) * 1000:.1f} ms"),
        ("webhooks delivered", lambda s: f"{s.webhooks_delivered} of {s.webhooks_sent}"),
        (
            "blocking events seen",
            lambda s: "n/a (no detector)" if s.blocking_events is None else str(s.blocking_events),
        ),
    ]
    width = max(len(side.title) for side in sides) + 2
    lines = [" " * 22 + "".join(side.title.ljust(width) for side in sides)]
    for label, cell in rows:
        lines.append(label.ljust(22) + "".join(cell(side).ljust(width) for side in sides))
    return "\n".join("  " + line.rstrip() for line in lines)


# --- entry point ----------------------------------------------------------------------------


def serve(procs: Processes, upstream: Server, site: Server) -> None:
    data = post_json(site.url + "/orders/fetch/", params={"pages": 5})
    say("fetched", f"{data['fetched']} orders, so there is something to look at")
    sample = get_json(site.url + "/orders/", params={"limit": 1})["results"][0]["id"]
    env = " ".join(f"{name}={procs.env[name]}" for name in ("DATABASE_URL", "ORDERS_UPSTREAM_URL"))
    print(
        f"""
Serving; press Ctrl-C to stop.
  orders service   {site.url}/   (lists its endpoints)
  upstream API     {upstream.url}/orders?page=1   and   {upstream.url}/webhooks

Try:
  curl -X POST '{site.url}/orders/fetch/?pages=10'
  curl '{site.url}/orders/?status=paid&limit=5'
  curl -X POST {site.url}/orders/{sample}/ship/ && curl {upstream.url}/webhooks
  curl -i '{site.url}/demo/slow/?seconds=5'
  curl '{site.url}/demo/block/?ms=300' && curl {site.url}/demo/blocking-events/
  cd example_project && {env} {sys.executable} manage.py sync_orders --pages 30 --concurrency 8
""",
        flush=True,
    )
    try:
        while all(server.process.poll() is None for server in procs.servers):
            time.sleep(0.5)
    except KeyboardInterrupt:
        return
    raise DemoError(f"a server exited on its own; see the logs in {RUN_DIR}")


def stop_servers(procs: Processes, upstream: Server, site: Server) -> None:
    stopping = [(site, "lifespan shutdown"), (upstream, "")]
    if procs.worker is not None:
        # Once the site is down no webhook is enqueued; the worker delivers the last ones first.
        stopping.insert(1, (procs.worker, "webhooks delivered"))
    for server, what in stopping:
        if server is procs.worker:
            wait_for_empty_queue(procs)
        status = procs.stop(server)
        # uvicorn shuts down gracefully on SIGTERM, then ends itself with that signal again.
        if status not in (0, -signal.SIGTERM):
            raise DemoError(f"{server.name} exited with {status}:\n{server.log_tail()}")
        say("stopped", f"{server.name}{f' ({what})' if what else ''}")


def wait_for_empty_queue(procs: Processes, timeout: float = 30.0) -> None:
    """Wait until db_worker has run every task in the queue (at most ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    script = (
        "from django_tasks_db.models import DBTaskResult; "
        "print(DBTaskResult.objects.filter(status__in=['READY', 'RUNNING']).count())"
    )
    # The last line: Django 5.2+'s shell may first say what it imported automatically.
    while int(procs.manage("shell", "-c", script).strip().splitlines()[-1]):
        if time.monotonic() > deadline:
            raise DemoError(f"db_worker left tasks in the queue after {timeout:.0f} s")
        time.sleep(0.2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", action="store_true", help="keep the servers running")
    parser.add_argument(
        "--requests", type=int, default=2000, help="requests per side of the load (at most)"
    )
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="seconds per side of the load (at most)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="requests in flight in the load"
    )
    args = parser.parse_args(argv)
    if args.requests < SHIP_EVERY or args.concurrency < 1 or not 0 < args.seconds <= 60:
        parser.error(
            f"--requests must be at least {SHIP_EVERY}, --concurrency at least 1 "
            "and --seconds between 0 and 60"
        )
    spec = LoadSpec(args.requests, args.concurrency, args.seconds)

    # Ctrl-C raises KeyboardInterrupt even when the demo was started with SIGINT ignored (as a
    # background job), and SIGTERM takes the same path: every server is stopped on the way out.
    terminated: list[int] = []

    def terminate(signum: int, frame: object) -> None:
        terminated.append(signum)
        os.kill(os.getpid(), signal.SIGINT)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate)
    print(
        f"django-async-toolkit example: an orders service "
        f"(Django {django.get_version()}, Python {sys.version.split()[0]})\n",
        flush=True,
    )
    reset_run_dir()
    db_env, db_text, postgres = database_env()
    env = {
        **os.environ,
        **db_env,
        "DJANGO_SETTINGS_MODULE": "orders_site.settings",
        "PYTHONUNBUFFERED": "1",
        "ORDERS_STACK": "toolkit",
    }
    started = time.perf_counter()
    try:
        with Processes(env) as procs:
            upstream, site = setup(procs, db_text, postgres)
            if args.serve:
                serve(procs, upstream, site)
                stop_servers(procs, upstream, site)
                return 143 if terminated else 0
            walkthrough(procs, upstream, site)
            sides = compare(procs, upstream, site, spec)
            stop_servers(procs, upstream, site)
    except (DemoError, httpx.HTTPError) as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        name = "SIGTERM" if terminated else "SIGINT"
        print(f"\ninterrupted ({name}); every server is stopped", file=sys.stderr, flush=True)
        return 143 if terminated else 130
    print(
        f"\nLoad: the same app and database; per side at most {spec.requests} requests or "
        f"{spec.seconds:g} s, {spec.concurrency} in flight.\n",
        flush=True,
    )
    print(table(sides), flush=True)
    ratio = sides[0].result.requests_per_second / max(sides[1].result.requests_per_second, 1e-9)
    print(
        f"\n  The toolkit's stack served {ratio:.1f}x the requests per second of Django's stock "
        f"handler with sync-only middleware.\n  Done in {time.perf_counter() - started:.0f} s; "
        "every process the demo started is stopped. `scripts/demo --serve` keeps them running.",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
