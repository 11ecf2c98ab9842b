"""Fidelity: Django's own ``signals`` and ``dispatch`` tests pass with the toolkit's asend."""

from __future__ import annotations

import django
import pytest

from tests.django_suite import run_django_tests

pytestmark = pytest.mark.skipif(
    django.VERSION < (5, 0), reason="Signal.asend and its tests exist from Django 5.0"
)


def test_django_signal_tests_pass_with_toolkit_asend() -> None:
    result = run_django_tests(["signals", "dispatch"], "tests.signals_patch")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "OK" in output
    # The robust test's failure is logged by the toolkit, which proves the patch was in place.
    assert "Signal receiver signals.tests.AsyncReceiversTests.test_asend_robust" in output
