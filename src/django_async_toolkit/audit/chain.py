"""The middleware chain as Django's handler builds and adapts it, and its hops per request.

See :mod:`django_async_toolkit.audit` for the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from django_async_toolkit.conf import conf
from django_async_toolkit.middleware import AsyncMiddleware
from django_async_toolkit.middleware.builtins import is_served

#: The request/response hooks that a middleware base class calls from its ``__call__``.
HOOKS = ("process_request", "process_response")

Kind = Literal["sync", "async", "hybrid"]
Mode = Literal["sync", "async"]
INTERFACE_NAMES: tuple[str, str] = ("asgi", "wsgi")


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
    #: One of Django's own classes that the toolkit's handler serves without a hop per hook
    #: (:mod:`django_async_toolkit.middleware.builtins`): its hooks count 0 hops.
    served_inline: bool = False

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
            "served_inline": self.served_inline,
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
    if isinstance(instance, AsyncMiddleware):
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


def _served_inline(factory: object, instance: object) -> bool:
    """Whether the toolkit's handler serves this middleware inline (exact class, setting on)."""
    return conf.INLINE_DJANGO_MIDDLEWARE and type(instance) is factory and is_served(factory)


def _adapted(method: object, is_async: bool) -> int:
    """1 when Django's ``adapt_method_mode`` wraps ``method`` for a handler of that mode."""
    return int(iscoroutinefunction(method) != is_async)


class _HopFree:
    """Stands in for a middleware made async-capable with no hook of its own (what-if models)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: object) -> None:
        self.get_response = get_response


def _model_layer(
    path: str, factory: Any, handler_is_async: bool, is_async: bool
) -> tuple[LayerHops | None, bool]:
    """One middleware, instantiated as ``load_middleware`` does over the layer below it.

    Returns its hops (``None`` when it raised ``MiddlewareNotUsed``) and whether it is
    "forced": it cannot run in the server's mode (only such layers are charged adapters).
    """
    can_sync = getattr(factory, "sync_capable", True)
    can_async = getattr(factory, "async_capable", False)
    if not can_sync and not can_async:
        raise ImproperlyConfigured(
            f"Middleware {path} must have at least one of sync_capable/async_capable set to True."
        )
    middleware_is_async = bool(can_async) if handler_is_async or not can_sync else False
    try:
        instance = factory(_async_stub if middleware_is_async else _sync_stub)
    except MiddlewareNotUsed:
        return None, False
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
    if is_async and middleware_is_async and _served_inline(factory, instance):
        # Its hooks run on the event loop; a hook pays a hop only when it does I/O.
        layer.hook_hops = layer.view_hook_hops = 0
        layer.served_inline = True
    forced = not (can_async if is_async else can_sync)
    return layer, forced


def _chain_totals(layers: list[LayerHops], is_async: bool) -> ChainHops:
    """The hops of the whole chain, once its adapters are charged."""
    template_extra = sum(layer.template_response_hops for layer in layers)
    exception_extra = sum(layer.exception_hops for layer in layers)
    if is_async:
        # render() of a (sync) TemplateResponse, and process_exception_by_middleware, run
        # through sync_to_async under ASGI.
        template_extra += 1
        exception_extra += 1
    return ChainHops(
        hops=sum(layer.hops for layer in layers),
        template_response_hops=template_extra,
        exception_hops=exception_extra,
    )


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
        kind = middleware_kind(factory)
        layer, forced = _model_layer(path, factory, handler_is_async, is_async)
        built.append((path, kind, layer, forced))
        if layer is not None:
            handler_is_async = layer.mode == "async"

    _charge_adapters(
        [(layer, forced) for _, _, layer, forced in built if layer is not None],
        native="async" if is_async else "sync",
    )
    layers = [layer for _, _, layer, _ in built if layer is not None]
    chain = _chain_totals(layers, is_async)
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
