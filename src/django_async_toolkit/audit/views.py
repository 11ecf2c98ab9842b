"""Each URL's view: sync or async, and the hop its adaptation costs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.urls import URLPattern, URLResolver, get_resolver

from django_async_toolkit._validation import qualname
from django_async_toolkit.audit.chain import ChainHops


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
            class_name = qualname(view_class) if view_class is not None else None
            yield ViewReport(
                route=route,
                name=name,
                view=f"{class_name}.as_view()" if class_name else qualname(callback),
                view_class=class_name,
                is_async=iscoroutinefunction(callback),
            )


def audit_views(urlconf: str | None = None) -> list[ViewReport]:
    """Every URL pattern of the URLconf (``ROOT_URLCONF`` by default), in resolution order."""
    return list(_walk(get_resolver(urlconf).url_patterns, "", None))
