"""Settings of the example orders service.

Everything a run needs to change comes from the environment, so the demo and the tests configure
the same project without editing files:

``DATABASE_URL``
    ``postgres://user:password@host:port/name`` to use PostgreSQL (psycopg must be installed),
    ``sqlite:///absolute/path.sqlite3`` for a SQLite file.
    Unset: SQLite in ``example_project/.run/orders.sqlite3``.
``ORDERS_UPSTREAM_URL``
    Base URL of the upstream order API (default ``http://127.0.0.1:8001``).
``ORDERS_STACK``
    ``toolkit`` (default): the toolkit's middleware, served by ``django_async_toolkit.asgi``.
    ``stock``: Django's own ASGI handler with a sync-only middleware stack, the baseline that
    ``scripts/demo`` measures the toolkit against.
``ORDERS_MAX_CONCURRENT``
    ``ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS`` (default 32).
``ORDERS_DEBUG``
    ``1`` turns ``DEBUG`` on.

The webhooks are Django Tasks in the database (django-tasks-db): run ``manage.py db_worker`` to
deliver them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import django
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = BASE_DIR / ".run"

SECRET_KEY = os.environ.get("ORDERS_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("ORDERS_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "orders_site.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    *(["django_tasks"] if django.VERSION < (6, 0) else []),  # the backport, on 4.2/5.2
    "django_tasks_db",
    "django_async_toolkit",
    "orders",
]

# The webhook receiver runs on Django Tasks: each saved order enqueues a task in the database (in
# the save's transaction), and `manage.py db_worker` delivers it.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

TEMPLATES: list[dict[str, Any]] = []

# orders_site.asgi picks the handler from ORDERS_STACK too.
ASGI_APPLICATION = "orders_site.asgi.application"

ORDERS_STACK = os.environ.get("ORDERS_STACK", "toolkit")
if ORDERS_STACK == "toolkit":
    # Every layer is async-capable and none of them costs a thread hop under ASGI.
    MIDDLEWARE = [
        "django_async_toolkit.middleware.BlockingDetectorMiddleware",
        "django_async_toolkit.middleware.ConcurrencyLimitMiddleware",
        "django_async_toolkit.middleware.TimeoutMiddleware",
        "orders_site.middleware.RequestIdMiddleware",
    ]
elif ORDERS_STACK == "stock":
    # What many projects run: middleware written for WSGI, which Django adapts with a thread hop
    # each way on every request under ASGI.
    MIDDLEWARE = [
        "orders_site.middleware.sync_request_id_middleware",
        "orders_site.middleware.sync_timing_middleware",
    ]
else:
    raise ImproperlyConfigured(
        f"ORDERS_STACK is {ORDERS_STACK!r}; set it to 'toolkit' (the default) or 'stock'."
    )

# The toolkit's settings (see docs/settings.rst).
ASYNC_TOOLKIT_REQUEST_TIMEOUT = 2.0
try:
    ASYNC_TOOLKIT_MAX_CONCURRENT_REQUESTS = int(os.environ.get("ORDERS_MAX_CONCURRENT", "32"))
except ValueError:
    raise ImproperlyConfigured(
        f"ORDERS_MAX_CONCURRENT is {os.environ['ORDERS_MAX_CONCURRENT']!r}; set it to an integer "
        "of at least 1."
    ) from None
ASYNC_TOOLKIT_CONCURRENCY_WAIT = 0.05
ASYNC_TOOLKIT_RETRY_AFTER = 1
ASYNC_TOOLKIT_BLOCKING_DETECTOR = ORDERS_STACK == "toolkit"
ASYNC_TOOLKIT_BLOCKING_THRESHOLD = 0.1
ASYNC_TOOLKIT_SERVER_TIMING = True
ASYNC_TOOLKIT_DRAIN_TIMEOUT = 10.0

# The upstream order API and how long we wait for it (httpx timeouts, in seconds).
ORDERS_UPSTREAM_URL = os.environ.get("ORDERS_UPSTREAM_URL", "http://127.0.0.1:8001").rstrip("/")
ORDERS_UPSTREAM_TIMEOUT = 5.0
ORDERS_UPSTREAM_CONNECT_TIMEOUT = 2.0
ORDERS_FETCH_CONCURRENCY = 4


def database_from_url(url: str) -> dict[str, Any]:
    """The ``DATABASES["default"]`` entry for a ``postgres://`` or ``sqlite:///path`` URL."""
    parts = urlsplit(url)
    if parts.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "orders",
            "USER": unquote(parts.username or "postgres"),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 5432),
            # Its own test database, apart from the toolkit's tests on the same server.
            "TEST": {"NAME": f"test_{unquote(parts.path.lstrip('/')) or 'orders'}_example"},
        }
    if parts.scheme == "sqlite" and parts.path:
        return sqlite_database(Path(unquote(parts.path)))
    raise ImproperlyConfigured(
        f"DATABASE_URL is {url!r}; use postgres://user@host:port/name or sqlite:///path/to/file."
    )


def sqlite_database(path: Path) -> dict[str, Any]:
    """A SQLite file that concurrent requests can share (they wait for the write lock)."""
    options: dict[str, Any] = {"timeout": 20}
    if django.VERSION >= (5, 1):
        # BEGIN IMMEDIATE: a transaction takes the write lock up front, waiting for it, instead
        # of failing with "database is locked" when two transactions upgrade at the same time.
        options["transaction_mode"] = "IMMEDIATE"
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": options,
        # The tests serve the project from threads, so the test database must be a file too.
        "TEST": {"NAME": str(Path(tempfile.gettempdir()) / f"orders-test-{os.getpid()}.sqlite3")},
    }


if "DATABASE_URL" in os.environ:
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
else:
    RUN_DIR.mkdir(exist_ok=True)
    DATABASES = {"default": sqlite_database(RUN_DIR / "orders.sqlite3")}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        # Keeps the blocking detector's events for GET /demo/blocking-events/.
        "recent_blocking": {"class": "orders.monitoring.RecentBlockingEvents"},
    },
    "loggers": {
        "django_async_toolkit": {"handlers": ["console"], "level": "INFO"},
        "django_async_toolkit.blocking": {"handlers": ["recent_blocking"], "level": "WARNING"},
        "orders": {"handlers": ["console"], "level": "INFO"},
    },
}
