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
* ``process_view`` and ``process_template_response`` are adapted to the server's mode, and
  ``process_exception`` always to sync;
* the view at the bottom is adapted to the server's mode: a sync view under ASGI, or an async view
  under WSGI, costs one hop.

The same arithmetic serves the system checks (:mod:`django_async_toolkit.checks`) and
``manage.py async_audit``.
This module imports nothing of the package above :mod:`django_async_toolkit.conf`.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import sys
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from asgiref.sync import iscoroutinefunction
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.dispatch import Signal
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from django_async_toolkit.conf import conf

#: The version of the JSON document that :func:`audit_project` returns.
#: It changes only when a key is removed or changes meaning; a version may gain new keys.
AUDIT_VERSION = 1

#: The dotted path of the toolkit's own timeout middleware.
TIMEOUT_MIDDLEWARE = "django_async_toolkit.middleware.TimeoutMiddleware"
BLOCKING_DETECTOR_MIDDLEWARE = "django_async_toolkit.middleware.BlockingDetectorMiddleware"
#: The dotted path of the toolkit's hybrid base class (its hooks are modelled, not guessed).
ASYNC_MIDDLEWARE = "django_async_toolkit.middleware.AsyncMiddleware"
#: The attribute (set to ``True``) that :func:`django_async_toolkit.signals.background_receiver`
#: puts on the sync receiver it connects, which wraps the decorated ``async def`` function
#: (``functools.update_wrapper``, so ``__wrapped__`` is that function).
BACKGROUND_ATTRIBUTE = "_async_toolkit_background_receiver"

#: The request/response hooks that a middleware base class calls from its ``__call__``.
HOOKS = ("process_request", "process_response")

Kind = Literal["sync", "async", "hybrid"]
Mode = Literal["sync", "async"]
INTERFACE_NAMES: tuple[str, str] = ("asgi", "wsgi")


def dotted_name(obj: object) -> str:
    """``module.QualName`` of a function or class; of its type for any other object."""
    target = obj if hasattr(obj, "__qualname__") else type(obj)
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", repr(target))
    return f"{module}.{qualname}" if module else str(qualname)


def mro_names(cls: type) -> set[str]:
    """The dotted names of a class and of every class it inherits from."""
    return {dotted_name(base) for base in cls.__mro__}


# --- How the project is served ---------------------------------------------------------------


@dataclass(frozen=True)
class Interfaces:
    """How the project is served, and what that is known from."""

    asgi: bool
    wsgi: bool
    #: Whether ``ASYNC_TOOLKIT_INTERFACE`` said so (``False`` means it was inferred).
    explicit: bool
    #: A sentence that says what the answer rests on.
    source: str

    @property
    def names(self) -> tuple[str, ...]:
        """``("asgi",)``, ``("wsgi",)`` or ``("asgi", "wsgi")``."""
        return tuple(name for name in INTERFACE_NAMES if getattr(self, name))


def served_interfaces() -> Interfaces:
    """How the project is served: ``ASYNC_TOOLKIT_INTERFACE``, or inferred from the settings.

    Inference is deliberately modest.
    ``ASGI_APPLICATION`` set means the project is served by ASGI.
    ``WSGI_APPLICATION`` proves nothing, because ``startproject`` always writes it (``runserver``
    uses it), and a server such as uvicorn needs no setting at all:
    so a project that sets no ``ASGI_APPLICATION`` is treated as served by WSGI, and *not known*
    to be served by ASGI, which is what the checks say in their messages.
    Raises :class:`~django.core.exceptions.ImproperlyConfigured` when the setting is invalid.
    """
    interface = conf.INTERFACE
    if interface is not None:
        return Interfaces(
            asgi=interface in {"asgi", "both"},
            wsgi=interface in {"wsgi", "both"},
            explicit=True,
            source=f"ASYNC_TOOLKIT_INTERFACE is {interface!r}",
        )
    if getattr(settings, "ASGI_APPLICATION", None):
        return Interfaces(
            asgi=True,
            wsgi=bool(getattr(settings, "WSGI_APPLICATION", None)),
            explicit=False,
            source="inferred: ASGI_APPLICATION is set",
        )
    return Interfaces(
        asgi=False,
        wsgi=True,
        explicit=False,
        source="inferred: neither ASYNC_TOOLKIT_INTERFACE nor ASGI_APPLICATION is set",
    )


# --- Middleware ------------------------------------------------------------------------------


def _sync_stub(request: object) -> object:
    raise RuntimeError("The audit builds middleware to inspect it; it serves no request.")


async def _async_stub(request: object) -> object:
    raise RuntimeError("The audit builds middleware to inspect it; it serves no request.")


def middleware_kind(factory: object) -> Kind:
    """``"sync"``, ``"async"`` or ``"hybrid"``, from ``sync_capable``/``async_capable``."""
    can_sync = getattr(factory, "sync_capable", True)
    can_async = getattr(factory, "async_capable", False)
    if can_sync and can_async:
        return "hybrid"
    return "sync" if can_sync else "async"


@dataclass
class LayerHops:
    """One middleware as Django runs it under one interface, and the hops charged to it.

    Every adapter between two layers is charged to exactly one middleware: the one that runs in the
    mode foreign to the server (sync under ASGI, async under WSGI).
    A run of such layers shares two adapters: the top one is charged to its outermost member
    that cannot run in the server's mode, the bottom one to its innermost member.
    """

    mode: Mode
    #: Adapters (``sync_to_async``/``async_to_sync``) between this layer and its neighbours.
    adapter_hops: int = 0
    #: ``MiddlewareMixin`` hooks run through ``sync_to_async`` (or the toolkit's ``async def``
    #: hooks run through ``async_to_sync`` under WSGI).
    hook_hops: int = 0
    #: ``process_view`` adapted to the server's mode.
    view_hook_hops: int = 0
    #: ``process_template_response`` adapted to the server's mode (template responses only).
    template_response_hops: int = 0
    #: ``process_exception`` adapted to sync, when it is async (when a view raises only).
    exception_hops: int = 0
    #: False when the middleware has its own ``__call__``: hops inside it are not visible.
    inspected: bool = True

    @property
    def hops(self) -> int:
        """The hops it costs on every request that reaches the view."""
        return self.adapter_hops + self.hook_hops + self.view_hook_hops

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "hops": self.hops,
            "adapter_hops": self.adapter_hops,
            "hook_hops": self.hook_hops,
            "view_hook_hops": self.view_hook_hops,
            "template_response_hops": self.template_response_hops,
            "exception_hops": self.exception_hops,
            "inspected": self.inspected,
        }


@dataclass
class MiddlewareReport:
    """One ``MIDDLEWARE`` entry under both interfaces."""

    path: str
    kind: Kind
    #: False when its factory raised ``MiddlewareNotUsed``: Django leaves it out of the chain.
    used: bool = True
    layers: dict[str, LayerHops] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "used": self.used,
            **{name: layer.as_dict() for name, layer in self.layers.items()},
        }


@dataclass
class ChainHops:
    """The whole middleware chain under one interface."""

    #: Hops on every request that reaches the view, the view's own adapter excluded.
    hops: int
    #: Extra hops when the view returns a template response (hooks and ``render()``).
    template_response_hops: int
    #: Extra hops when the view raises (``process_exception`` is always run sync).
    exception_hops: int

    def as_dict(self) -> dict[str, int]:
        return {
            "hops": self.hops,
            "template_response_hops": self.template_response_hops,
            "exception_hops": self.exception_hops,
        }


def _load(path: str) -> Any:
    try:
        return import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"MIDDLEWARE entry {path!r} cannot be imported ({exc}); fix or remove it."
        ) from exc


def _hook_hops(instance: object, is_async: bool) -> tuple[int, bool]:
    """Hops of the request/response hooks inside one middleware, and whether they are known."""
    cls = type(instance)
    names = mro_names(cls)
    if ASYNC_MIDDLEWARE in names:
        # The toolkit's hybrid runs plain hooks inline in both modes and ``async def`` hooks
        # inline under ASGI; under WSGI each ``async def`` hook goes through async_to_sync.
        if is_async:
            return 0, True
        hooks = [getattr(instance, name, None) for name in HOOKS]
        return sum(1 for hook in hooks if hook is not None and iscoroutinefunction(hook)), True
    if isinstance(instance, MiddlewareMixin):
        stock = (
            cls.__call__ is MiddlewareMixin.__call__
            and getattr(cls, "__acall__", None) is MiddlewareMixin.__acall__
        )
        if not is_async:
            return 0, stock
        hooks = [
            name for name in ("process_request", "process_response") if hasattr(instance, name)
        ]
        return len(hooks), stock
    # A function-based middleware, or a class of its own: what its __call__ does is not visible.
    return 0, False


def _adapted(method: object, is_async: bool) -> int:
    """1 when Django's ``adapt_method_mode`` wraps ``method`` for a handler of that mode."""
    return int(iscoroutinefunction(method) != is_async)


class _HopFree:
    """Stands in for a middleware made async-capable with no hook of its own (what-if models)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: object) -> None:
        self.get_response = get_response


def model_middleware(
    is_async: bool,
    middleware: Sequence[str] | None = None,
    *,
    as_hop_free: str | None = None,
) -> tuple[list[tuple[str, Kind, LayerHops | None]], ChainHops]:
    """Build the chain as ``BaseHandler.load_middleware(is_async)`` does, and charge its hops.

    Returns one ``(path, kind, layer)`` per entry, outermost first (``layer`` is ``None`` for a
    middleware that raised ``MiddlewareNotUsed``), and the totals for the chain.
    Each middleware is instantiated once with a stand-in ``get_response``, as Django's handler
    does at start-up, so ``MiddlewareNotUsed`` and hooks set in ``__init__`` are seen.
    ``as_hop_free`` names an entry to model as if it were rewritten to be async-capable with no
    hop of its own (what the ``W001`` check suggests), to tell what that change would cost.
    """
    paths = list(settings.MIDDLEWARE if middleware is None else middleware)
    # Innermost first, as load_middleware walks them.
    built: list[tuple[str, Kind, LayerHops | None, bool]] = []
    handler_is_async = is_async
    for path in reversed(paths):
        factory = _HopFree if path == as_hop_free else _load(path)
        can_sync = getattr(factory, "sync_capable", True)
        can_async = getattr(factory, "async_capable", False)
        if not can_sync and not can_async:
            raise ImproperlyConfigured(
                f"Middleware {path} must have at least one of sync_capable/async_capable "
                "set to True."
            )
        middleware_is_async = bool(can_async) if handler_is_async or not can_sync else False
        try:
            instance = factory(_async_stub if middleware_is_async else _sync_stub)
        except MiddlewareNotUsed:
            built.append((path, middleware_kind(factory), None, False))
            continue
        hook_hops, inspected = _hook_hops(instance, middleware_is_async)
        layer = LayerHops(
            mode="async" if middleware_is_async else "sync",
            hook_hops=hook_hops,
            inspected=inspected,
        )
        if hasattr(instance, "process_view"):
            layer.view_hook_hops = _adapted(instance.process_view, is_async)
        if hasattr(instance, "process_template_response"):
            layer.template_response_hops = _adapted(instance.process_template_response, is_async)
        if hasattr(instance, "process_exception"):
            layer.exception_hops = _adapted(instance.process_exception, False)
        # "Forced": it cannot run in the server's mode (only these are charged adapters).
        forced = not (can_async if is_async else can_sync)
        built.append((path, middleware_kind(factory), layer, forced))
        handler_is_async = middleware_is_async

    _charge_adapters(
        [(layer, forced) for _, _, layer, forced in built if layer is not None],
        native="async" if is_async else "sync",
    )
    layers = [layer for _, _, layer, _ in built if layer is not None]
    template_extra = sum(layer.template_response_hops for layer in layers)
    exception_extra = sum(layer.exception_hops for layer in layers)
    if is_async:
        # render() of a (sync) TemplateResponse, and process_exception_by_middleware, run
        # through sync_to_async under ASGI.
        template_extra += 1
        exception_extra += 1
    chain = ChainHops(
        hops=sum(layer.hops for layer in layers),
        template_response_hops=template_extra,
        exception_hops=exception_extra,
    )
    report = [(path, kind, layer) for path, kind, layer, _ in reversed(built)]
    return report, chain


def _charge_adapters(innermost_first: list[tuple[LayerHops, bool]], native: Mode) -> None:
    """Charge each adapter between layers in different modes to a middleware of the foreign run.

    The server (above the outermost) and the view layer (below the innermost) run in the server's
    mode, so every run of foreign-mode layers has an adapter at each end.
    """
    runs: list[list[tuple[LayerHops, bool]]] = []
    current: list[tuple[LayerHops, bool]] = []
    for layer, forced in innermost_first:
        if layer.mode != native:
            current.append((layer, forced))
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    for run in runs:
        charged = [layer for layer, forced in run if forced] or [layer for layer, _ in run]
        charged[0].adapter_hops += 1  # the adapter below the run (innermost member)
        charged[-1].adapter_hops += 1  # the adapter above the run (outermost member)


def audit_middleware(
    middleware: Sequence[str] | None = None,
) -> tuple[list[MiddlewareReport], dict[str, ChainHops]]:
    """Every ``MIDDLEWARE`` entry under ASGI and under WSGI, and the chain's totals for each."""
    reports: list[MiddlewareReport] = []
    chains: dict[str, ChainHops] = {}
    for name in INTERFACE_NAMES:
        entries, chains[name] = model_middleware(name == "asgi", middleware)
        if not reports:
            reports = [MiddlewareReport(path, kind) for path, kind, _ in entries]
        for report, (_, _, layer) in zip(reports, entries, strict=True):
            if layer is None:
                report.used = False
            else:
                report.layers[name] = layer
    return reports, chains


# --- Views -----------------------------------------------------------------------------------


@dataclass
class ViewReport:
    """One URL pattern's view."""

    route: str
    name: str | None
    view: str
    view_class: str | None
    is_async: bool

    def view_hops(self, interface: str) -> int:
        """1 when the handler adapts this view under ``interface``."""
        return int(self.is_async != (interface == "asgi"))

    def as_dict(self, chains: dict[str, ChainHops]) -> dict[str, Any]:
        return {
            "route": self.route,
            "name": self.name,
            "view": self.view,
            "class": self.view_class,
            "async": self.is_async,
            "hops": {name: chains[name].hops + self.view_hops(name) for name in chains},
        }


def _walk(
    patterns: Sequence[URLPattern | URLResolver], prefix: str, namespace: str | None
) -> Iterator[ViewReport]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace
            joined = f"{namespace}:{inner}" if namespace and inner else inner or namespace
            yield from _walk(pattern.url_patterns, route, joined)
        else:
            callback = pattern.callback
            view_class = getattr(callback, "view_class", None)
            name = pattern.name
            if name and namespace:
                name = f"{namespace}:{name}"
            class_name = dotted_name(view_class) if view_class is not None else None
            yield ViewReport(
                route=route,
                name=name,
                view=f"{class_name}.as_view()" if class_name else dotted_name(callback),
                view_class=class_name,
                is_async=iscoroutinefunction(callback),
            )


def audit_views(urlconf: str | None = None) -> list[ViewReport]:
    """Every URL pattern of the URLconf (``ROOT_URLCONF`` by default), in resolution order."""
    return list(_walk(get_resolver(urlconf).url_patterns, "", None))


# --- Signals ---------------------------------------------------------------------------------


@dataclass
class ReceiverReport:
    """One connected receiver."""

    receiver: str
    is_async: bool
    #: Connected with ``@background_receiver``: the sender does not wait for it.
    background: bool
    #: The model it listens to, ``None`` for any sender, or a description of another sender.
    sender: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "async": self.is_async,
            "background": self.background,
            "sender": self.sender,
        }


@dataclass
class SignalReport:
    """One signal with the receivers connected to it."""

    signal: str
    receivers: list[ReceiverReport]

    def as_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "receivers": [r.as_dict() for r in self.receivers]}


def _signal_names() -> dict[int, tuple[str, Signal]]:
    """Every ``Signal`` found as a module attribute, under one name each."""
    found: dict[int, list[tuple[str, Signal]]] = {}
    for module_name, module in list(sys.modules.items()):
        # sys.modules may hold None (a blocked import) or objects without a __dict__.
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attribute, value in list(namespace.items()):
            # type(), not isinstance(): isinstance() would evaluate lazy objects (their __class__).
            if issubclass(type(value), Signal):
                found.setdefault(id(value), []).append((f"{module_name}.{attribute}", value))
    return {key: _home(names) for key, names in found.items()}


def _defines(module_name: str, attribute: str) -> bool:
    """Whether the module's source assigns ``attribute`` at top level (it is the signal's home)."""
    module = sys.modules.get(module_name)
    try:
        source = inspect.getsource(module)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    return re.search(rf"^{re.escape(attribute)}\s*(:[^=]*)?=", source, re.MULTILINE) is not None


def _home(names: list[tuple[str, Signal]]) -> tuple[str, Signal]:
    """The name of a signal that other modules import: the module that defines it, if found."""
    if len(names) > 1:
        defined = [item for item in names if _defines(*item[0].rsplit(".", 1))]
        names = defined or names
    return min(names, key=lambda item: (item[0].count("."), item[0]))


def _sender_names() -> dict[int, str]:
    names = {id(config): f"the {config.label} app" for config in apps.get_app_configs()}
    for model in apps.get_models(include_auto_created=True):
        names[id(model)] = model._meta.label
    return names


def _live_receiver(entry: tuple[Any, ...]) -> Any:
    receiver = entry[1]
    if isinstance(receiver, weakref.ReferenceType):
        return receiver()
    return receiver


def background_target(receiver: object) -> Callable[..., Any] | None:
    """The ``async def`` function behind a receiver connected by ``@background_receiver``."""
    if getattr(receiver, BACKGROUND_ATTRIBUTE, False) is not True:
        return None
    target = getattr(receiver, "__wrapped__", receiver)
    return target if callable(target) else None


def audit_signals() -> list[SignalReport]:
    """Every signal that has live receivers, sorted by name, receivers in connection order."""
    none_id = id(None)
    senders = _sender_names()
    reports = []
    for name, signal in sorted(_signal_names().values(), key=lambda item: item[0]):
        receivers = []
        with signal.lock:
            entries = list(signal.receivers)
        for entry in entries:
            receiver = _live_receiver(entry)
            if receiver is None:
                continue
            sender_id = entry[0][1]
            if sender_id == none_id:
                sender = None
            else:
                sender = senders.get(sender_id, "an object that is not a model or an app")
            target = background_target(receiver)
            receivers.append(
                ReceiverReport(
                    receiver=dotted_name(target if target is not None else receiver),
                    is_async=iscoroutinefunction(target if target is not None else receiver),
                    background=target is not None,
                    sender=sender,
                )
            )
        if receivers:
            reports.append(SignalReport(name, receivers))
    return reports


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


def middleware_entries_of(class_path: str, middleware: Sequence[str] | None = None) -> list[str]:
    """The ``MIDDLEWARE`` entries that are the class at ``class_path`` or a subclass of it."""
    entries = []
    for path in settings.MIDDLEWARE if middleware is None else middleware:
        if path == class_path:
            entries.append(path)
            continue
        factory = _load(path)
        if isinstance(factory, type) and class_path in mro_names(factory):
            entries.append(path)
    return entries


def timeout_middleware_entries(middleware: Sequence[str] | None = None) -> list[str]:
    """The ``MIDDLEWARE`` entries that are the toolkit's ``TimeoutMiddleware`` or a subclass."""
    return middleware_entries_of(TIMEOUT_MIDDLEWARE, middleware)
