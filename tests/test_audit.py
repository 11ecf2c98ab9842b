"""The audit's hop arithmetic matches what Django's handler really does, on every Django.

Each mix of middleware is built by Django's own handler, a request goes through it, and every
``sync_to_async``/``async_to_sync`` call made on the way is counted: it must be the audit's count.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.dispatch import Signal
from django.test import AsyncClient, AsyncRequestFactory, Client, RequestFactory, override_settings

from django_async_toolkit.asgi import ASGIHandler as ToolkitASGIHandler
from django_async_toolkit.audit import (
    ProjectAudit,
    audit_middleware,
    audit_project,
    audit_signals,
    audit_views,
    model_middleware,
)
from django_async_toolkit.audit import chain as audit_chain
from tests import audit_middleware as mw

DJANGO_BUILTINS = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

MIXES: dict[str, list[str]] = {
    "empty": [],
    "sync-only": [mw.SYNC_ONLY],
    "hybrid around sync-only": [mw.HYBRID, mw.SYNC_ONLY, mw.HYBRID],
    "run of sync-only": [mw.SYNC_ONLY, mw.OTHER_SYNC_ONLY],
    "async-only": [mw.ASYNC_ONLY],
    "alternating": [mw.SYNC_ONLY, mw.ASYNC_ONLY, mw.SYNC_ONLY, mw.ASYNC_ONLY],
    "async-only around hybrid": [mw.ASYNC_ONLY, mw.HYBRID, mw.ASYNC_ONLY],
    "mixin": [mw.MIXIN_BOTH],
    "mixins around sync-only": [mw.MIXIN_BOTH, mw.SYNC_ONLY, mw.MIXIN_REQUEST_ONLY],
    "view hooks": [mw.MIXIN_VIEW_HOOK, mw.ASYNC_VIEW_HOOK],
    "not used": [mw.NOT_USED, mw.SYNC_ONLY, mw.NOT_USED],
    "function": [mw.FUNCTION, mw.HYBRID],
    "django built-ins": DJANGO_BUILTINS,
    "toolkit": [mw.TIMEOUT, mw.CONCURRENCY, mw.TOOLKIT_HOOKS],
    "template hooks": [mw.TEMPLATE_HOOKS, mw.ASYNC_TEMPLATE_HOOK, mw.SYNC_ONLY, mw.TEMPLATE_HOOKS],
    "toolkit below sync-only": [mw.TIMEOUT, mw.SYNC_ONLY, mw.TOOLKIT_HOOKS, mw.MIXIN_BOTH],
    "everything": [
        *DJANGO_BUILTINS,
        mw.MIXIN_BOTH,
        mw.SYNC_ONLY,
        mw.ASYNC_ONLY,
        mw.MIXIN_VIEW_HOOK,
        mw.ASYNC_VIEW_HOOK,
        mw.NOT_USED,
        mw.FUNCTION,
        mw.HYBRID,
        mw.TOOLKIT_HOOKS,
    ],
}

TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates"}]


class HopCounter:
    """Counts every sync_to_async and async_to_sync call while it is installed."""

    def __init__(self) -> None:
        self.count = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        sync_to_async_call: Callable[..., Any] = SyncToAsync.__call__
        async_to_sync_call: Callable[..., Any] = AsyncToSync.__call__
        counter = self

        async def counting_sync_to_async(self: SyncToAsync[Any, Any], *a: Any, **k: Any) -> Any:
            counter.count += 1
            return await sync_to_async_call(self, *a, **k)

        def counting_async_to_sync(self: AsyncToSync[Any, Any], *a: Any, **k: Any) -> Any:
            counter.count += 1
            return async_to_sync_call(self, *a, **k)

        monkeypatch.setattr(SyncToAsync, "__call__", counting_sync_to_async)
        monkeypatch.setattr(AsyncToSync, "__call__", counting_async_to_sync)


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[HopCounter]:
    counter = HopCounter()
    counter.install(monkeypatch)
    yield counter


def expected_hops(audit: ProjectAudit, interface: str, route: str) -> int:
    """The audit's hops for the request path of ``route``, extras of its kind included."""
    (view,) = [v for v in audit.views if v.route == route]
    chain = audit.chains[interface]
    total = chain.hops + view.view_hops(interface)
    if route == "template/":
        total += chain.template_response_hops
    if route.startswith("fail-"):
        total += chain.exception_hops
    return total


ROUTES = ["sync/", "async/", "template/", "pages/sync/", "pages/async/"]


@pytest.mark.urls("tests.audit_urls")
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("mix", MIXES.values(), ids=MIXES.keys())
@pytest.mark.parametrize(
    ("handler_class", "inline"),
    [(ASGIHandler, False), (ToolkitASGIHandler, True)],
    ids=["django handler, inline off", "toolkit handler"],
)
async def test_asgi_hops_match_django(
    mix: list[str], route: str, hops: HopCounter, handler_class: type, inline: bool
) -> None:
    """The audit models Django's handler, or the toolkit's that serves Django's own middleware
    inline (``ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE``)."""
    settings = {"ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE": inline}
    with override_settings(MIDDLEWARE=mix, TEMPLATES=TEMPLATES, **settings):
        audit = audit_project()
        handler = handler_class()
        request = AsyncRequestFactory().get("/" + route)
        hops.count = 0
        response = await handler.get_response_async(request)
    assert response.status_code == 200
    assert hops.count == expected_hops(audit, "asgi", route)


@pytest.mark.urls("tests.audit_urls")
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("mix", MIXES.values(), ids=MIXES.keys())
def test_wsgi_hops_match_django(mix: list[str], route: str, hops: HopCounter) -> None:
    with override_settings(MIDDLEWARE=mix, TEMPLATES=TEMPLATES):
        audit = audit_project()
        handler = WSGIHandler()
        request = RequestFactory().get("/" + route)
        hops.count = 0
        response = handler.get_response(request)
    assert response.status_code == 200
    assert hops.count == expected_hops(audit, "wsgi", route)


ERROR_MIXES = {
    "answers errors": [mw.ANSWERS_ERRORS],
    "answers errors below sync-only": [mw.SYNC_ONLY, mw.ASYNC_VIEW_HOOK, mw.ANSWERS_ERRORS],
}


@pytest.mark.urls("tests.audit_urls")
@pytest.mark.parametrize("route", ["fail-sync/", "fail-async/"])
@pytest.mark.parametrize("mix", ERROR_MIXES.values(), ids=ERROR_MIXES.keys())
async def test_asgi_exception_hops_match_django(
    mix: list[str], route: str, hops: HopCounter
) -> None:
    with override_settings(MIDDLEWARE=mix):
        audit = audit_project()
        handler = ASGIHandler()
        hops.count = 0
        response = await handler.get_response_async(AsyncRequestFactory().get("/" + route))
    assert response.content == b"handled"
    assert hops.count == expected_hops(audit, "asgi", route)


@pytest.mark.urls("tests.audit_urls")
@pytest.mark.parametrize("route", ["fail-sync/", "fail-async/"])
@pytest.mark.parametrize("mix", ERROR_MIXES.values(), ids=ERROR_MIXES.keys())
def test_wsgi_exception_hops_match_django(mix: list[str], route: str, hops: HopCounter) -> None:
    with override_settings(MIDDLEWARE=mix):
        audit = audit_project()
        handler = WSGIHandler()
        hops.count = 0
        response = handler.get_response(RequestFactory().get("/" + route))
    assert response.content == b"handled"
    assert hops.count == expected_hops(audit, "wsgi", route)


def logged_adapters(records: list[logging.LogRecord], used: set[str]) -> int:
    """Adapters Django logged for middleware it kept (it also logs one it then throws away)."""
    messages = [r.getMessage() for r in records]
    return sum(
        message.endswith(f"handler adapted for middleware {path}.")
        for message in messages
        for path in used
    )


def top_adapter(interface: str, mix: list[str]) -> int:
    """1 when the outermost layer Django uses runs in the mode foreign to the server."""
    entries, _ = model_middleware(interface == "asgi", mix)
    used = [layer for _, _, layer in entries if layer is not None]
    native = "async" if interface == "asgi" else "sync"
    return int(bool(used) and used[0].mode != native)


@pytest.mark.parametrize("mix", MIXES.values(), ids=MIXES.keys())
def test_adapters_match_djangos_debug_log(
    mix: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Django logs each adapter it puts below a middleware (not the top one) when DEBUG is on."""
    caplog.set_level(logging.DEBUG, logger="django.request")
    with override_settings(MIDDLEWARE=mix, DEBUG=True):
        reports, _ = audit_middleware()
        for interface, handler_class in [("asgi", ASGIHandler), ("wsgi", WSGIHandler)]:
            caplog.clear()
            handler_class()
            adapters = sum(
                r.layers[interface].adapter_hops for r in reports if interface in r.layers
            )
            used = {r.path for r in reports if r.used}
            logged = logged_adapters(caplog.records, used)
            assert logged == adapters - top_adapter(interface, mix)


# --- Real requests through the test clients ---------------------------------------------------

REAL_MIX = [mw.MIXIN_BOTH, mw.SYNC_ONLY, mw.HYBRID, mw.ASYNC_ONLY, mw.MIXIN_VIEW_HOOK]


def thread_switches(seen: list[str]) -> int:
    threads = [entry.split("@", 1)[1] for entry in seen]
    return sum(a != b for a, b in zip(threads, threads[1:], strict=False))


@pytest.mark.urls("tests.audit_urls")
@pytest.mark.parametrize("route", ["sync/", "async/"])
async def test_real_async_request_costs_the_audited_hops(route: str, hops: HopCounter) -> None:
    # The test client's own hops (request_started, response.close) are the baseline.
    # Each client builds its middleware chain on its first request: one client per setting.
    with override_settings(MIDDLEWARE=[]):
        hops.count = 0
        assert (await AsyncClient().get("/async/")).status_code == 200
        baseline = hops.count
    with override_settings(MIDDLEWARE=REAL_MIX):
        audit = audit_project()
        mw.SEEN.clear()
        hops.count = 0
        assert (await AsyncClient().get("/" + route)).status_code == 200
    assert hops.count - baseline == expected_hops(audit, "asgi", route)
    # The layers really ran on other threads: the sync-only layer and the mixin hooks.
    assert thread_switches(mw.SEEN) >= 2
    sync_only = [e for e in mw.SEEN if e.startswith("sync-only@")]
    async_only = [e for e in mw.SEEN if e.startswith("async-only@")]
    assert sync_only[0].split("@")[1] != async_only[0].split("@")[1]


@pytest.mark.urls("tests.audit_urls")
@pytest.mark.parametrize("route", ["sync/", "async/"])
def test_real_sync_request_costs_the_audited_hops(
    route: str, client: Client, hops: HopCounter
) -> None:
    with override_settings(MIDDLEWARE=REAL_MIX):
        audit = audit_project()
        mw.SEEN.clear()
        hops.count = 0
        assert client.get("/" + route).status_code == 200
    assert hops.count == expected_hops(audit, "wsgi", route)
    async_only = [e for e in mw.SEEN if e.startswith("async-only@")]
    sync_only = [e for e in mw.SEEN if e.startswith("sync-only@")]
    assert async_only[0].split("@")[1] != sync_only[0].split("@")[1]


# --- The model itself ------------------------------------------------------------------------


def test_sync_only_between_async_layers_costs_two() -> None:
    reports, chains = audit_middleware([mw.HYBRID, mw.SYNC_ONLY, mw.HYBRID])
    hybrid, sync_only, _ = reports
    assert sync_only.kind == "sync"
    assert sync_only.layers["asgi"].adapter_hops == 2
    assert sync_only.layers["asgi"].mode == "sync"
    assert hybrid.layers["asgi"].hops == 0
    assert hybrid.kind == "hybrid"
    assert chains["asgi"].hops == 2
    assert chains["wsgi"].hops == 0


def test_run_of_sync_layers_shares_two_hops() -> None:
    reports, chains = audit_middleware([mw.SYNC_ONLY, mw.OTHER_SYNC_ONLY])
    assert [r.layers["asgi"].adapter_hops for r in reports] == [1, 1]
    assert chains["asgi"].hops == 2


def test_hybrid_above_sync_only_runs_sync_under_asgi() -> None:
    reports, _ = audit_middleware([mw.MIXIN_BOTH, mw.SYNC_ONLY])
    mixin, sync_only = reports
    assert mixin.layers["asgi"].mode == "sync"
    assert mixin.layers["asgi"].hook_hops == 0  # its hooks run inline, on the sync side
    assert sync_only.layers["asgi"].adapter_hops == 2


def test_mixin_hooks_cost_a_hop_each_under_asgi() -> None:
    reports, chains = audit_middleware([mw.MIXIN_BOTH, mw.MIXIN_REQUEST_ONLY])
    assert [r.layers["asgi"].hook_hops for r in reports] == [2, 1]
    assert [r.layers["wsgi"].hook_hops for r in reports] == [0, 0]
    assert chains["asgi"].hops == 3


def test_not_used_middleware_is_reported_and_skipped() -> None:
    reports, chains = audit_middleware([mw.NOT_USED, mw.HYBRID])
    assert reports[0].used is False
    assert reports[0].layers == {}
    assert reports[0].as_dict()["used"] is False
    assert chains["asgi"].hops == 0


def test_function_middleware_is_sync_only_and_opaque() -> None:
    reports, chains = audit_middleware([mw.FUNCTION])
    assert reports[0].kind == "sync"
    assert reports[0].layers["asgi"].inspected is False
    assert chains["asgi"].hops == 2


def test_async_only_costs_two_under_wsgi() -> None:
    reports, chains = audit_middleware([mw.ASYNC_ONLY])
    assert reports[0].kind == "async"
    assert reports[0].layers["wsgi"].adapter_hops == 2
    assert chains["wsgi"].hops == 2
    assert chains["asgi"].hops == 0


def test_middleware_that_is_neither_sync_nor_async_capable() -> None:
    with pytest.raises(ImproperlyConfigured, match="tests.audit_middleware.Neither must have"):
        audit_middleware(["tests.audit_middleware.Neither"])


def test_middleware_that_cannot_be_imported() -> None:
    with pytest.raises(ImproperlyConfigured, match="'tests.nowhere.Missing' cannot be imported"):
        audit_middleware(["tests.nowhere.Missing"])


@pytest.mark.urls("tests.audit_urls")
def test_views_sync_async_and_class_based() -> None:
    views = {view.route: view for view in audit_views()}
    assert views["sync/"].is_async is False
    assert views["sync/"].view == "tests.audit_views.sync_view"
    assert views["sync/"].name == "sync"
    assert views["async/"].is_async is True
    assert views["pages/sync/"].view_class == "tests.audit_views.SyncPage"
    assert views["pages/sync/"].is_async is False
    assert views["pages/sync/"].name == "pages:sync"
    assert views["pages/async/"].view_class == "tests.audit_views.AsyncPage"
    assert views["pages/async/"].is_async is True
    assert views["^legacy/(?P<pk>[0-9]+)/$"].name == "legacy"
    assert views["template/"].name is None


def test_stand_in_get_response_serves_nothing() -> None:
    # A middleware that calls get_response while it is built would get this error.
    _, _ = model_middleware(True, [mw.HYBRID])
    with pytest.raises(RuntimeError, match="serves no request"):
        audit_chain._sync_stub(None)
    with pytest.raises(RuntimeError, match="serves no request"):
        asyncio.run(audit_chain._async_stub(None))


def test_signals_strong_dead_and_sourceless(monkeypatch: pytest.MonkeyPatch) -> None:
    signal = Signal()

    def strong(sender: object, **kwargs: Any) -> None:
        pass

    def short_lived(sender: object, **kwargs: Any) -> None:
        pass

    signal.connect(strong, weak=False)
    signal.connect(short_lived)
    del short_lived  # its weak reference is dead; Django prunes it lazily
    # The same signal under two names in modules without source: the shorter name wins.
    for name in ["audit_fake_module_b", "audit_fake"]:
        module = types.ModuleType(name)
        module.sig = signal  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, module)
    (report,) = [s for s in audit_signals() if s.signal == "audit_fake.sig"]
    assert [r.receiver for r in report.receivers] == [
        "tests.test_audit.test_signals_strong_dead_and_sourceless.<locals>.strong"
    ]
