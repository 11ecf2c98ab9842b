from __future__ import annotations

from django.apps import AppConfig


class MigrappConfig(AppConfig):
    """The app of ``tests/test_migrations.py``, labelled ``migrapp``."""

    name = "tests.migrapp"
    label = "migrapp"
    default_auto_field = "django.db.models.AutoField"
