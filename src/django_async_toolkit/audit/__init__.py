"""The project's async map: which layers run sync or async, and the thread hops they cost.

A *hop* is one thread switch that Django pays on a request: one ``sync_to_async`` or
``async_to_sync`` call.
This module models how Django's handler builds and adapts the middleware chain
(``BaseHandler.load_middleware`` and ``adapt_method_mode``) and how ``MiddlewareMixin`` runs its
hooks, so that the hops are computed without serving a request:

* each middleware runs in the mode Django picks for it: under ASGI, async when it is
  ``async_capable`` and the layer below it is async; under WSGI, sync when it is ``sync_capable``
  and the layer below it is sync;
* where two neighbouring layers (the server, each middleware, the view layer at the bottom) run in
  different modes, Django wraps the lower one in an adapter: one hop per request;
* a ``MiddlewareMixin`` in async mode runs ``process_request`` and ``process_response`` through
  ``sync_to_async``: one hop each;
* except Django's own classes that the toolkit's handler serves inline
  (:mod:`django_async_toolkit.middleware.builtins`, unless
  ``ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE = False``): their hooks count 0 hops, as under that
  handler a hook pays a hop only when it does I/O (saving a session, checking a POST's CSRF
  token), like the database work of a view, which is not counted either;
* ``process_view`` and ``process_template_response`` are adapted to the server's mode, and
  ``process_exception`` always to sync;
* the view at the bottom is adapted to the server's mode: a sync view under ASGI, or an async view
  under WSGI, costs one hop.

The same arithmetic serves the system checks (:mod:`django_async_toolkit.checks`) and
``manage.py async_audit``.
The package's modules: :mod:`.chain` (how Django builds and adapts the middleware chain, and how
the project is served), :mod:`.views` (each URL's view), :mod:`.receivers` (each signal's
receivers); here, the whole project's audit and the facts the checks need.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from django_async_toolkit.audit.chain import (
    HOOKS,
    INTERFACE_NAMES,
    ChainHops,
    Interfaces,
    Kind,
    LayerHops,
    MiddlewareReport,
    Mode,
    _load,
    audit_middleware,
    middleware_kind,
    model_middleware,
    served_interfaces,
)
from django_async_toolkit.audit.receivers import (
    ReceiverReport,
    SignalReport,
    audit_signals,
    background_target,
)
from django_async_toolkit.audit.views import ViewReport, audit_views
from django_async_toolkit.middleware import BlockingDetectorMiddleware, TimeoutMiddleware

__all__ = [
    "AUDIT_VERSION",
    "HOOKS",
    "INTERFACE_NAMES",
    "ChainHops",
    "Interfaces",
    "Kind",
    "LayerHops",
    "MiddlewareReport",
    "Mode",
    "PathHops",
    "ProjectAudit",
    "ReceiverReport",
    "SignalReport",
    "ViewReport",
    "async_unsafe_allowed",
    "audit_middleware",
    "audit_project",
    "audit_signals",
    "audit_views",
    "background_target",
    "blocking_detector_middleware_entries",
    "middleware_entries_of",
    "middleware_kind",
    "model_middleware",
    "served_interfaces",
    "timeout_middleware_entries",
    "uvloop_installed",
]

#: The version of the JSON document that :func:`audit_project` returns.
#: It changes only when a key is removed or changes meaning; a version may gain new keys.
AUDIT_VERSION = 1


# --- The whole project -----------------------------------------------------------------------


@dataclass
class PathHops:
    """The hops of one request path (a URL's view behind the chain) under one interface."""

    interface: str
    route: str | None
    view: str | None
    hops: int


@dataclass
class ProjectAudit:
    """Everything ``async_audit`` reports."""

    interfaces: Interfaces
    middleware: list[MiddlewareReport]
    chains: dict[str, ChainHops]
    views: list[ViewReport]
    signals: list[SignalReport]

    def paths(self, interfaces: Sequence[str] = INTERFACE_NAMES) -> list[PathHops]:
        """Each request path's hops under each of ``interfaces``.

        With no URL pattern, the chain alone is the path.
        """
        result = []
        for name in interfaces:
            chain = self.chains[name].hops
            if not self.views:
                result.append(PathHops(name, None, None, chain))
            result.extend(
                PathHops(name, view.route, view.view, chain + view.view_hops(name))
                for view in self.views
            )
        return result

    def max_hops(self, interface: str) -> int:
        """The most hops any request path costs under ``interface``."""
        return max(path.hops for path in self.paths([interface]))

    def as_dict(self) -> dict[str, Any]:
        """The versioned JSON document (see the audit page of the docs)."""
        return {
            "version": AUDIT_VERSION,
            "interface": {
                "asgi": self.interfaces.asgi,
                "wsgi": self.interfaces.wsgi,
                "explicit": self.interfaces.explicit,
                "source": self.interfaces.source,
            },
            "middleware": [report.as_dict() for report in self.middleware],
            "chain": {name: chain.as_dict() for name, chain in self.chains.items()},
            "views": [view.as_dict(self.chains) for view in self.views],
            "signals": [signal.as_dict() for signal in self.signals],
            "max_hops": {name: self.max_hops(name) for name in INTERFACE_NAMES},
        }


def audit_project(urlconf: str | None = None) -> ProjectAudit:
    """Audit the middleware, the URLconf's views and the connected signals of the project."""
    middleware, chains = audit_middleware()
    return ProjectAudit(
        interfaces=served_interfaces(),
        middleware=middleware,
        chains=chains,
        views=audit_views(urlconf),
        signals=audit_signals(),
    )


# --- Facts the checks need -------------------------------------------------------------------


def async_unsafe_allowed() -> str | None:
    """The value of ``DJANGO_ALLOW_ASYNC_UNSAFE`` when it disables Django's guard, else None."""
    return os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE") or None


def uvloop_installed() -> bool:
    """Whether ``import uvloop`` can succeed, without importing it."""
    try:
        return importlib.util.find_spec("uvloop") is not None
    except ValueError:  # a module in sys.modules without __spec__
        return "uvloop" in sys.modules


def middleware_entries_of(cls: type, middleware: Sequence[str] | None = None) -> list[str]:
    """The ``MIDDLEWARE`` entries that are the class ``cls`` or a subclass of it."""
    entries = []
    for path in settings.MIDDLEWARE if middleware is None else middleware:
        factory = _load(path)
        if isinstance(factory, type) and issubclass(factory, cls):
            entries.append(path)
    return entries


def timeout_middleware_entries(middleware: Sequence[str] | None = None) -> list[str]:
    """The ``MIDDLEWARE`` entries that are the toolkit's ``TimeoutMiddleware`` or a subclass."""
    return middleware_entries_of(TimeoutMiddleware, middleware)


def blocking_detector_middleware_entries(middleware: Sequence[str] | None = None) -> list[str]:
    """The ``MIDDLEWARE`` entries that are ``BlockingDetectorMiddleware`` or a subclass."""
    return middleware_entries_of(BlockingDetectorMiddleware, middleware)
