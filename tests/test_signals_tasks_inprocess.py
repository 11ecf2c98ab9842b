"""In-process background dispatch made safer (issue 17): drain at exit, no-lifespan warning.

A real script (tests/signals_exit_script.py) sends thousands of background dispatches and ends
without ``drain_background_sync()``: at exit the toolkit drains them (up to
``ASYNC_TOOLKIT_DRAIN_TIMEOUT``) before it stops its loop, so all of them run, no traceback is
printed, and only a dispatch still running after the timeout is cancelled and reported as such.

A server that never sends lifespan startup (daphne; here uvicorn with ``lifespan="off"``) gets one
warning at the first request: nothing will drain background work at its shutdown.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.test import override_settings

from django_async_toolkit.asgi import NO_LIFESPAN_WARNING, ASGIHandler
from tests.servers import serve_asgi

SCRIPT = Path(__file__).resolve().parent / "signals_exit_script.py"
ROOT = SCRIPT.parent.parent


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("pool", ["pool", "no-pool"])
def test_a_script_that_forgets_to_drain_loses_nothing_and_prints_no_traceback(pool: str) -> None:
    result = run_script("2000", "120", pool)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["sent", "finished 2000 of 2000"]
    assert "Traceback" not in result.stderr
    assert "cancelled" not in result.stderr


def test_only_what_still_runs_after_the_drain_timeout_is_cancelled_and_reported() -> None:
    # The drain waits 15 s for the stuck receiver: long enough for the 200 others to finish on
    # a loaded machine (with 1 s, CI's busy cores left some still finishing, rightly cancelled).
    result = run_script("200", "15", "stuck")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["sent", "finished 200 of 200"]
    cancelled = [line for line in result.stderr.splitlines() if "cancelled" in line]
    assert len(cancelled) == 1, result.stderr
    assert "stuck_receiver" in cancelled[0]
    assert "Traceback" not in result.stderr


def no_lifespan_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage() == NO_LIFESPAN_WARNING]


@pytest.mark.parametrize(("lifespan", "warnings"), [("off", 1), ("on", 0)])
@override_settings(ROOT_URLCONF="tests.asgi_urls")
def test_a_server_without_lifespan_gets_one_warning_at_the_first_request(
    caplog: pytest.LogCaptureFixture, lifespan: str, warnings: int
) -> None:
    caplog.set_level(logging.WARNING, logger="django_async_toolkit.asgi")
    with serve_asgi(ASGIHandler(), lifespan=lifespan) as url:
        for _ in range(3):
            assert httpx.get(f"{url}/plain/", timeout=30).status_code == 200
    assert len(no_lifespan_warnings(caplog)) == warnings
    if warnings:
        assert "background_receiver(task=...)" in NO_LIFESPAN_WARNING


def test_an_exit_drain_that_times_out_with_sync_work_queued_still_exits() -> None:
    """Dispatches whose sync calls were still queued when the drain timed out are cancelled.

    Their cleanup used to wait for the draining thread, which had stopped running calls: the
    interpreter never exited.
    """
    result = run_script("200", "0.05", "stuck")
    assert result.returncode == 0, result.stderr
    cancelled = [line for line in result.stderr.splitlines() if "cancelled" in line]
    assert any("stuck_receiver" in line for line in cancelled), result.stderr
    assert "Traceback" not in result.stderr
