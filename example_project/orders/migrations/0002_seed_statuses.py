"""Seed the order statuses, with async ORM calls: a ``RunPythonAsync`` data migration.

``RunPython`` would call ``seed_statuses`` and get back a coroutine that never runs.
``RunPythonAsync`` runs it on the migration's own thread and connection, so its queries are part
of the migration's transaction: if it fails, nothing of it stays.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

from django_async_toolkit.migrations import RunPythonAsync

STATUSES = [
    # code, label, position, is_final
    ("new", "New", 1, False),
    ("paid", "Paid", 2, False),
    ("shipped", "Shipped", 3, False),
    ("delivered", "Delivered", 4, True),
    ("cancelled", "Cancelled", 5, True),
]


async def seed_statuses(apps: Any, schema_editor: Any) -> None:
    OrderStatus = apps.get_model("orders", "OrderStatus")
    existing = {code async for code in OrderStatus.objects.values_list("code", flat=True)}
    await OrderStatus.objects.abulk_create(
        OrderStatus(code=code, label=label, position=position, is_final=is_final)
        for code, label, position, is_final in STATUSES
        if code not in existing
    )


async def unseed_statuses(apps: Any, schema_editor: Any) -> None:
    # The statuses that orders still use stay (they are protected); 0001 drops them all.
    OrderStatus = apps.get_model("orders", "OrderStatus")
    await OrderStatus.objects.filter(
        code__in=[row[0] for row in STATUSES], orders__isnull=True
    ).adelete()


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]

    operations = [RunPythonAsync(seed_statuses, unseed_statuses)]
