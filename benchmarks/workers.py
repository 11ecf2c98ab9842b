"""The worker-pool suites: ORM views with reused workers and persistent connections.

The toolkit's handler at ``CONN_MAX_AGE = 600`` (what its worker pool makes safe under ASGI)
against Django's handler at ``CONN_MAX_AGE = 0`` (what Django's docs require under ASGI), for an
async view and a sync view that each do one ORM read; in-process and under uvicorn; on SQLite
and, when a PostgreSQL server is reachable, on PostgreSQL. Under uvicorn the sync view also runs
against gunicorn with 8 threads (plain WSGI), the DB-free view against Django's handler (the pool
must cost nothing there), and PostgreSQL's count of the connections each server holds after the
load is reported.

PostgreSQL: ``BENCH_POSTGRES_URL`` (default ``postgres://postgres@127.0.0.1:5432``) names the
server; a database of the run's own is created and dropped. gunicorn is a benchmark-only
dependency (``scripts/bench`` installs it); without it that comparison is left out.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.harness import Result
from benchmarks.suites import (
    ROOT,
    Config,
    _free_port,
    _server_rounds,
    server_process,
    uvicorn_server,
)
from benchmarks.workers_inprocess import STOCK, TOOLKIT

POOL = 8
GUNICORN = "gunicorn, 8 threads (WSGI), CONN_MAX_AGE=600"


def _postgres_server() -> str | None:
    url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    if importlib.util.find_spec("psycopg") is None:
        print("  (psycopg is not installed: PostgreSQL left out)", flush=True)
        return None
    import psycopg

    try:
        psycopg.connect(_admin_dsn(url), connect_timeout=3).close()
    except psycopg.Error as error:
        print(f"  (PostgreSQL at {url} unreachable, left out: {error})", flush=True)
        return None
    return url


def _admin_dsn(server_url: str) -> str:
    parts = urlsplit(server_url)
    return (
        f"host={parts.hostname or '127.0.0.1'} port={parts.port or 5432} "
        f"user={parts.username or 'postgres'} password={parts.password or ''} dbname=postgres"
    )


@contextmanager
def _databases() -> Iterator[dict[str, str]]:
    """``{label: BENCH_DATABASE_URL}``: an SQLite file and, when reachable, a PostgreSQL
    database, each prepared with the benchmark's row; removed afterwards."""
    with ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory())
        urls = {"SQLite": f"sqlite://{Path(directory) / 'workers.sqlite3'}"}
        server = _postgres_server()
        if server is not None:
            import psycopg

            name = f"bench_workers_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(_admin_dsn(server), autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')

            def drop() -> None:
                with psycopg.connect(_admin_dsn(server), autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

            stack.callback(drop)
            urls["PostgreSQL"] = f"{server.rstrip('/')}/{name}"
        for url in urls.values():
            _child(["prepare"], url)
        yield urls


def _env(url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.workers_settings",
        "BENCH_DATABASE_URL": url,
        **extra,
    }


def _child(args: list[str], url: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.workers_inprocess", *args],
        cwd=ROOT,
        env=_env(url),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"benchmarks.workers_inprocess {args} failed:\n{result.stderr}")
    return result.stdout


# ---------------------------------------------------------------------------------------------
# in-process


def workers_in_process(config: Config) -> list[Result]:
    results = []
    with _databases() as urls:
        for db, url in urls.items():
            # Django's handler serves an ORM view at tens of requests/s on PostgreSQL here: a
            # quarter of the other suites' requests keeps a round to seconds.
            requests = max(50, config.requests // 4)
            out = _child(["measure", str(config.rounds), str(requests), "16"], url)
            figures = json.loads(out.strip().splitlines()[-1])
            for view in ("async", "sync"):
                results.append(
                    Result(
                        "workers",
                        f"{view} view, one ORM query, in-process, {db}",
                        "requests/s",
                        figures[view],
                        baseline=STOCK,
                        subject=TOOLKIT,
                        target=">= 2x" if db == "SQLite" else "",
                        extra={"pool": figures["pool"]},
                    )
                )
    return results


# ---------------------------------------------------------------------------------------------
# servers


@contextmanager
def gunicorn_server(url: str) -> Iterator[int]:
    """gunicorn (one process, 8 threads) on 127.0.0.1 serving ``benchmarks.workers_wsgi``."""
    port = _free_port()
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "benchmarks.workers_wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--log-level",
        "warning",
    ]
    environment = _env(url, BENCH_CONN_MAX_AGE="600", BENCH_APP_NAME="bench-gunicorn")
    with server_process("gunicorn", port, args, environment):
        yield port


def _held_connections(server_url: str, application_name: str) -> int:
    import psycopg

    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        ).fetchone()
    return int(row[0]) if row else 0


def workers_uvicorn(config: Config) -> list[Result]:
    results: list[Result] = []
    has_gunicorn = importlib.util.find_spec("gunicorn") is not None
    if not has_gunicorn:
        print("  (gunicorn is not installed: the WSGI comparison is left out)", flush=True)
    with _databases() as urls:
        for db, url in urls.items():
            with ExitStack() as stack:
                stock = stack.enter_context(
                    uvicorn_server(
                        "stock", **_env(url, BENCH_CONN_MAX_AGE="0", BENCH_APP_NAME="bench-stock")
                    )
                )
                toolkit = stack.enter_context(
                    uvicorn_server(
                        "toolkit",
                        **_env(url, BENCH_CONN_MAX_AGE="600", BENCH_APP_NAME="bench-toolkit"),
                    )
                )
                servers = {STOCK: stock, TOOLKIT: toolkit}
                for view, path in [("async", "/orm/"), ("sync", "/sync-orm/")]:
                    extra: dict[str, Any] = {}
                    results.append(
                        Result(
                            "workers",
                            f"{view} view, one ORM query, uvicorn, {db}",
                            "requests/s",
                            _server_rounds(servers, path, config, extra),
                            baseline=STOCK,
                            subject=TOOLKIT,
                            target=">= 4x" if db == "PostgreSQL" else "",
                            extra=extra,
                        )
                    )
                if has_gunicorn:
                    wsgi = stack.enter_context(gunicorn_server(url))
                    extra = {}
                    results.append(
                        Result(
                            "workers",
                            f"sync view, one ORM query, vs gunicorn 8 threads, {db}",
                            "requests/s",
                            _server_rounds(
                                {GUNICORN: wsgi, TOOLKIT: toolkit}, "/sync-orm/", config, extra
                            ),
                            baseline=GUNICORN,
                            subject=TOOLKIT,
                            target=">= 1x",
                            extra=extra,
                        )
                    )
                extra = {}
                results.append(
                    Result(
                        "workers",
                        f"DB-free async view, uvicorn, pool on, {db}",
                        "requests/s",
                        _server_rounds(
                            {"Django handler": stock, "toolkit handler": toolkit},
                            "/",
                            config,
                            extra,
                        ),
                        baseline="Django handler",
                        subject="toolkit handler",
                        target=">= 4x",
                        extra=extra,
                    )
                )
                if db == "PostgreSQL":
                    server = url.rsplit("/", 1)[0]
                    held = {
                        name: _held_connections(server, f"bench-{name}")
                        for name in ("toolkit", "stock", "gunicorn")
                    }
                    results.append(
                        Result(
                            "workers",
                            "PostgreSQL connections held after the load, toolkit vs pool size",
                            "connections",
                            {"toolkit handler": [held["toolkit"]], "pool size": [POOL]},
                            baseline="pool size",
                            subject="toolkit handler",
                            higher_is_better=False,
                            target=">= 1x (held <= pool size)",
                            notes=f"held after the run: {held}",
                            extra={"held": held},
                        )
                    )
    return results


SUITES = {"workers": workers_in_process, "workers-uvicorn": workers_uvicorn}
