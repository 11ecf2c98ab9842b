"""A request that never answers, started through a middleware: the tests' one copy of it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory


async def start_never_answering(
    make_middleware: Callable[[Callable[[HttpRequest], Any]], Any],
) -> asyncio.Task[Any]:
    """Send a request through ``make_middleware(view)`` where the view never answers.

    Returns the request's task once the request is inside the view.
    """
    entered = asyncio.Event()

    async def never_answers(request: HttpRequest) -> HttpResponse:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    middleware = make_middleware(never_answers)
    task = asyncio.ensure_future(middleware(RequestFactory().get("/")))
    await entered.wait()
    return task


async def cancel_and_check(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and check that the cancellation propagated out of it."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
