"""Settings of the benchmark project. ``BENCH_*`` environment variables pick the configuration."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

SECRET_KEY = "django-async-toolkit-benchmarks"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "benchmarks.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    # startproject's apps, for its MIDDLEWARE (benchmarks/django_middleware.py).
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_async_toolkit",
    "benchmarks",
]
# The "tasks" suite (benchmarks/tasks.py): django-tasks-db, when it and Django Tasks (built into
# Django 6.0+, else the django-tasks backport) are installed.
BUILT_IN_TASKS = importlib.util.find_spec("django.tasks") is not None
if importlib.util.find_spec("django_tasks_db") is not None and (
    BUILT_IN_TASKS or importlib.util.find_spec("django_tasks") is not None
):
    INSTALLED_APPS += [] if BUILT_IN_TASKS else ["django_tasks"]
    INSTALLED_APPS.append("django_tasks_db")
    TASKS = {"bench": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
MIDDLEWARE: list[str] = [m for m in os.environ.get("BENCH_MIDDLEWARE", "").split(",") if m]
SESSION_ENGINE = os.environ.get("BENCH_SESSION_ENGINE", "django.contrib.sessions.backends.db")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "BENCH_DB", str(Path(__file__).resolve().parent / "results" / "bench.sqlite3")
        ),
    }
}
LOGGING_CONFIG = None
ASYNC_TOOLKIT_BLOCKING_DETECTOR = os.environ.get("BENCH_BLOCKING_DETECTOR") == "1"
