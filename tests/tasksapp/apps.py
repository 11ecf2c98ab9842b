from __future__ import annotations

import importlib.util

from django.apps import AppConfig


def tasks_installed() -> bool:
    """Whether Django Tasks is importable: built in (Django 6.0+) or the backport."""
    return any(importlib.util.find_spec(name) for name in ("django.tasks", "django_tasks"))


class TasksAppConfig(AppConfig):
    name = "tests.tasksapp"
    label = "tasksapp"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        # The receivers connect here, as a project's do: a worker process imports them at
        # start-up, which is what lets it run their tasks.
        if tasks_installed():
            from tests.tasksapp import receivers  # noqa: F401
