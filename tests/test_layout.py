"""The public import paths of the design, the package's import on a platform without fork, and
the modules' length."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import django_async_toolkit

#: Every public name, at the import path the docs and DESIGN.md give for it.
PUBLIC = {
    "django_async_toolkit.middleware": [
        "AsyncMiddleware",
        "BlockingDetectorMiddleware",
        "ConcurrencyLimitMiddleware",
        "TimeoutMiddleware",
        "request_timeout",
    ],
    "django_async_toolkit.signals": [
        "asend",
        "asend_robust",
        "background_receiver",
        "drain_background",
        "drain_background_sync",
        "send_background",
        "stop_background_loop",
    ],
    "django_async_toolkit.management": [
        "AsyncAppCommand",
        "AsyncBaseCommand",
        "AsyncLabelCommand",
        "acall_command",
    ],
    "django_async_toolkit.sync": [
        "db_sync_to_async",
        "ensure_async",
        "ensure_sync",
        "run_blocking",
    ],
    "django_async_toolkit.blocking": [
        "BlockingDetector",
        "BlockingEvent",
        "detect_blocking",
        "get_process_detector",
        "start_process_detector",
        "stop_process_detector",
    ],
    "django_async_toolkit.asgi": ["ASGIHandler", "get_asgi_application"],
    "django_async_toolkit.migrations": ["RunPythonAsync"],
    "django_async_toolkit.checks": [],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_import_from_their_documented_path(module: str) -> None:
    imported = importlib.import_module(module)
    for name in PUBLIC[module]:
        assert callable(getattr(imported, name)), f"{module}.{name}"
        assert name in imported.__all__, f"{name} is not in {module}.__all__"


WITHOUT_FORK = """
import os, sys
# As on Windows, where processes are not forked (asyncio, too, looks for os.fork first).
del os.fork, os.register_at_fork
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=["django_async_toolkit"])
django.setup()
import django_async_toolkit.asgi, django_async_toolkit.signals, django_async_toolkit.sync
import django_async_toolkit.management, django_async_toolkit.checks
print("imported")
"""


def test_the_package_imports_where_os_has_no_register_at_fork() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_FORK], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "imported"


def test_no_module_of_the_package_is_much_longer_than_500_lines() -> None:
    # DESIGN.md's layering: a module longer than this holds several jobs; split it by job.
    package = Path(django_async_toolkit.__file__).parent
    lengths = {
        str(path.relative_to(package)): len(path.read_text(encoding="utf-8").splitlines())
        for path in package.rglob("*.py")
    }
    assert lengths, package
    too_long = {name: count for name, count in lengths.items() if count > 510}
    assert not too_long, too_long
