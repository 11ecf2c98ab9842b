"""Django's own tests of its middleware pass with the toolkit serving that middleware inline.

``tests.middleware_builtins_patch`` puts the mechanism where those tests reach the middleware:
the toolkit's ASGI handler, ``AsyncClient``'s handler, ``await mw(request)`` on a directly built
instance, and every hook called directly from a sync test, which runs through the adapter on an
event loop (inline when its rule says no I/O, behind a hop otherwise). A hook run inline that
touches the database or a session store fails the test it is in.
"""

from __future__ import annotations

import re

from tests.django_suite import run_django_tests

LABELS = [
    "middleware",
    "csrf_tests",
    "sessions_tests",
    "messages_tests",
    "auth_tests.test_middleware",
    "middleware_exceptions",
    "asgi",
]


def test_djangos_middleware_tests_pass_with_inline_serving() -> None:
    result = run_django_tests(LABELS, "tests.middleware_builtins_patch")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert re.search(r"^OK", output, re.MULTILINE), output[-5000:]
    counts = re.search(
        r"inline middleware: (\d+) hooks inline, (\d+) behind a hop, (\d+) direct calls routed",
        output,
    )
    assert counts is not None, output[-5000:]
    inline, hops, direct = map(int, counts.groups())
    # Hundreds of hook calls of Django's tests went through the adapter, most of them inline.
    assert direct >= 200, counts.group(0)
    assert inline > hops > 0, counts.group(0)
    served = re.search(r"django_async_toolkit\.asgi served (\d+) requests", output)
    assert served is not None and int(served.group(1)) >= 10, output[-5000:]
