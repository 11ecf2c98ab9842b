"""Fidelity: Django's own ``migrations`` tests pass with every ``RunPython`` as ``RunPythonAsync``.

``tests.migrations_patch`` puts a ``RunPython`` stand-in built on
:class:`django_async_toolkit.migrations.RunPythonAsync` in place of Django's before Django's test
migrations are imported; their sync functions run through ``sync_to_async`` on the migration's
thread, and keep their names and docstrings, which ``migrate --plan`` prints.
"""

from __future__ import annotations

import re

from tests.django_suite import run_django_tests


def test_djangos_migrations_tests_pass_with_run_python_async() -> None:
    result = run_django_tests(["migrations"], "tests.migrations_patch")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert re.search(r"^OK", output, re.MULTILINE), output[-5000:]
    ran = re.search(r"django_async_toolkit\.migrations ran (\d+) RunPython steps", output)
    assert ran is not None, output[-5000:]
    # Django's migration tests apply and unapply a few dozen RunPython steps; they ran through
    # RunPythonAsync (a count of 0 would mean the stand-in was never used).
    assert int(ran.group(1)) >= 10
