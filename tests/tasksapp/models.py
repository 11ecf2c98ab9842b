"""Models of the Django Tasks fixture app."""

from __future__ import annotations

import datetime
import decimal
import uuid

from django.db import models


class Note(models.Model):
    """A row whose saves and deletes are handed to task-backed receivers."""

    title = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=decimal.Decimal("0"))
    due = models.DateTimeField(null=True)
    token = models.UUIDField(default=uuid.uuid4)
    extra = models.JSONField(default=dict)
    parent = models.ForeignKey("self", null=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return self.title


class Delivery(models.Model):
    """One run of a task-backed receiver, written by the receiver (in a worker process)."""

    note_id = models.IntegerField()
    kind = models.CharField(max_length=20)
    title = models.CharField(max_length=100)
    when = models.DateTimeField(default=datetime.datetime.now)

    def __str__(self) -> str:
        return f"{self.kind} {self.note_id}"


class Draft(models.Model):
    """A row whose saves go to the dummy backend (the transaction tests)."""

    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title


class Parcel(models.Model):
    """A row whose saves go to django-tasks-db, run by ``manage.py db_worker``."""

    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title
