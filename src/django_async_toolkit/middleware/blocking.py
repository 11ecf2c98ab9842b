"""``BlockingDetectorMiddleware``: the blocking detector, and the loop lag in ``Server-Timing``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import cast

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from django_async_toolkit.blocking import BlockingDetector, start_process_detector
from django_async_toolkit.conf import conf
from django_async_toolkit.middleware.base import AsyncMiddleware

__all__ = ["SERVER_TIMING_METRIC", "BlockingDetectorMiddleware", "add_server_timing"]


#: The ``Server-Timing`` metric name of the event loop lag seen during a request.
SERVER_TIMING_METRIC = "loop-lag"


class BlockingDetectorMiddleware(AsyncMiddleware):
    """Run the process's blocking detector, and optionally report the loop lag of each request.

    Under ASGI, the first request starts the process-wide
    :class:`~django_async_toolkit.blocking.BlockingDetector` on the server's event loop (with
    ``ASYNC_TOOLKIT_BLOCKING_THRESHOLD``), unless the ASGI lifespan already did: from then on,
    each stall of the loop is logged on the ``django_async_toolkit.blocking`` logger with the line
    that blocked.
    With ``ASYNC_TOOLKIT_SERVER_TIMING = True`` each response also gets a ``Server-Timing`` entry,
    ``loop-lag;dur=<milliseconds>``: how long the event loop was stalled while the request was
    handled (by this request or by any other one), up to the moment the response is returned
    (a streaming body is not counted).

    Under WSGI there is no event loop to watch: the middleware passes requests through untouched.
    Place it first in ``MIDDLEWARE`` so that the lag covers the whole stack.
    """

    sync_mode_loses = (
        "there is no event loop to watch, so it detects nothing and adds no Server-Timing entry"
    )

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        detector = start_process_detector()
        if not conf.SERVER_TIMING or detector.loop is not asyncio.get_running_loop():
            return await cast(Awaitable[HttpResponseBase], self.get_response(request))
        lag_before = detector.lag_total()
        response = await cast(Awaitable[HttpResponseBase], self.get_response(request))
        add_server_timing(response, detector, lag_before)
        return response


def add_server_timing(
    response: HttpResponseBase, detector: BlockingDetector, lag_before: float
) -> None:
    """Append the ``loop-lag`` entry (the lag since ``lag_before``) to ``Server-Timing``."""
    lag_ms = max(0.0, detector.lag_total() - lag_before) * 1000
    entry = f'{SERVER_TIMING_METRIC};dur={lag_ms:.1f};desc="event loop lag"'
    existing = response.get("Server-Timing")
    response["Server-Timing"] = f"{existing}, {entry}" if existing else entry
