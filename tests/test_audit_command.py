"""``manage.py async_audit``: text, JSON, ``--fail-on-hops`` and the exit status."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.backends.signals import connection_created
from django.test import override_settings

from django_async_toolkit import sync as toolkit_sync
from django_async_toolkit.audit import AUDIT_VERSION, audit_project
from django_async_toolkit.management.commands.async_audit import render_text
from tests import audit_middleware as mw
from tests import audit_signals

ROOT = Path(__file__).resolve().parent.parent

MIX = [mw.HYBRID, mw.SYNC_ONLY, mw.MIXIN_BOTH, mw.NOT_USED, mw.FUNCTION, mw.ASYNC_ONLY]


def audit(*args: str, **options: Any) -> str:
    out = io.StringIO()
    call_command("async_audit", *args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.urls("tests.audit_urls")
@override_settings(MIDDLEWARE=MIX, ASYNC_TOOLKIT_INTERFACE="both")
def test_text_report() -> None:
    text = audit()
    assert text.startswith("Served by ASGI and WSGI (ASYNC_TOOLKIT_INTERFACE is 'both').\n")
    lines = text.splitlines()
    row = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  tests.")}
    # kind, then mode and hops under ASGI, then under WSGI.
    assert row[mw.HYBRID] == ["hybrid", "sync", "0*", "sync", "0*"]
    assert row[mw.SYNC_ONLY] == ["sync", "sync", "1*", "sync", "0*"]
    # Above a sync-only layer a hybrid runs sync, under both interfaces: no hook hop.
    assert row[mw.MIXIN_BOTH] == ["hybrid", "sync", "0", "sync", "0"]
    assert row[mw.NOT_USED] == ["sync", "not", "used", "(MiddlewareNotUsed)"]
    # The run of sync layers under ASGI: its two adapters go to its sync-only members.
    assert row[mw.FUNCTION] == ["sync", "sync", "1*", "sync", "0*"]
    assert row[mw.ASYNC_ONLY] == ["async", "async", "0*", "async", "2*"]
    chain = next(line for line in lines if line.startswith("  chain"))
    assert chain.split() == ["chain", "2", "2"]
    assert "  * has a __call__ of its own: hops inside it are not counted." in lines
    assert "  On a template response: ASGI +1, WSGI +0." in lines
    views = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  /")}
    assert views["/sync/"] == ["sync", "tests.audit_views.sync_view", "3", "2"]
    assert views["/async/"] == ["async", "tests.audit_views.async_view", "2", "3"]
    assert views["/pages/async/"] == ["async", "tests.audit_views.AsyncPage.as_view()", "2", "3"]
    assert (
        "Most hops on a request path under ASGI: 3 for /sync/ (tests.audit_views.sync_view)."
        in lines
    )
    assert (
        "Most hops on a request path under WSGI: 3 for /async/ (tests.audit_views.async_view)."
        in lines
    )


def receivers_of(text: str, signal: str) -> list[str]:
    """The receiver lines under ``signal`` in the text report's signals section."""
    lines = text.split(f"\n  {signal}\n", 1)[1].splitlines()
    return list(itertools.takewhile(lambda line: line.startswith("    "), lines))


def test_text_report_of_signals() -> None:
    text = audit()
    assert receivers_of(text, "tests.audit_signals.audited") == [
        "    sync              tests.audit_signals.sync_receiver",
        "    async             tests.audit_signals.async_receiver  (sender: tests.Item)",
        "    async, background tests.audit_signals.background",
        "    sync              tests.audit_signals.Listener.on_audited"
        "  (sender: an object that is not a model or an app)",
    ]
    assert audit_signals.listener  # kept alive: the weak receiver above is live


def test_the_toolkits_own_receivers_are_left_out() -> None:
    # The toolkit notes each new database connection (django_async_toolkit.sync): bookkeeping
    # of its own, which the project can neither see nor change.
    connected = [
        entry[1]() if isinstance(entry[1], weakref.ReferenceType) else entry[1]
        for entry in connection_created.receivers
    ]
    assert toolkit_sync._note_connection_created in connected
    text = audit()
    assert "_note_connection_created" not in text
    assert "django_async_toolkit." not in text.split("Signals (connected receivers):", 1)[1]
    # Django's own receivers and the project's are still listed.
    assert "    sync              django.db.close_old_connections" in text
    assert "tests.audit_signals.sync_receiver" in text
    signals = {s["signal"]: s["receivers"] for s in json.loads(audit("--json"))["signals"]}
    names = [r["receiver"] for receivers in signals.values() for r in receivers]
    assert not [name for name in names if name.startswith("django_async_toolkit.")]
    assert "tests.audit_signals.background" in names  # a project's @background_receiver stays


@pytest.mark.urls("tests.audit_empty_urls")
@override_settings(MIDDLEWARE=[], WSGI_APPLICATION="project.wsgi.application")
def test_text_report_of_an_empty_project() -> None:
    text = audit()
    assert "not known to be served by ASGI" in text
    assert (
        "Middleware, outermost first (mode Django runs it in, hops per request):\n  (none)\n"
        in text
    )
    assert "  (no URL pattern)\n" in text
    assert text.endswith("Most hops on a request path under WSGI: 0 (the chain).\n")


@pytest.mark.urls("tests.audit_urls")
@override_settings(MIDDLEWARE=MIX, ASGI_APPLICATION="project.asgi.application")
def test_json_document() -> None:
    document = json.loads(audit("--json"))
    assert document["version"] == AUDIT_VERSION == 1
    assert document["interface"] == {
        "asgi": True,
        "wsgi": False,
        "explicit": False,
        "source": "inferred: ASGI_APPLICATION is set",
    }
    middleware = {m["path"]: m for m in document["middleware"]}
    assert list(middleware) == MIX
    assert middleware[mw.SYNC_ONLY] == {
        "path": mw.SYNC_ONLY,
        "kind": "sync",
        "used": True,
        "asgi": {
            "mode": "sync",
            "hops": 1,
            "adapter_hops": 1,
            "hook_hops": 0,
            "view_hook_hops": 0,
            "template_response_hops": 0,
            "exception_hops": 0,
            "inspected": False,
            "served_inline": False,
        },
        "wsgi": {
            "mode": "sync",
            "hops": 0,
            "adapter_hops": 0,
            "hook_hops": 0,
            "view_hook_hops": 0,
            "template_response_hops": 0,
            "exception_hops": 0,
            "inspected": False,
            "served_inline": False,
        },
    }
    assert middleware[mw.NOT_USED] == {"path": mw.NOT_USED, "kind": "sync", "used": False}
    assert document["chain"]["asgi"] == {
        "hops": 2,
        "template_response_hops": 1,
        "exception_hops": 1,
    }
    views = {v["route"]: v for v in document["views"]}
    assert views["pages/sync/"] == {
        "route": "pages/sync/",
        "name": "pages:sync",
        "view": "tests.audit_views.SyncPage.as_view()",
        "class": "tests.audit_views.SyncPage",
        "async": False,
        "hops": {"asgi": 3, "wsgi": 2},
    }
    signals = {s["signal"]: s["receivers"] for s in document["signals"]}
    assert signals["tests.audit_signals.audited"][2] == {
        "receiver": "tests.audit_signals.background",
        "async": True,
        "background": True,
        "sender": None,
    }
    assert document["max_hops"] == {"asgi": 3, "wsgi": 3}
    assert "fail_on_hops" not in document


@pytest.mark.urls("tests.audit_urls")
@override_settings(MIDDLEWARE=[mw.SYNC_ONLY], ASYNC_TOOLKIT_INTERFACE="asgi")
def test_fail_on_hops_passes_at_the_limit() -> None:
    # /sync/ costs 3 under ASGI: 2 around the sync-only middleware, 1 for the sync view.
    assert "Most hops on a request path under ASGI: 3" in audit(fail_on_hops=3)


@pytest.mark.urls("tests.audit_urls")
@override_settings(MIDDLEWARE=[mw.SYNC_ONLY], ASYNC_TOOLKIT_INTERFACE="asgi")
def test_fail_on_hops_names_each_path_over_the_limit() -> None:
    with pytest.raises(CommandError) as caught:
        audit("--fail-on-hops", "2")
    message = str(caught.value)
    assert message.startswith("5 request paths cost more than 2 hops: ")
    assert "ASGI 3 for /sync/ (tests.audit_views.sync_view)" in message
    assert "ASGI 3 for /pages/sync/ (tests.audit_views.SyncPage.as_view())" in message
    assert "ASGI 3 for /template/ (tests.audit_views.template_view)" in message
    assert "async/" not in message


@pytest.mark.urls("tests.audit_urls")
@override_settings(MIDDLEWARE=[mw.ASYNC_ONLY], ASYNC_TOOLKIT_INTERFACE="asgi")
def test_fail_on_hops_holds_to_the_chosen_interface() -> None:
    audit("--fail-on-hops", "1")  # ASGI: at most the sync view's hop
    with pytest.raises(CommandError, match=r"^8 request paths cost more than 1 hop; the wor"):
        audit("--fail-on-hops", "1", "--interface", "wsgi")
    with pytest.raises(CommandError, match="WSGI 3 for /async/"):
        audit("--fail-on-hops", "1", "--interface", "both")


@pytest.mark.urls("tests.audit_urls")
@override_settings(MIDDLEWARE=[mw.ASYNC_ONLY], ASYNC_TOOLKIT_INTERFACE="wsgi")
def test_fail_on_hops_shows_the_worst_paths_and_counts_the_rest() -> None:
    with pytest.raises(CommandError) as caught:
        audit("--fail-on-hops", "1")
    message = str(caught.value)
    assert "\n" not in message
    head, listed = message.split(": ", 1)
    assert head == "8 request paths cost more than 1 hop; the worst 5"
    shown, rest = listed.rsplit("; and ", 1)
    assert rest == "3 more (the report above, or --json, lists every path)."
    paths = shown.split("; ")
    assert len(paths) == 5
    # The worst first: the async views cost 3 under WSGI, the sync ones 2.
    hops = [int(path.split()[1]) for path in paths]
    assert hops == sorted(hops, reverse=True)
    assert hops[0] == 3
    assert paths[0] == "WSGI 3 for /async/ (tests.audit_views.async_view)"


@pytest.mark.urls("tests.audit_urls")
@override_settings(MIDDLEWARE=[mw.SYNC_ONLY], ASYNC_TOOLKIT_INTERFACE="asgi")
def test_fail_on_hops_in_json() -> None:
    out = io.StringIO()
    with pytest.raises(CommandError, match="cost more than 2 hops"):
        call_command("async_audit", "--json", "--fail-on-hops", "2", stdout=out)
    verdict = json.loads(out.getvalue())["fail_on_hops"]
    assert verdict["limit"] == 2
    assert verdict["interfaces"] == ["asgi"]
    assert {"interface": "asgi", "route": "sync/", "hops": 3} in verdict["over"]
    assert len(verdict["over"]) == 5


@pytest.mark.parametrize("value", ["-1", "two"])
def test_fail_on_hops_must_be_a_count(value: str) -> None:
    with pytest.raises(CommandError, match="invalid number of hops"):
        audit("--fail-on-hops", value)


@override_settings(MIDDLEWARE=["tests.nowhere.Gone"])
def test_unloadable_middleware_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="cannot be audited: MIDDLEWARE entry 'tests.nowhere"):
        audit()


def run_manage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "django", "async_audit", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_exit_status_from_the_command_line() -> None:
    # tests.urls: /async/ costs 1 hop under WSGI (async_to_sync), /sync/ none.
    ok = run_manage("--fail-on-hops", "1")
    assert ok.returncode == 0, ok.stderr
    assert "Most hops on a request path under WSGI: 1 for /async/" in ok.stdout
    failed = run_manage("--json", "--fail-on-hops", "0")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["version"] == 1
    assert (
        "CommandError: 1 request path cost more than 0 hops: WSGI 1 for /async/" in failed.stderr
    )


@override_settings(MIDDLEWARE=[mw.MIXIN_BOTH])
def test_text_report_without_signals_or_opaque_middleware() -> None:
    text = render_text(replace(audit_project(), signals=[]), ["wsgi"])
    assert "Signals (connected receivers):\n  (none)\n" in text
    assert "*" not in text
