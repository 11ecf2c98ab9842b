from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from benchmarks.models import Row


async def trivial(request: HttpRequest) -> HttpResponse:
    """A DB-free async view: what the handler's own overhead caps."""
    return HttpResponse(b"ok")


async def orm(request: HttpRequest) -> HttpResponse:
    """An async view that does one ORM query."""
    row = await Row.objects.afirst()
    return HttpResponse(row.name if row else "none")
