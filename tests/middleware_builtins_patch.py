"""Run Django's own middleware tests with the toolkit's inline serving of Django's middleware.

Imported first by ``tests.django_suite.run_django_tests`` (see
``tests/test_middleware_builtins_django.py``). It puts the mechanism in every place those tests
reach Django's middleware:

1. the ASGI handler is the toolkit's (``tests.asgi_patch``), for the ``asgi`` tests;
2. ``AsyncClient``'s handler loads its chain with the toolkit's loader, so tests that use
   ``self.async_client`` go through :class:`InlineDjangoMiddleware`;
3. a served class built directly with an async ``get_response`` (``await mw(request)``) runs
   through the adapter instead of ``MiddlewareMixin.__acall__``;
4. a hook called directly from sync test code (``mw.process_view(request, ...)``, most of
   Django's middleware tests) runs through the adapter on an event loop (``async_to_sync``):
   inline on the loop's thread when the adapter's rule says it does no I/O, behind a
   thread-sensitive hop (back on the test's thread) when it says it does.

A hook run inline that touches the database raises ``SynchronousOnlyOperation``; one that reads
or saves a session store other than the signed cookie raises ``AssertionError`` (the stores'
``load``/``save``/``exists``/``create``/``delete`` are guarded here): a wrong rule fails
Django's own tests. At exit a line reports how many hooks ran inline and behind a hop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import functools
import sys
from collections.abc import Callable
from typing import Any

import django
import django.test.client
from asgiref.sync import async_to_sync
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

import tests.asgi_patch  # noqa: F401  (the toolkit's ASGI handler in place of Django's)
from django_async_toolkit import asgi
from django_async_toolkit.middleware import builtins

#: True while the adapter runs a hook: the hook is then the real one, not routed again.
_in_adapter: contextvars.ContextVar[bool] = contextvars.ContextVar("in_adapter", default=False)
_counts = {"inline": 0, "hop": 0, "direct": 0}
RULE_ARITY = {"process_request": 1, "process_view": 2, "process_response": 2}


class CountingInline(builtins.InlineDjangoMiddleware):
    async def run_hook(self, hook: Callable[..., Any], needs_io: bool, *args: Any) -> Any:
        _counts["hop" if needs_io else "inline"] += 1
        token = _in_adapter.set(True)
        try:
            return await super().run_hook(hook, needs_io, *args)
        finally:
            _in_adapter.reset(token)


asgi.ASGIHandler.inline_middleware_class = CountingInline


class AsyncClientHandler(
    builtins.InlineMiddlewareLoaderMixin, django.test.client.AsyncClientHandler
):
    inline_middleware_class = CountingInline


django.test.client.AsyncClientHandler = AsyncClientHandler  # type: ignore[misc]


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _routed(cls: type, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        if type(self) is not cls or _in_adapter.get() or kwargs or _loop_running():
            return original(self, *args, **kwargs)
        _counts["direct"] += 1
        adapter = CountingInline(self)
        needs_io = getattr(adapter.rules, name)(self, *args[: RULE_ARITY[name]])
        return async_to_sync(adapter.run_hook)(functools.partial(original, self), needs_io, *args)

    return hook


def _routed_acall(cls: type) -> Callable[..., Any]:
    def acall(self: Any, request: Any) -> Any:
        if type(self) is not cls:
            return MiddlewareMixin.__acall__(self, request)
        return CountingInline(self)(request)

    return acall


def _guarded(store: type, name: str) -> None:
    original = vars(store)[name]

    @functools.wraps(original)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _in_adapter.get() and _loop_running():
            raise AssertionError(
                f"{store.__module__}.{name}() ran on the event loop inside a hook that the "
                "toolkit ran inline: its rule must send that call behind a hop."
            )
        return original(self, *args, **kwargs)

    setattr(store, name, guarded)


def _patch_after_setup() -> None:
    """Route the served classes' hooks and guard the session stores (their modules import
    models, so this waits for ``django.setup()``)."""
    for path in builtins.SERVED:
        try:
            served = import_string(path)
        except ImportError:
            continue  # LoginRequiredMiddleware before Django 5.1
        for hook_name in RULE_ARITY:
            if hook_name in vars(served):
                setattr(served, hook_name, _routed(served, hook_name, vars(served)[hook_name]))
        served.__acall__ = _routed_acall(served)

    for backend in ("db", "cache", "cached_db", "file"):
        store_class = import_string(f"django.contrib.sessions.backends.{backend}.SessionStore")
        for method in ("load", "save", "exists", "create", "delete"):
            if method in vars(store_class):
                _guarded(store_class, method)


_setup = django.setup


def _setup_then_patch(*args: Any, **kwargs: Any) -> None:
    _setup(*args, **kwargs)
    _patch_after_setup()


django.setup = _setup_then_patch


atexit.register(
    lambda: print(
        "django_async_toolkit inline middleware: {inline} hooks inline, {hop} behind a hop, "
        "{direct} direct calls routed".format(**_counts),
        file=sys.stderr,
    )
)
