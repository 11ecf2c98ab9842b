"""Settings of the benchmark project. ``BENCH_*`` environment variables pick the configuration."""

from __future__ import annotations

import os
from pathlib import Path

SECRET_KEY = "django-async-toolkit-benchmarks"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "benchmarks.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["django_async_toolkit", "benchmarks"]
MIDDLEWARE: list[str] = [m for m in os.environ.get("BENCH_MIDDLEWARE", "").split(",") if m]
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
