"""Views that block the event loop, for the blocking detector's tests.

Each blocking line carries a ``# blocks here`` comment: the tests find its line number from it.
"""

from __future__ import annotations

import asyncio
import time

from django.http import HttpRequest, HttpResponse

#: How long the blocking views block: far above the thresholds the tests use (0.1 s).
BLOCK_SECONDS = 0.5


def burn_cpu(seconds: float) -> int:
    """Compute for ``seconds`` of this thread's CPU time (pure Python, like a heavy computation).

    CPU time, not wall time: on a loaded machine the work takes longer, it never shrinks below
    the threshold.
    """
    deadline = time.thread_time() + seconds
    rounds = 0
    while time.thread_time() < deadline:  # burns CPU here
        rounds += 1
    return rounds


async def sleeping_view(request: HttpRequest) -> HttpResponse:
    time.sleep(BLOCK_SECONDS)  # blocks here
    return HttpResponse("slept")


async def cpu_view(request: HttpRequest) -> HttpResponse:
    rounds = burn_cpu(BLOCK_SECONDS)
    return HttpResponse(f"{rounds} rounds")


async def quick_view(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    return HttpResponse("quick")


async def timed_view(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("timed")
    response["Server-Timing"] = 'db;dur=1.5;desc="database"'
    return response


def sync_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("sync")


def line_of(function: object, marker: str) -> int:
    """The line number of the line of ``function``'s module that ends with ``# <marker>``."""
    import inspect

    lines, first = inspect.getsourcelines(function)  # type: ignore[arg-type]
    for offset, line in enumerate(lines):
        if line.rstrip().endswith(f"# {marker}"):
            return first + offset
    raise LookupError(f"no line marked {marker!r} in {function!r}")
