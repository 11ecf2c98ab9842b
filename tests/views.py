from __future__ import annotations

import asyncio
import threading

from django.http import HttpRequest, HttpResponse, JsonResponse


def sync_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"mode": "sync", "thread": threading.current_thread().name})


async def async_view(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    return JsonResponse({"mode": "async", "thread": threading.current_thread().name})
