from __future__ import annotations

from django.db import models


class Note(models.Model):
    """Rows written by the ``RunPythonAsync`` data migration ``0002_add_notes``."""

    text = models.CharField(max_length=100)
    checked = models.BooleanField(default=False)

    class Meta:
        app_label = "migrapp"

    def __str__(self) -> str:
        return self.text
