"""The ASGI guide's examples (docs/examples/asgi_*.py) run and do what the guide says."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from django_async_toolkit.asgi import ASGIHandler
from tests.docs_examples import EXAMPLES, load_example


def test_project_asgi_example_builds_the_toolkit_handler() -> None:
    module = load_example("asgi_project_asgi")
    assert isinstance(module.application, ASGIHandler)


@pytest.mark.parametrize("args", [["--requests", "20", "--rounds", "2"]])
def test_compare_example_prints_both_rates(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "asgi_compare.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^Django ASGIHandler: +\d+ requests/s$", result.stdout, re.MULTILINE)
    assert re.search(r"^toolkit ASGIHandler: +\d+ requests/s$", result.stdout, re.MULTILINE)
    assert re.search(r"^ratio: \d+\.\dx$", result.stdout, re.MULTILINE)
