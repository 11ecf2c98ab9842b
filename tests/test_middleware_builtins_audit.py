"""``async_audit``, the ``W001`` check and ``E001``: Django's own middleware served inline.

The audit counts the served classes at 0 hops while ``ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE``
is on (the toolkit's handler serves them; a hook pays a hop only when it does I/O), a hop per
hook when it is off (Django's handler); a subclass keeps Django's count.
"""

from __future__ import annotations

import io
import json

import django
import pytest
from django.core.management import call_command
from django.test import override_settings

from django_async_toolkit.audit import audit_middleware
from django_async_toolkit.checks import check_middleware, check_settings
from django_async_toolkit.middleware.builtins import SERVED, is_served
from tests import audit_middleware as mw
from tests.test_middleware_builtins import LOGIN_REQUIRED, STARTPROJECT_MIDDLEWARE

ALL_SERVED = [path for path in SERVED if path != LOGIN_REQUIRED or django.VERSION >= (5, 1)]
SUBCLASS = "tests.test_middleware_builtins_threads.SubclassedXFrame"


def test_startproject_stack_costs_no_hop_under_asgi() -> None:
    with override_settings(MIDDLEWARE=STARTPROJECT_MIDDLEWARE):
        reports, chains = audit_middleware()
    assert chains["asgi"].hops == 0
    for report in reports:
        layer = report.layers["asgi"]
        assert (layer.mode, layer.hops, layer.served_inline) == ("async", 0, True), report.path
        assert report.layers["wsgi"].served_inline is False


def test_every_served_class_costs_no_hop() -> None:
    with override_settings(MIDDLEWARE=ALL_SERVED):
        reports, chains = audit_middleware()
    assert chains["asgi"].hops == 0
    assert all(report.layers["asgi"].served_inline for report in reports)


def test_with_the_setting_off_django_counts_13() -> None:
    with override_settings(
        MIDDLEWARE=STARTPROJECT_MIDDLEWARE, ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE=False
    ):
        reports, chains = audit_middleware()
    assert chains["asgi"].hops == 13
    assert not any(report.layers["asgi"].served_inline for report in reports)


def test_a_subclass_is_counted_as_djangos_adaptation() -> None:
    stack = [*STARTPROJECT_MIDDLEWARE[:-1], SUBCLASS]
    with override_settings(MIDDLEWARE=stack):
        reports, chains = audit_middleware()
    assert chains["asgi"].hops == 1  # XFrameOptionsMiddleware's process_response
    assert reports[-1].layers["asgi"].served_inline is False
    assert not is_served(type("Sub", (object,), {}))


@pytest.mark.urls("tests.audit_urls")
def test_async_audit_json_and_fail_on_hops() -> None:
    out = io.StringIO()
    with override_settings(
        MIDDLEWARE=STARTPROJECT_MIDDLEWARE,
        ASYNC_TOOLKIT_INTERFACE="asgi",
        ROOT_URLCONF="tests.test_middleware_builtins",
    ):
        call_command("async_audit", "--json", stdout=out)
        # Every async view of that URLconf: 0 hops; --fail-on-hops 0 passes.
        call_command("async_audit", "--fail-on-hops", "0", stdout=io.StringIO())
    document = json.loads(out.getvalue())
    assert document["chain"]["asgi"]["hops"] == 0
    assert [m["asgi"]["served_inline"] for m in document["middleware"]] == [True] * 7
    assert document["max_hops"]["asgi"] == 0


def test_w001_says_the_rewritten_chain_costs_nothing() -> None:
    """A sync-only middleware at the bottom drags the stack into sync; rewritten, the served
    classes above it run async at 0 hops instead of the 13 that Django's handler pays."""
    stack = [*STARTPROJECT_MIDDLEWARE, mw.SYNC_ONLY]
    with override_settings(MIDDLEWARE=stack, ASYNC_TOOLKIT_INTERFACE="asgi"):
        (inline,) = [w for w in check_middleware() if w.id == "async_toolkit.W001"]
        with override_settings(ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE=False):
            (stock,) = [w for w in check_middleware() if w.id == "async_toolkit.W001"]
    assert "made async-capable, the chain would cost 0." in inline.msg
    assert "made async-capable, the chain would cost 13, because" in stock.msg


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_e001_names_an_invalid_value(value: object) -> None:
    with override_settings(ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE=value):
        (error,) = [e for e in check_settings() if "INLINE" in e.msg]
    assert error.id == "async_toolkit.E001"
    assert f"ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE is {value!r}" in error.msg
    assert "True or False" in error.msg
