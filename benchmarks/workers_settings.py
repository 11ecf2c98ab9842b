"""Settings of the worker-pool benchmarks: ``benchmarks.settings`` on the run's database.

``BENCH_DATABASE_URL`` (``sqlite:///path`` or ``postgres://user@host:port/name``),
``BENCH_CONN_MAX_AGE`` (seconds, default 0), ``BENCH_SYNC_WORKERS`` (a number or ``none``) and
``BENCH_APP_NAME`` (PostgreSQL's ``application_name``, to count each server's connections).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from benchmarks.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.workers_urls"


def _database(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or "postgres"),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 5432),
            "OPTIONS": {"application_name": os.environ.get("BENCH_APP_NAME", "bench")},
        }
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.path}


DATABASES = {"default": _database(os.environ["BENCH_DATABASE_URL"])}
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "0"))
_workers = os.environ.get("BENCH_SYNC_WORKERS", "8")
ASYNC_TOOLKIT_SYNC_WORKERS = None if _workers == "none" else int(_workers)
