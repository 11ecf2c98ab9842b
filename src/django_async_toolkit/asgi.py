"""An ASGI handler that does Django's per-request housekeeping without needless thread hops.

Use it in your project's ``asgi.py`` in place of Django's::

    from django_async_toolkit.asgi import get_asgi_application

    application = get_asgi_application()

Django's handler sends ``request_started`` behind a ``sync_to_async`` hop, which also creates the
request's thread-sensitive thread, and closes the response (which sends ``request_finished``)
behind a second hop.
Django's own receivers of those signals (``close_old_connections``, ``reset_queries``) act on the
database connections of the thread they run on, so they only have work to do when the request
has a thread: a request has none until it does sync work (a sync view or middleware, the ORM).
This handler runs Django's own path whenever there is something for it to do, and skips the hops
when there is nothing:

- at the start, when the request has no thread yet and no sync receiver other than Django's own
  is connected to ``request_started`` (async receivers are awaited on the event loop);
- at the end, when the request still has no thread (or its sync work ran on pool workers, see
  below), no sync receiver other than Django's own is connected to ``request_finished``, the
  response has no closers of its own (a file, an iterator's ``close()``) and no cache in use has
  a ``close()`` that does something.

With the worker pool (:mod:`django_async_toolkit.workers`) a request's sync work runs on a leased
worker, which runs Django's request-start receivers when the lease starts and
``close_old_connections`` when it ends, after the request's last call on it: so a request that
used the ORM pays no hop for the housekeeping either, only its own calls.

It also speaks the ASGI lifespan protocol: see :meth:`ASGIHandler.startup` and
:meth:`ASGIHandler.shutdown`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import IO, Any

import django
from asgiref.sync import sync_to_async
from django.core import signals
from django.core.cache import caches, close_caches
from django.core.cache.backends.base import BaseCache
from django.core.exceptions import RequestAborted
from django.core.handlers import asgi as django_asgi
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, reset_queries
from django.dispatch import Signal
from django.http import HttpResponseBase
from django.urls import set_script_prefix

from django_async_toolkit import _compat, _handle, lifecycle, workers
from django_async_toolkit.middleware.builtins import InlineMiddlewareLoaderMixin
from django_async_toolkit.workers.context import housekeeping_left_to_pool

__all__ = ["ASGIHandler", "get_asgi_application"]

logger = logging.getLogger("django_async_toolkit.asgi")

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Receiver = Callable[..., Any]

#: Django's own receivers that act on the database connections of the thread they run on.
#: On a request that has no thread yet, the thread Django would run them on is a new one,
#: which has no connections: they have nothing to do.
THREAD_BOUND_RECEIVERS: tuple[Receiver, ...] = (close_old_connections, reset_queries)

#: Logged once, at the first request, by a handler whose server never sent lifespan startup.
NO_LIFESPAN_WARNING = (
    "This ASGI server never sent lifespan startup (daphne does not speak the lifespan protocol): "
    "background signal dispatch will not be drained at shutdown, and dispatches still pending "
    "then are lost. Serve with a server that speaks lifespan (uvicorn, hypercorn, granian), or "
    "hand the receivers to Django Tasks with background_receiver(task=...)."
)


def _caches_need_closing() -> bool:
    """Whether a cache in use has a ``close()`` that does something (memcached's does)."""
    return any(
        type(cache).close is not BaseCache.close for cache in caches.all(initialized_only=True)
    )


def _runs_on_the_loop(receiver: Receiver) -> bool:
    """Whether one of Django's own ``request_finished`` receivers may run on the event loop.

    ``reset_urlconf`` only resets a context-local value; ``close_caches`` calls each cache's
    ``close()``, a no-op unless a cache overrides it.
    """
    return receiver is reset_urlconf or (receiver is close_caches and not _caches_need_closing())


async def _run_async_receivers(
    receivers: list[Receiver], signal: Signal, sender: object, **named: Any
) -> None:
    """Run async receivers concurrently, as the installed Django's ``Signal.asend`` does."""
    if not receivers:
        return
    coroutines = [receiver(signal=signal, sender=sender, **named) for receiver in receivers]
    if not _compat.SIGNAL_ASEND_TASKGROUP:
        await asyncio.gather(*coroutines)
        return
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except BaseExceptionGroup as group_error:
        if len(group_error.exceptions) == 1:
            raise group_error.exceptions[0] from None
        raise


def _is_plain_request_close(closer: object) -> bool:
    """Whether ``closer`` is ``ASGIRequest.close`` of a request without uploaded files.

    Django's handler adds the request's ``close()`` to every response's closers; it closes the
    request's body file and its uploaded files (temporary files on disk, which is work for a
    thread).
    """
    request = getattr(closer, "__self__", None)
    return (
        isinstance(request, django_asgi.ASGIRequest)
        and getattr(closer, "__func__", None) is django_asgi.ASGIRequest.close
        and not request.__dict__.get("_files")
    )


class ASGIHandler(InlineMiddlewareLoaderMixin, django_asgi.ASGIHandler):
    """Django's ASGI handler, minus the thread hops of its housekeeping, plus ASGI lifespan.

    Requests are served exactly as Django serves them (same request, response, signals, database
    connection handling); see the module documentation for when the hops are skipped.
    Django's own middleware (startproject's and a few more) runs without a thread hop per hook:
    see :mod:`django_async_toolkit.middleware.builtins`.
    Scopes other than ``http`` and ``lifespan`` are rejected as Django rejects them.
    """

    #: Whether the server sent ``lifespan.startup``, and whether the first request without it
    #: has been warned about (one warning per handler).
    _lifespan_started = False
    _warned_no_lifespan = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve an ASGI connection: ``lifespan`` here, ``http`` as Django does.

        Like Django's, each request runs in a thread-sensitive context of its own; the toolkit's
        (:func:`~django_async_toolkit.workers.pooled_context`) runs the request's sync work on a
        leased worker of the process-wide pool instead of a new thread, unless
        ``ASYNC_TOOLKIT_SYNC_WORKERS`` is ``None``.
        """
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if not self._lifespan_started and not self._warned_no_lifespan:
            self._warned_no_lifespan = True
            logger.warning(NO_LIFESPAN_WARNING)
        async with workers.pooled_context():
            await self.handle(scope, receive, send)

    # --- housekeeping -------------------------------------------------------------------------

    async def send_request_started(self, scope: Scope) -> None:
        """Send ``request_started``, with a thread hop only when a receiver needs one."""
        sender = self.__class__
        sync_receivers, async_receivers = _compat.signal_live_receivers(
            signals.request_started, sender
        )
        needs_django_path = (
            _compat.thread_sensitive_thread_exists()
            or any(r not in THREAD_BOUND_RECEIVERS for r in sync_receivers)
            # Django 4.2 calls every receiver synchronously, async ones included.
            or (async_receivers and not _compat.HAS_SIGNAL_ASEND)
        )
        if not needs_django_path:
            await _run_async_receivers(
                async_receivers, signals.request_started, sender, scope=scope
            )
        elif _compat.HAS_SIGNAL_ASEND:
            await signals.request_started.asend(sender=sender, scope=scope)
        else:
            await sync_to_async(signals.request_started.send, thread_sensitive=True)(
                sender=sender, scope=scope
            )

    def _finished_receivers_on_the_loop(
        self, sender: object
    ) -> tuple[list[Receiver], list[Receiver]] | None:
        """``request_finished``'s receivers if they can run on the loop, else ``None``.

        The sync receivers returned are the ones to call (Django's thread-bound ones left out).
        A request served by pool workers needs no hop for Django's thread-bound receiver
        (``close_old_connections``) once its calls are done: each worker runs it after the
        request's last call on it, when the lease ends.
        """
        if _compat.thread_sensitive_thread_exists() and not housekeeping_left_to_pool():
            return None
        sync_receivers, async_receivers = _compat.signal_live_receivers(
            signals.request_finished, sender
        )
        if async_receivers and not _compat.HAS_SIGNAL_ASEND:
            return None
        on_the_loop = []
        for receiver in sync_receivers:
            if receiver in THREAD_BOUND_RECEIVERS:
                continue
            if not _runs_on_the_loop(receiver):
                return None
            on_the_loop.append(receiver)
        return on_the_loop, async_receivers

    async def _send_request_finished_on_the_loop(
        self, receivers: tuple[list[Receiver], list[Receiver]], sender: object
    ) -> None:
        sync_receivers, async_receivers = receivers
        for receiver in sync_receivers:
            receiver(signal=signals.request_finished, sender=sender)
        await _run_async_receivers(async_receivers, signals.request_finished, sender)

    async def send_request_finished(self) -> None:
        """Send ``request_finished`` for a request that has no response (it was aborted)."""
        sender = self.__class__
        receivers = self._finished_receivers_on_the_loop(sender)
        if receivers is None:
            await signals.request_finished.asend(sender=sender)
        else:
            await self._send_request_finished_on_the_loop(receivers, sender)

    async def close_response(self, response: HttpResponseBase) -> None:
        """Close ``response`` (which sends ``request_finished``), with a hop only when needed.

        A response with closers of its own (a file, an iterator's ``close()``), a request with
        uploaded files, or a response class that overrides ``close()``, is closed on the
        request's thread as Django does it.
        """
        sender = response._handler_class  # type: ignore[attr-defined]
        closers = getattr(response, "_resource_closers", None)
        receivers = None
        if (
            type(response).close is HttpResponseBase.close
            and isinstance(closers, list)
            and all(_is_plain_request_close(closer) for closer in closers)
        ):
            receivers = self._finished_receivers_on_the_loop(sender)
        if receivers is None:
            await sync_to_async(response.close, thread_sensitive=True)()
            return
        # What HttpResponseBase.close() does, when the only thing to close is the request's
        # body (in memory, or an already unlinked temporary file).
        for closer in closers:  # type: ignore[union-attr]
            with suppress(Exception):
                closer()
        closers.clear()  # type: ignore[union-attr]
        response.closed = True
        await self._send_request_finished_on_the_loop(receivers, sender)

    # --- the request cycle, as each supported Django writes it ---------------------------------

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle an HTTP request, as the installed Django's ``ASGIHandler.handle`` does."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return  # The client went away before the request was complete: nothing to send.
        if _compat.ASGI_HANDLE_TASKGROUP:
            await _handle.serve_with_task_group(self, scope, body_file, receive, send)
        elif _compat.ASGI_HANDLE_LISTENS_FOR_DISCONNECT:
            await _handle.serve_with_wait(self, scope, body_file, receive, send)
        else:
            await _handle.serve_without_disconnect_listener(self, scope, body_file, send)

    async def start_request(
        self, scope: Scope, body_file: IO[bytes], send: Send
    ) -> django_asgi.ASGIRequest | None:
        """Send ``request_started`` and build the request; answer and close an invalid one.

        Returns ``None`` when the request was invalid (it has been answered).
        """
        set_script_prefix(self._script_prefix(scope))
        await self.send_request_started(scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None
            body_file.close()
            await self.send_response(error_response, send)
            if _compat.ASGI_HANDLE_LISTENS_FOR_DISCONNECT:
                # (On Django 4.2, send_response() has closed it already.)
                await self.close_response(error_response)
        return request

    def _script_prefix(self, scope: Scope) -> str:
        if _compat.ASGI_HANDLE_LISTENS_FOR_DISCONNECT:
            return django_asgi.get_script_prefix(scope)
        return self.get_script_prefix(scope)  # type: ignore[attr-defined,no-any-return]

    async def send_response(self, response: HttpResponseBase, send: Send) -> None:
        """Send ``response`` over ASGI; on Django 4.2, then close it, as Django 4.2 does.

        A streaming response may stream for long: its request gives back its pool worker first
        (see :func:`~django_async_toolkit.workers.release_worker`).
        """
        if response.streaming:
            workers.release_worker()
        if _compat.ASGI_HANDLE_LISTENS_FOR_DISCONNECT:
            await super().send_response(response, send)
            return
        await _handle.send_response_django42(self, response, send)
        await self.close_response(response)

    # --- lifespan ------------------------------------------------------------------------------

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """Speak the ASGI lifespan protocol: :meth:`startup`, then :meth:`shutdown`.

        A failure is reported to the server as ``lifespan.startup.failed`` or
        ``lifespan.shutdown.failed`` with its message, and logged with its traceback on the
        ``django_async_toolkit.asgi`` logger.
        """
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                phase, step = "startup", self.startup
            elif message["type"] == "lifespan.shutdown":
                phase, step = "shutdown", self.shutdown
            else:
                raise ValueError(f"Unexpected ASGI lifespan message type {message['type']!r}.")
            try:
                await step()
            except Exception as error:
                logger.exception("ASGI lifespan %s failed", phase)
                await send(
                    {
                        "type": f"lifespan.{phase}.failed",
                        "message": _describe(error),
                    }
                )
                return
            await send({"type": f"lifespan.{phase}.complete"})
            if phase == "shutdown":
                return

    async def startup(self) -> None:
        """Start what the toolkit's settings enable: see :func:`.lifecycle.startup`."""
        self._lifespan_started = True
        await lifecycle.startup()

    async def shutdown(self) -> None:
        """Drain background signal dispatch, stop the toolkit's threads, close connections.

        See :func:`.lifecycle.shutdown`: ``drain_background(timeout=ASYNC_TOOLKIT_DRAIN_TIMEOUT)``,
        then the private signal loop and the ``run_blocking`` pool are stopped (closing the
        connections their threads opened), the blocking detector is stopped, and the database
        connections of asgiref's process-wide thread (where thread-sensitive work outside
        requests runs) are closed.
        Every step runs even when an earlier one fails; then the failure is raised (several as
        an :class:`ExceptionGroup`).
        """
        await lifecycle.shutdown()


def _describe(error: BaseException) -> str:
    """``Type: message`` of an error; of each one, for a group."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}"


def get_asgi_application() -> ASGIHandler:
    """Set up Django and return the toolkit's ASGI application.

    A drop-in for :func:`django.core.asgi.get_asgi_application`.
    """
    django.setup(set_prefix=False)
    return ASGIHandler()
