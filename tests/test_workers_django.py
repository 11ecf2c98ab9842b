"""Django's own ASGI handler tests pass against the toolkit's handler with the worker pool on."""

from __future__ import annotations

import re

from tests.django_suite import run_django_tests


def test_djangos_asgi_tests_pass_with_the_worker_pool() -> None:
    result = run_django_tests(["asgi"], "tests.workers_asgi_patch")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert re.search(r"^OK", output, re.MULTILINE), output[-5000:]
    leases = re.search(r"django_async_toolkit\.workers granted (\d+) leases", output)
    assert leases is not None, output[-5000:]
    # Their sync views, ORM calls and closing responses ran on leased pool workers.
    assert int(leases.group(1)) >= 5
