"""The blocking guide's examples (docs/examples/blocking_*.py) do what the guide says."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import AsyncClient, override_settings

from django_async_toolkit.blocking import stop_process_detector
from django_async_toolkit.checks import check_settings

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).parent.parent / "docs" / "examples"


def marked_line(path: Path, marker: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.rstrip().endswith(f"# {marker}"):
            return number
    raise LookupError(marker)


def test_find_example_logs_the_blocking_line() -> None:
    example = EXAMPLES / "blocking_find.py"
    line = marked_line(example, "a sync call hiding in async code")
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout == ""
    warnings = [
        text for text in result.stderr.splitlines() if text.startswith("WARNING django_async")
    ]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith(
        "WARNING django_async_toolkit.blocking: Event loop blocked for 0."
    )
    assert warnings[0].endswith(f"blocking_find.py:{line} in render_invoice")


def example_settings() -> dict[str, Any]:
    namespace = runpy.run_path(str(EXAMPLES / "blocking_settings.py"))
    return {name: value for name, value in namespace.items() if name.isupper()}


@pytest.mark.urls("tests.blocking_urls")
async def test_settings_example_adds_server_timing(async_client: AsyncClient) -> None:
    settings = example_settings()
    del settings["LOGGING"]  # applied only at start-up; checked in a process of its own below
    try:
        with override_settings(**settings):
            assert check_settings() == []
            response = await async_client.get("/quick/")
    finally:
        stop_process_detector()
    assert response["Server-Timing"].startswith("loop-lag;dur=")


def test_settings_example_logging_configures() -> None:
    code = (
        "import logging, logging.config, runpy, sys\n"
        f"logging.config.dictConfig(runpy.run_path({str(EXAMPLES / 'blocking_settings.py')!r})"
        "['LOGGING'])\n"
        "logger = logging.getLogger('django_async_toolkit.blocking')\n"
        "logger.warning('stalled')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stderr == "stalled\n"


def test_pytest_example_fails_the_blocking_test(pytester: pytest.Pytester) -> None:
    example = EXAMPLES / "blocking_pytest.py"
    line = marked_line(example, "blocks the loop for 200 ms: this test fails, naming this line")
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_example=example.read_text())
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:django")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_uses_the_marker blocked its event loop 1 time(s)*(threshold 0.05 s):",
            f"*at *test_example.py:{line} in test_uses_the_marker",
        ]
    )
