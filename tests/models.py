"""Models for the package's tests. Append a model with a docstring saying which tests use it."""

from __future__ import annotations

from django.db import models


class Item(models.Model):
    """A plain row, for tests that touch the database (signals, wrappers, handler)."""

    name = models.CharField(max_length=100)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Page(models.Model):
    """A fetched web page: the management docs example stores them (test_management_example)."""

    url = models.URLField(unique=True)
    status = models.PositiveSmallIntegerField()
    body = models.TextField()
    fetched_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.url
