from __future__ import annotations

from django.db import models


class Row(models.Model):
    """The row the ORM view reads."""

    name = models.CharField(max_length=50)

    class Meta:
        app_label = "benchmarks"
