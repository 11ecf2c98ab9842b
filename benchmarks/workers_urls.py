"""The views of the worker-pool benchmarks: one ORM read, async and sync, and a DB-free view."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from benchmarks import views
from benchmarks.models import Row


def sync_orm(request: HttpRequest) -> HttpResponse:
    """A sync view that does one ORM query."""
    row = Row.objects.first()
    return HttpResponse(row.name if row else "none")


urlpatterns = [
    path("", views.trivial),
    path("orm/", views.orm),
    path("sync-orm/", sync_orm),
]
