"""The audit guide's examples run, and what the guide says about them holds."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.test import AsyncClient, Client, override_settings

from django_async_toolkit.audit import audit_middleware
from django_async_toolkit.checks import check_middleware
from tests.docs_examples import load_example

fix = load_example("audit_fix", shared=True)
example_settings = load_example("audit_settings", shared=True)
ci = load_example("audit_ci", shared=True)

LEGACY = f"{fix.__name__}.LegacyPoweredByMiddleware"
FIXED = f"{fix.__name__}.PoweredByMiddleware"
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"


def stack(last: str, *, sessions: bool = False) -> list[str]:
    """The settings example's MIDDLEWARE with our own middleware at the bottom."""
    entries = [e for e in example_settings.MIDDLEWARE if not e.startswith("orders.")]
    if sessions:  # the stack of the guide's sample output
        entries.insert(2, SESSIONS)
    return [*entries, last]


# Django's own middleware costs 0 hops when the toolkit's handler serves it inline (the default),
# a hop per hook with ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE = False (as under Django's handler).
REWRITTEN_COSTS = [(False, True, 0), (True, True, 0), (False, False, 4), (True, False, 6)]


@pytest.mark.parametrize(("sessions", "inline", "rewritten"), REWRITTEN_COSTS)
def test_legacy_middleware_warns_and_drags_the_stack_into_sync(
    sessions: bool, inline: bool, rewritten: int
) -> None:
    with override_settings(
        ASYNC_TOOLKIT_INTERFACE=example_settings.ASYNC_TOOLKIT_INTERFACE,
        ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE=inline,
        MIDDLEWARE=stack(LEGACY, sessions=sessions),
    ):
        (warning,) = [w for w in check_middleware() if w.id == "async_toolkit.W001"]
        reports, chains = audit_middleware()
    assert warning.obj == LEGACY
    because = ", because" if rewritten else "."
    assert f"made async-capable, the chain would cost {rewritten}{because}" in warning.msg
    assert [r.layers["asgi"].mode for r in reports] == ["sync"] * len(reports)
    assert chains["asgi"].hops == 2


@pytest.mark.parametrize(("sessions", "inline", "hops"), REWRITTEN_COSTS)
def test_rewritten_middleware_costs_nothing_itself(
    sessions: bool, inline: bool, hops: int
) -> None:
    with override_settings(
        ASYNC_TOOLKIT_INTERFACE="asgi",
        ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE=inline,
        MIDDLEWARE=stack(FIXED, sessions=sessions),
    ):
        assert check_middleware() == []
        reports, chains = audit_middleware()
    assert reports[-1].layers["asgi"].hops == 0
    assert chains["asgi"].hops == hops


@pytest.mark.parametrize("middleware", [LEGACY, FIXED])
def test_both_set_the_header_under_wsgi(middleware: str, client: Client) -> None:
    with override_settings(MIDDLEWARE=[middleware]):
        assert client.get("/sync/")["X-Powered-By"] == "orders"


@pytest.mark.parametrize("middleware", [LEGACY, FIXED])
async def test_both_set_the_header_under_asgi(middleware: str) -> None:
    with override_settings(MIDDLEWARE=[middleware]):
        assert (await AsyncClient().get("/async/"))["X-Powered-By"] == "orders"


def test_ci_script_lists_the_costliest_paths() -> None:
    out = io.StringIO()
    with override_settings(ASYNC_TOOLKIT_INTERFACE="asgi", MIDDLEWARE=stack(LEGACY)):
        call_command("async_audit", "--json", stdout=out)
    assert ci.costliest_paths(json.loads(out.getvalue())) == [
        "/sync/ (tests.views.sync_view): 3 hops"
    ]


def test_ci_script_refuses_an_unknown_version() -> None:
    with pytest.raises(ValueError, match="unknown async_audit JSON version 2"):
        ci.costliest_paths({"version": 2})
