from __future__ import annotations

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from django_async_toolkit.migrations import RunPythonAsync


async def check_notes(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Mark every note checked."""
    Note = apps.get_model("migrapp", "Note")
    async for note in Note.objects.filter(checked=False).order_by("id"):
        note.checked = True
        await note.asave(update_fields=["checked"])


class Migration(migrations.Migration):
    dependencies = [("migrapp", "0002_add_notes")]

    # Unapplying leaves the rows checked: nothing to undo.
    operations = [
        RunPythonAsync(check_notes, reverse_code=RunPythonAsync.noop),
    ]
