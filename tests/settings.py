"""Settings for the package's own tests.

The database is SQLite (in memory) unless ``DATABASE_URL`` names a PostgreSQL server, e.g.
``postgres://postgres@127.0.0.1:5432/test``: that is the PostgreSQL lane of ``scripts/test``.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

SECRET_KEY = "django-async-toolkit-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    # For tests/test_middleware_builtins*.py (sessions and messages of startproject's stack).
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_async_toolkit",
    "tests",
]

MIDDLEWARE: list[str] = []

TEMPLATES: list[dict[str, Any]] = []


def database_from_url(url: str) -> dict[str, Any]:
    """The ``DATABASES["default"]`` entry for a ``postgres://`` or ``sqlite://`` URL."""
    parts = urlsplit(url)
    if parts.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "test",
            "USER": unquote(parts.username or "postgres"),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 5432),
        }
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.path or ":memory:"}
    raise ValueError(f"DATABASE_URL {url!r}: use postgres://user@host:port/name or sqlite://")


DATABASES = {
    "default": database_from_url(os.environ.get("DATABASE_URL", "sqlite://")),
}

LOGGING_CONFIG = None

# Django Tasks, for tests/test_signals_tasks*.py (see tests/tasks_config.py).
from tests import tasks_config  # noqa: E402

INSTALLED_APPS += tasks_config.installed_apps()
TASKS = tasks_config.tasks()
