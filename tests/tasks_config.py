"""The Django Tasks part of the test settings (tests/settings.py adds it).

Django 6.0+ has ``django.tasks``; 4.2 and 5.2 the ``django-tasks`` backport. django-tasks-db (the
``db`` alias) is used where it is installed (Django 5.2+). Without Django Tasks the fixture app's
receivers are not connected and tests/test_signals_tasks*.py skip.
"""

from __future__ import annotations

import importlib.util
from typing import Any


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


BUILT_IN = _installed("django.tasks")
BACKPORT = not BUILT_IN and _installed("django_tasks")
DATABASE_BACKEND = (BUILT_IN or BACKPORT) and _installed("django_tasks_db")


def installed_apps() -> list[str]:
    apps = ["django_tasks"] if BACKPORT else []
    if DATABASE_BACKEND:
        apps.append("django_tasks_db")
    return [*apps, "tests.tasksapp"]


def tasks() -> dict[str, dict[str, Any]]:
    package = "django.tasks" if BUILT_IN else "django_tasks"
    backends: dict[str, dict[str, Any]] = {
        "default": {"BACKEND": f"{package}.backends.immediate.ImmediateBackend"},
        "dummy": {"BACKEND": f"{package}.backends.dummy.DummyBackend"},
    }
    if DATABASE_BACKEND:
        backends["db"] = {"BACKEND": "django_tasks_db.DatabaseBackend"}
    return backends
