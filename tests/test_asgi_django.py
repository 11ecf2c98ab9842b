"""Django's own ASGI handler tests, run against the toolkit's handler.

``tests.asgi_patch`` puts :class:`django_async_toolkit.asgi.ASGIHandler` in place of Django's
before Django's ``asgi`` test module imports it: every request of that module goes through ours.
The ``handlers`` module runs alongside; none of its requests reaches ``ASGIHandler`` (they go
through the test clients and ``WSGIHandler``), it guards the ``BaseHandler`` request cycle that our
handler inherits unchanged.
"""

from __future__ import annotations

import re

from tests.django_suite import run_django_tests


def test_djangos_asgi_tests_pass_with_our_handler() -> None:
    result = run_django_tests(["asgi", "handlers"], "tests.asgi_patch")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert re.search(r"^OK", output, re.MULTILINE), output[-5000:]
    served = re.search(r"django_async_toolkit\.asgi served (\d+) requests", output)
    assert served is not None, output[-5000:]
    # Django's asgi tests send a dozen requests (4.2) or more; they went through our handler.
    assert int(served.group(1)) >= 10
