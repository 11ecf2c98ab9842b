"""Per-view deadlines with request_timeout, overriding ASYNC_TOOLKIT_REQUEST_TIMEOUT."""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View

from django_async_toolkit.middleware import request_timeout


@request_timeout(2)
async def search(request: HttpRequest) -> HttpResponse:
    """A search must answer within 2 seconds, whatever the project's default."""
    await asyncio.sleep(0)  # e.g. await a search backend
    return JsonResponse({"results": []})


@request_timeout(None)
async def long_poll(request: HttpRequest) -> HttpResponse:
    """A long poll waits as long as it likes: no deadline for this view."""
    await asyncio.sleep(0)  # e.g. await the next event
    return JsonResponse({"events": []})


@method_decorator(request_timeout(30), name="dispatch")
class ReportView(View):
    """On a class-based view, decorate dispatch (or the class itself)."""

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("report")
