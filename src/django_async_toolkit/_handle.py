"""The request cycle of Django's ``ASGIHandler.handle()``, as each supported Django writes it.

:meth:`django_async_toolkit.asgi.ASGIHandler.handle` decides which one runs (switched once, on
``_compat``); each body here follows the installed Django's own ``handle()`` line for line, with
the toolkit's :meth:`~django_async_toolkit.asgi.ASGIHandler.start_request` and
``close_response`` in place of Django's hops:

* Django 6.1+: the view and a disconnect listener share a ``TaskGroup`` (the listener is cancelled
  once the response is sent, where Django raises an exception to end the group);
* Django 5.0 to 6.0: they race in ``asyncio.wait``;
* Django 4.2: no disconnect listener, and ``send_response`` closes the response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing, closing, suppress
from typing import IO, TYPE_CHECKING, Any

from django.core.exceptions import RequestAborted
from django.http import FileResponse, HttpResponseBase

if TYPE_CHECKING:
    from django_async_toolkit.asgi import ASGIHandler

__all__ = [
    "send_response_django42",
    "serve_with_task_group",
    "serve_with_wait",
    "serve_without_disconnect_listener",
]

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _as_bytes(value: str | bytes, encoding: str) -> bytes:
    return value.encode(encoding) if isinstance(value, str) else bytes(value)


async def serve_with_task_group(
    handler: ASGIHandler, scope: Scope, body_file: IO[bytes], receive: Receive, send: Send
) -> None:
    """Django 6.1+: the view and a disconnect listener share a TaskGroup."""
    with closing(body_file):
        request = await handler.start_request(scope, body_file, send)
        if request is None:
            return

        response = None
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    listener = group.create_task(handler.listen_for_disconnect(receive))
                    response = await handler.run_get_response(request)
                    await handler.send_response(response, send)
                    # Django raises an exception class it creates for each request to end the
                    # group; cancelling the listener ends it the same way, for less work.
                    listener.cancel()
            except* RequestAborted:
                pass
        except BaseExceptionGroup as group_error:
            if len(group_error.exceptions) == 1:
                # As Django: the group stays the exception's context.
                raise group_error.exceptions[0]  # noqa: B904
            raise
        if response is None:
            await handler.send_request_finished()
        else:
            await handler.close_response(response)


async def serve_with_wait(
    handler: ASGIHandler, scope: Scope, body_file: IO[bytes], receive: Receive, send: Send
) -> None:
    """Django 5.0 to 6.0: the view and a disconnect listener race in ``asyncio.wait``."""
    request = await handler.start_request(scope, body_file, send)
    if request is None:
        return

    async def process_request() -> HttpResponseBase:
        response = await handler.run_get_response(request)
        with suppress(asyncio.CancelledError):
            # The client went away while the response was being sent.
            await handler.send_response(response, send)
        return response

    # The listener goes first: it must not fail in a way that stops the view's cancellation.
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(handler.listen_for_disconnect(receive)),
        asyncio.create_task(process_request()),
    ]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        if task.done():
            try:
                task.result()
            except RequestAborted:
                pass
            except AssertionError:
                body_file.close()
                raise
        else:
            task.cancel()  # The view may handle its cancellation.
            with suppress(asyncio.CancelledError):
                await task
    try:
        response = tasks[1].result()
    except asyncio.CancelledError:
        await handler.send_request_finished()
    else:
        await handler.close_response(response)
    body_file.close()


async def serve_without_disconnect_listener(
    handler: ASGIHandler, scope: Scope, body_file: IO[bytes], send: Send
) -> None:
    """Django 4.2: no disconnect listener; ``send_response`` closes the response."""
    request = await handler.start_request(scope, body_file, send)
    if request is None:
        return
    response = await handler.get_response_async(request)
    response._handler_class = handler.__class__  # type: ignore[attr-defined]
    if isinstance(response, FileResponse):
        response.block_size = handler.chunk_size
    await handler.send_response(response, send)


async def send_response_django42(
    handler: ASGIHandler, response: HttpResponseBase, send: Send
) -> None:
    """Django 4.2's ``send_response`` up to, not including, closing the response."""
    headers = []
    for name, value in response.items():
        headers.append((_as_bytes(name, "ascii"), _as_bytes(value, "latin1")))
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    if response.streaming:
        async with aclosing(response.__aiter__()) as content:  # type: ignore[attr-defined]
            async for part in content:
                for chunk, _ in handler.chunk_bytes(part):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body"})
        return
    for chunk, last in handler.chunk_bytes(response.content):  # type: ignore[attr-defined]
        await send({"type": "http.response.body", "body": chunk, "more_body": not last})
