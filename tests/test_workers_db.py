"""Real threads and real connections: the pool under load, in a child process of its own.

Each test runs ``tests/workers_child.py`` against a database of its own (an SQLite file, and on
the PostgreSQL lane a fresh PostgreSQL database, dropped afterwards), so that what it counts
(thread starts, ``connection_created``, PostgreSQL's ``pg_stat_activity``) is that process's
alone, and pytest-django's database guard is not involved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parent.parent
POOL = 4
WORKER = "async-toolkit-worker-"

on_postgres = pytest.mark.postgres_only


def run_child(database_url: str, *args: str, **env: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.workers_child", *args],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.workers_settings",
            "WORKERS_DATABASE_URL": database_url,
            "WORKERS_POOL": str(POOL),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-10000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'workers.sqlite3'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the lane's server, dropped afterwards."""
    import psycopg

    db = settings.DATABASES["default"]
    name = f"dat_workers_{uuid.uuid4().hex[:12]}"
    params = {
        "host": db["HOST"],
        "port": db["PORT"],
        "user": db["USER"],
        "password": db["PASSWORD"],
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        yield f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{name}"
    finally:
        with psycopg.connect(**params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def worker_threads(report: dict[str, Any]) -> list[str]:
    return [name for name in report["threads"] if name.startswith(WORKER)]


@pytest.mark.parametrize("path", ["/sync-orm/", "/async-orm/"])
def test_persistent_connections_one_per_worker_on_sqlite(sqlite_url: str, path: str) -> None:
    report = run_child(sqlite_url, "load", path, "300", "24", WORKERS_CONN_MAX_AGE="600")
    assert report["statuses"] == {"200": 300}
    # Every thread the process started is a pool worker, at most POOL of them ...
    assert report["threads"] == worker_threads(report)
    assert 1 <= len(report["threads"]) <= POOL
    # ... each opened one connection and kept it for every request it served ...
    assert 1 <= report["created"] <= POOL
    assert report["stats"]["leases"] == 300
    assert report["stats"]["peak"] <= POOL
    # ... and shutting the pool down closed them, each on the worker that owned it.
    assert len(report["closed_on"]) == report["created"]
    assert all(name.startswith(WORKER) for name in report["closed_on"])
    assert report["workers_alive_after_shutdown"] == 0


def test_without_persistent_connections_each_request_closes_its_own(sqlite_url: str) -> None:
    report = run_child(sqlite_url, "load", "/sync-orm/", "100", "10")
    assert report["statuses"] == {"200": 100}
    assert len(report["threads"]) <= POOL
    assert report["created"] == 100
    assert len(report["closed_on"]) == 100  # by close_old_connections at each request's end
    assert all(name.startswith(WORKER) for name in report["closed_on"])


def test_db_free_requests_never_lease(sqlite_url: str) -> None:
    report = run_child(sqlite_url, "load", "/free/", "200", "20")
    assert report["statuses"] == {"200": 200}
    assert report["threads"] == []
    assert report["stats"] is None  # not even a pool was made


def test_none_is_djangos_thread_per_request(sqlite_url: str) -> None:
    report = run_child(sqlite_url, "load", "/sync-orm/", "50", "5", WORKERS_POOL="none")
    assert report["statuses"] == {"200": 50}
    assert worker_threads(report) == []
    # asgiref's thread per request (plus the thread that joins it), as with Django's handler.
    assert len(report["threads"]) >= 50
    assert report["created"] == 50


def test_background_burst_is_bounded_and_loses_nothing(sqlite_url: str) -> None:
    report = run_child(sqlite_url, "background", "2000", WORKERS_CONN_MAX_AGE="600")
    assert report["calls"] == 2000
    assert set(report["receiver_threads"]) <= set(worker_threads(report))
    assert len(worker_threads(report)) <= POOL
    assert report["created"] <= POOL
    assert report["stats"]["leases"] == 2000


@pytest.mark.parametrize("stuck", [False, True])
def test_a_script_that_never_stops_the_pool_closes_the_connections_at_exit(
    sqlite_url: str, stuck: bool
) -> None:
    args = ["exit", "stuck"] if stuck else ["exit"]
    report = run_child(sqlite_url, *args, WORKERS_CONN_MAX_AGE="600")
    assert report["created"] == 1
    # Kept by the worker after its lease (CONN_MAX_AGE=600), and closed on that worker at exit.
    assert len(report["closed_on"]) == 1
    assert report["closed_on"][0].startswith(WORKER)
    # A worker still busy at exit is left to die with the process; the idle one has stopped.
    assert report["workers_alive_at_exit"] == (1 if stuck else 0)
    assert report["stats_at_exit"]["leases"] == (3 if stuck else 1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_a_forked_child_starts_a_pool_of_its_own(sqlite_url: str) -> None:
    report = run_child(sqlite_url, "fork")
    assert report["parent_worker"].startswith(WORKER)
    assert report["child_status"] == 0
    assert report["child_worker"].startswith(WORKER)  # not stuck on the parent's dead workers


@on_postgres
@pytest.mark.parametrize("path", ["/sync-orm/", "/async-orm/"])
def test_postgres_connections_stay_within_the_pool_under_uvicorn(
    postgres_url: str, path: str
) -> None:
    report = run_child(postgres_url, "serve", path, "600", "40", WORKERS_CONN_MAX_AGE="600")
    assert report["statuses"] == {"200": 600}
    assert 1 <= report["server_connections_while_serving"] <= POOL
    assert report["created"] <= POOL
    assert report["stats_while_serving"]["peak"] <= POOL
    # The lifespan shutdown closed them on their workers.
    assert report["server_connections_after_shutdown"] == 0
    assert all(name.startswith(WORKER) for name in report["closed_on"])


@on_postgres
def test_postgres_health_checks_with_persistent_connections(postgres_url: str) -> None:
    report = run_child(
        postgres_url,
        "serve",
        "/sync-orm/",
        "200",
        "20",
        WORKERS_CONN_MAX_AGE="600",
        WORKERS_HEALTH_CHECKS="1",
    )
    assert report["statuses"] == {"200": 200}
    assert report["created"] <= POOL
    assert report["server_connections_while_serving"] <= POOL


@on_postgres
def test_djangos_own_connection_pool_keeps_working(postgres_url: str) -> None:
    import django

    if django.VERSION < (5, 1):
        pytest.skip("Django's PostgreSQL pool option is 5.1+")
    pytest.importorskip("psycopg_pool")
    report = run_child(postgres_url, "serve", "/async-orm/", "300", "30", WORKERS_DB_POOL="1")
    assert report["statuses"] == {"200": 300}
    # Django's pool (psycopg_pool, 4 connections by default) holds the connections; the workers
    # only borrow one each per request.
    assert report["server_connections_while_serving"] <= max(POOL, 4)
    assert report["stats_while_serving"]["peak"] <= POOL
