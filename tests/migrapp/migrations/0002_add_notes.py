from __future__ import annotations

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from django_async_toolkit.migrations import RunPythonAsync
from tests.migrapp import probe


async def add_notes(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Add the first three notes."""
    Note = apps.get_model("migrapp", "Note")
    for text in ["first", "second", "third"]:
        await Note.objects.acreate(text=text)
    await probe.after_forwards(apps, schema_editor)


async def remove_notes(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Remove the first three notes."""
    Note = apps.get_model("migrapp", "Note")
    await Note.objects.filter(text__in=["first", "second", "third"]).adelete()


class Migration(migrations.Migration):
    dependencies = [("migrapp", "0001_initial")]

    operations = [
        RunPythonAsync(add_notes, reverse_code=remove_notes),
    ]
