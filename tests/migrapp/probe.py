"""Hooks that ``tests/test_migrations.py`` replaces to look inside the data migration as it runs.

The migration calls ``probe.after_forwards`` through this module, so ``monkeypatch.setattr`` on it
takes effect.
"""

from __future__ import annotations

from django.apps.registry import Apps
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


async def after_forwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Called by ``0002_add_notes`` after it has created its rows; does nothing by default."""
