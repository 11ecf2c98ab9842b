"""Views of the worker-pool child process: ORM reads, sync and async, and a DB-free view."""

from __future__ import annotations

import threading

from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.models import Item

#: Set by the child to hold ``/hold/`` requests on their worker until it is set.
release = threading.Event()


def sync_orm(request: HttpRequest) -> HttpResponse:
    item = Item.objects.first()
    return HttpResponse(item.name if item else "none")


async def async_orm(request: HttpRequest) -> HttpResponse:
    item = await Item.objects.afirst()
    return HttpResponse(item.name if item else "none")


async def free(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


def hold(request: HttpRequest) -> HttpResponse:
    release.wait(60)
    return HttpResponse(threading.current_thread().name)


urlpatterns = [
    path("sync-orm/", sync_orm),
    path("async-orm/", async_orm),
    path("free/", free),
    path("hold/", hold),
]
