"""The orders and their statuses."""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="OrderStatus",
            fields=[
                ("code", models.SlugField(max_length=20, primary_key=True, serialize=False)),
                ("label", models.CharField(max_length=50)),
                ("position", models.PositiveSmallIntegerField()),
                ("is_final", models.BooleanField(default=False)),
            ],
            options={
                "verbose_name_plural": "order statuses",
                "ordering": ["position"],
            },
        ),
        migrations.CreateModel(
            name="Order",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("external_id", models.CharField(max_length=32, unique=True)),
                ("customer", models.CharField(max_length=100)),
                ("total_cents", models.PositiveIntegerField()),
                ("lines", models.JSONField(default=list)),
                ("placed_at", models.DateTimeField()),
                ("fetched_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "status",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="orders",
                        to="orders.orderstatus",
                    ),
                ),
            ],
            options={
                "ordering": ["-placed_at"],
            },
        ),
    ]
