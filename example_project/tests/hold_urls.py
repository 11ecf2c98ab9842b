"""The project's URLs plus ``/hold/``: a view that stays in flight until the test releases it."""

from __future__ import annotations

import asyncio
import threading

from django.http import HttpRequest, JsonResponse
from django.urls import path
from orders_site.urls import urlpatterns as site_urlpatterns

entered = threading.Semaphore(0)
release = threading.Event()


async def hold(request: HttpRequest) -> JsonResponse:
    entered.release()
    while not release.is_set():
        await asyncio.sleep(0.005)
    return JsonResponse({"held": True})


urlpatterns = [path("hold/", hold), *site_urlpatterns]
