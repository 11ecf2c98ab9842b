"""pytest plugin of django-async-toolkit (registered through the ``pytest11`` entry point).

It adds the ``no_blocking`` fixture and marker: an async test that uses either fails when its
event loop was blocked longer than a threshold, with the blocking file, line and duration::

    async def test_view(async_client, no_blocking):
        await async_client.get("/orders/")

    @pytest.mark.no_blocking(threshold=0.05)
    async def test_fast_view(async_client):
        await async_client.get("/orders/")

The threshold comes from the marker's ``threshold``, else the ``async_toolkit_blocking_threshold``
ini option, else 0.1 seconds.

What a process does once is not blocking code: before the test body is watched, the plugin imports
the URLconf (and so the views it names) and the ``MIDDLEWARE`` classes, which a test client's first
request would otherwise import on the event loop, and starts asgiref's thread for thread-sensitive
sync code; and a stall whose stack is inside an ``import`` (a module imported for the first time
during the test) is left out.

The plugin is loaded in every pytest run of a project that installs the package, so this module
imports nothing but pytest and the standard library at import time, and never touches Django's
settings: :mod:`django_async_toolkit.blocking` is imported only by a test that asks for it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import unittest
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from django_async_toolkit.blocking import BlockingEvent

MARKER = "no_blocking"
INI_THRESHOLD = "async_toolkit_blocking_threshold"
DEFAULT_THRESHOLD = 0.1


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_THRESHOLD,
        help="django-async-toolkit: seconds an async test's event loop may be blocked under the "
        f"no_blocking fixture or marker (default {DEFAULT_THRESHOLD}).",
        default=str(DEFAULT_THRESHOLD),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(threshold=None): fail this async test when its event loop is blocked longer "
        f"than threshold seconds (default: the {INI_THRESHOLD} ini option). "
        "From django-async-toolkit.",
    )


def _parse_threshold(value: object, where: str) -> float:
    number: object = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if (
        not isinstance(number, int | float)
        or isinstance(number, bool)
        or not 0 < number < float("inf")
    ):
        pytest.fail(
            f"{where} is {value!r}; it must be a number of seconds greater than 0.",
            pytrace=False,
        )
    return float(number)


def _threshold(item: pytest.Item) -> float:
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        if marker.args or set(marker.kwargs) - {"threshold"}:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes one keyword argument, threshold=<seconds>; "
                f"{item.nodeid} passes {marker.args!r} {marker.kwargs!r}.",
                pytrace=False,
            )
        if marker.kwargs.get("threshold") is not None:
            return _parse_threshold(
                marker.kwargs["threshold"], f"@pytest.mark.{MARKER}(threshold=...)"
            )
    return _parse_threshold(item.config.getini(INI_THRESHOLD), f"the {INI_THRESHOLD} ini option")


def _failure_message(name: str, events: list[BlockingEvent]) -> str:
    worst = max(events, key=lambda event: event.duration)
    lines = [
        f"{name} blocked its event loop {len(events)} time(s), at worst for "
        f"{worst.duration:.3f} s (threshold {worst.threshold:g} s):"
    ]
    for event in events:
        lines.append(f"- {event}")
    lines.append("")
    lines.append(worst.format(project_only=True))
    return "\n".join(lines)


def warm_django() -> bool:
    """Import what the first request of a Django test client imports: URLconf, views, middleware.

    Importing them is a once-per-process cost (on a slow machine, long enough to count as a
    blocked loop), not blocking code of the test; so it is paid before the test body is watched.
    Does nothing unless Django's settings are configured and its apps loaded; returns whether
    they are.
    An error here is left for the test to meet where it really happens: a test that never
    resolves a URL must not fail because the URLconf is broken.
    """
    django_conf = sys.modules.get("django.conf")
    django_apps = sys.modules.get("django.apps")
    if django_conf is None or django_apps is None:
        return False
    if not django_conf.settings.configured or not django_apps.apps.ready:
        return False
    from django.urls import get_resolver, get_urlconf
    from django.utils.module_loading import import_string

    # The test meets the same error itself, where it matters.
    with contextlib.suppress(Exception):
        resolver = get_resolver(get_urlconf())
        resolver.url_patterns  # noqa: B018 - imports the URLconf, its includes and views
        resolver.reverse_dict  # noqa: B018 - fills the caches that resolve() and reverse() use
    for path in django_conf.settings.MIDDLEWARE:
        with contextlib.suppress(Exception):
            import_string(path)
    return True


def _nothing() -> None:
    pass


async def start_sync_thread() -> None:
    """Start asgiref's thread for thread-sensitive sync code, if it is not running yet.

    A test client's first request sends ``request_started`` to Django's sync receivers through
    ``sync_to_async``; the loop waits in ``Thread.start()`` until that thread runs, which on an
    overloaded machine can take longer than the threshold. Once per process, like the imports.
    """
    from asgiref.sync import sync_to_async

    await sync_to_async(_nothing)()


_IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_IMPORT_PATHS = tuple(
    os.path.join("importlib", name) for name in ("_bootstrap.py", "_bootstrap_external.py")
)


def in_import(event: BlockingEvent) -> bool:
    """Whether the loop was blocked inside an ``import`` (its stack runs through importlib)."""
    return any(
        frame.filename in _IMPORT_FILES or frame.filename.endswith(_IMPORT_PATHS)
        for frame in event.stack
    )


def _watched(
    test: Callable[..., Any], name: str, threshold: float, events: list[BlockingEvent]
) -> Callable[..., Any]:
    from django_async_toolkit.blocking import detect_blocking

    @functools.wraps(test)
    async def watched(*args: Any, **kwargs: Any) -> Any:
        if warm_django():
            await start_sync_thread()
        detector = detect_blocking(threshold)
        try:
            async with detector:
                result = await test(*args, **kwargs)
        except BaseException as exc:
            seen = [event for event in detector.events if not in_import(event)]
            events.extend(seen)
            if seen:
                exc.add_note(_failure_message(name, seen))
            raise
        seen = [event for event in detector.events if not in_import(event)]
        events.extend(seen)
        if seen:
            pytest.fail(_failure_message(name, seen), pytrace=False)
        return result

    return watched


@pytest.fixture
def no_blocking(request: pytest.FixtureRequest) -> Iterator[list[BlockingEvent]]:
    """Fail the (async) test if its event loop is blocked past the threshold.

    The threshold is the ``no_blocking`` marker's ``threshold``, else the
    ``async_toolkit_blocking_threshold`` ini option, else 0.1 s.
    Yields the list of :class:`~django_async_toolkit.blocking.BlockingEvent` seen (filled when
    the test body ends).
    Only the test function's own body is watched, not the setup of its fixtures; the URLconf and
    middleware are imported and asgiref's sync thread started before it (:func:`warm_django`,
    :func:`start_sync_thread`), and stalls inside an ``import`` are left out (:func:`in_import`).
    """
    item = request.node
    if not _is_async_test(item):
        pytest.fail(
            f"The {MARKER} fixture watches the event loop of an async test function; "
            f"{item.nodeid} is not one. In a unittest.TestCase (Django's TestCase included), "
            "use `async with django_async_toolkit.blocking.detect_blocking() as events:` "
            "in the test instead.",
            pytrace=False,
        )
    assert isinstance(item, pytest.Function)
    events: list[BlockingEvent] = []
    original = item.obj
    item.obj = _watched(original, item.name, _threshold(item), events)
    try:
        yield events
    finally:
        item.obj = original


@pytest.fixture(autouse=True)
def _async_toolkit_no_blocking_marker(request: pytest.FixtureRequest) -> None:
    """Apply the ``no_blocking`` fixture to async tests that carry the ``no_blocking`` marker."""
    item = request.node
    if item.get_closest_marker(MARKER) is not None and _is_async_test(item):
        request.getfixturevalue(MARKER)


def _is_async_test(item: pytest.Item) -> bool:
    if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(item.obj):
        return False
    # unittest runs its own methods (Django's TestCase wraps async ones in async_to_sync).
    return not (item.cls is not None and issubclass(item.cls, unittest.TestCase))
