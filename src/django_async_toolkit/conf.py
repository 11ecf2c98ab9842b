"""The toolkit's settings, read from ``django.conf.settings`` at use time.

Every setting is a top-level Django setting named ``ASYNC_TOOLKIT_<NAME>``.
Values are read each time they are used, so ``override_settings`` works, and validated on the way:
an invalid value raises :class:`~django.core.exceptions.ImproperlyConfigured` naming the setting,
the value and what is allowed.
The ``async_toolkit.E001`` system check reports the same problems at start-up.

This module imports nothing else from the package but ``_validation`` (which imports nothing of
it): a number of seconds here is what it is for every function of the toolkit.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from django_async_toolkit._validation import is_positive_int, is_seconds

PREFIX = "ASYNC_TOOLKIT_"

EVENT_LOOPS = ("asyncio", "uvloop")
INTERFACES = ("asgi", "wsgi", "both")


def _tasks_installed() -> bool:
    """Whether Django Tasks is importable: ``django.tasks`` (6.0+) or the backport."""
    return any(importlib.util.find_spec(name) for name in ("django.tasks", "django_tasks"))


def _tasks_alias(value: object) -> bool:
    if not isinstance(value, str) or not _tasks_installed():
        return False
    # Without a TASKS setting, Django Tasks has one backend: "default" (the immediate one).
    return value in getattr(settings, "TASKS", {"default": None})


#: Upper bounds past which a value is a mistake, not a choice (``BLOCKING_WORKERS = 10**9``
#: would try to start a billion threads).
MAX_THREADS = 1024
MAX_SECONDS = 24 * 3600.0


def _positive_seconds(value: object) -> bool:
    return is_seconds(value) and value <= MAX_SECONDS  # type: ignore[operator]


def _non_negative_seconds(value: object) -> bool:
    return is_seconds(value, zero=True) and value <= MAX_SECONDS  # type: ignore[operator]


_positive_int = is_positive_int


def _thread_count(value: object) -> bool:
    return is_positive_int(value) and value <= MAX_THREADS  # type: ignore[operator]


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or check(value)


def _one_of(choices: tuple[str, ...]) -> Callable[[object], bool]:
    return lambda value: value in choices


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _default_blocking_workers() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


@dataclass(frozen=True)
class Setting:
    """One ``ASYNC_TOOLKIT_*`` setting: its default, its check and what it allows, in words."""

    name: str
    default: Callable[[], object]
    valid: Callable[[object], bool]
    allowed: str

    @property
    def full_name(self) -> str:
        return PREFIX + self.name


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting(
            "REQUEST_TIMEOUT",
            lambda: None,
            _optional(_positive_seconds),
            "a number of seconds greater than 0 and at most a day (86400), or None to disable "
            "the timeout",
        ),
        Setting(
            "MAX_CONCURRENT_REQUESTS",
            lambda: None,
            _optional(_positive_int),
            "an integer of at least 1, or None for no limit",
        ),
        Setting(
            "CONCURRENCY_WAIT",
            lambda: 0.1,
            _non_negative_seconds,
            "a number of seconds from 0 to 86400 (how long a request may wait for a slot)",
        ),
        Setting(
            "RETRY_AFTER",
            lambda: 1,
            _positive_int,
            "an integer number of seconds of at least 1 (the Retry-After header of a 503)",
        ),
        Setting(
            "BLOCKING_DETECTOR",
            lambda: False,
            _is_bool,
            "True or False (run the blocking detector for the whole process)",
        ),
        Setting(
            "BLOCKING_THRESHOLD",
            lambda: 0.1,
            _positive_seconds,
            "a number of seconds greater than 0 and at most 86400 (how long a stall must last "
            "to be reported)",
        ),
        Setting(
            "SERVER_TIMING",
            lambda: False,
            _is_bool,
            "True or False (add a Server-Timing entry with the event loop lag seen)",
        ),
        Setting(
            "EVENT_LOOP",
            lambda: "asyncio",
            _one_of(EVENT_LOOPS),
            "'asyncio' or 'uvloop'",
        ),
        Setting(
            "BLOCKING_WORKERS",
            _default_blocking_workers,
            _thread_count,
            f"an integer from 1 to {MAX_THREADS} (threads in the run_blocking() pool)",
        ),
        Setting(
            "SYNC_WORKERS",
            lambda: 8,
            _optional(_thread_count),
            f"an integer from 1 to {MAX_THREADS} (reused threads for the sync work of requests), "
            "or None for Django's thread per request",
        ),
        Setting(
            "DRAIN_TIMEOUT",
            lambda: 10.0,
            _optional(_positive_seconds),
            "a number of seconds greater than 0 and at most 86400, or None to wait without limit",
        ),
        Setting(
            "INTERFACE",
            lambda: None,
            _optional(_one_of(INTERFACES)),
            "'asgi', 'wsgi', 'both', or None to infer it from ASGI_APPLICATION/WSGI_APPLICATION",
        ),
        Setting(
            "INLINE_DJANGO_MIDDLEWARE",
            lambda: True,
            _is_bool,
            "True or False (serve Django's own middleware without thread hops under ASGI)",
        ),
        Setting(
            "BACKGROUND_TASKS",
            lambda: None,
            _optional(_tasks_alias),
            "None, or the alias of a backend of the TASKS setting, with Django Tasks installed "
            "(built into Django 6.0+; on Django 4.2/5.2: pip install "
            "'django-async-toolkit[tasks]' and add 'django_tasks' to INSTALLED_APPS)",
        ),
    ]
}


def describe_problem(setting: Setting, value: object) -> str:
    """The sentence that the check and the error share for an invalid value."""
    return f"{setting.full_name} is {value!r}; it must be {setting.allowed}."


def unknown_settings() -> list[tuple[str, str | None]]:
    """Each ``ASYNC_TOOLKIT_*`` name in the settings that is not one of the toolkit's settings.

    With it, the closest real name (a typo's likely intent), or ``None``.
    """
    unknown = []
    for name in sorted(dir(settings)):
        if name.startswith(PREFIX) and name[len(PREFIX) :] not in SETTINGS:
            close = difflib.get_close_matches(name[len(PREFIX) :], SETTINGS, n=1, cutoff=0.75)
            unknown.append((name, PREFIX + close[0] if close else None))
    return unknown


def unknown_setting_message(name: str, close: str | None) -> str:
    """The sentence that the W007 check and the lifespan's log share for an unknown name."""
    guess = f" Did you mean {close}?" if close else ""
    return f"{name} is not a setting of django-async-toolkit: it has no effect.{guess}"


def invalid_settings() -> list[tuple[Setting, object]]:
    """Each toolkit setting that is set to a value it does not allow, with that value."""
    problems = []
    for setting in SETTINGS.values():
        if hasattr(settings, setting.full_name):
            value = getattr(settings, setting.full_name)
            if not setting.valid(value):
                problems.append((setting, value))
    return problems


class Conf:
    """The toolkit's settings; each attribute reads ``settings.ASYNC_TOOLKIT_<NAME>`` when used."""

    def _get(self, name: str) -> Any:
        setting = SETTINGS[name]
        if not hasattr(settings, setting.full_name):
            return setting.default()
        value = getattr(settings, setting.full_name)
        if not setting.valid(value):
            raise ImproperlyConfigured(describe_problem(setting, value))
        return value

    @property
    def REQUEST_TIMEOUT(self) -> float | None:
        return self._get("REQUEST_TIMEOUT")  # type: ignore[no-any-return]

    @property
    def MAX_CONCURRENT_REQUESTS(self) -> int | None:
        return self._get("MAX_CONCURRENT_REQUESTS")  # type: ignore[no-any-return]

    @property
    def CONCURRENCY_WAIT(self) -> float:
        return self._get("CONCURRENCY_WAIT")  # type: ignore[no-any-return]

    @property
    def RETRY_AFTER(self) -> int:
        return self._get("RETRY_AFTER")  # type: ignore[no-any-return]

    @property
    def BLOCKING_DETECTOR(self) -> bool:
        return self._get("BLOCKING_DETECTOR")  # type: ignore[no-any-return]

    @property
    def BLOCKING_THRESHOLD(self) -> float:
        return self._get("BLOCKING_THRESHOLD")  # type: ignore[no-any-return]

    @property
    def SERVER_TIMING(self) -> bool:
        return self._get("SERVER_TIMING")  # type: ignore[no-any-return]

    @property
    def EVENT_LOOP(self) -> str:
        return self._get("EVENT_LOOP")  # type: ignore[no-any-return]

    @property
    def BLOCKING_WORKERS(self) -> int:
        return self._get("BLOCKING_WORKERS")  # type: ignore[no-any-return]

    @property
    def SYNC_WORKERS(self) -> int | None:
        return self._get("SYNC_WORKERS")  # type: ignore[no-any-return]

    @property
    def DRAIN_TIMEOUT(self) -> float | None:
        return self._get("DRAIN_TIMEOUT")  # type: ignore[no-any-return]

    @property
    def INTERFACE(self) -> str | None:
        return self._get("INTERFACE")  # type: ignore[no-any-return]

    @property
    def INLINE_DJANGO_MIDDLEWARE(self) -> bool:
        return self._get("INLINE_DJANGO_MIDDLEWARE")  # type: ignore[no-any-return]

    @property
    def BACKGROUND_TASKS(self) -> str | None:
        return self._get("BACKGROUND_TASKS")  # type: ignore[no-any-return]


conf = Conf()
