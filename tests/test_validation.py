"""One rule for numbers of seconds and bounds, for every function and setting of the toolkit."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from django.dispatch import Signal

from django_async_toolkit import _validation
from django_async_toolkit.blocking import BlockingDetector
from django_async_toolkit.conf import SETTINGS
from django_async_toolkit.middleware import request_timeout
from django_async_toolkit.signals import asend, drain_background, drain_background_sync
from django_async_toolkit.sync import run_blocking

NOT_SECONDS = [0, -1, math.inf, -math.inf, math.nan, True, "1"]


@pytest.mark.parametrize("value", NOT_SECONDS)
def test_is_seconds_rejects_what_is_not_a_finite_positive_number(value: object) -> None:
    assert not _validation.is_seconds(value)


@pytest.mark.parametrize("value", [0.001, 1, 2.5, 10**6])
def test_is_seconds_accepts_finite_positive_numbers(value: object) -> None:
    assert _validation.is_seconds(value)


def test_zero_is_allowed_only_where_asked() -> None:
    assert _validation.is_seconds(0, zero=True)
    assert not _validation.is_seconds(-0.5, zero=True)
    assert not _validation.is_seconds(math.inf, zero=True)


@pytest.mark.parametrize("value", [0, -3, True, 1.5, "2"])
def test_is_positive_int(value: object) -> None:
    assert not _validation.is_positive_int(value)
    assert _validation.is_positive_int(1)


async def _asend_with(timeout: Any) -> None:
    await asend(Signal(), sender=None, timeout=timeout)


async def _run_blocking_with(timeout: Any) -> None:
    await run_blocking(print, timeout=timeout)


async def _drain_with(timeout: Any) -> None:
    await drain_background(timeout=timeout)


ASYNC_TAKERS: dict[str, Callable[[Any], Any]] = {
    "asend": _asend_with,
    "run_blocking": _run_blocking_with,
    "drain_background": _drain_with,
}


@pytest.mark.parametrize("taker", sorted(ASYNC_TAKERS))
@pytest.mark.parametrize("value", [math.inf, math.nan, 0])
async def test_every_timeout_rejects_infinity_and_nan(taker: str, value: float) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        await ASYNC_TAKERS[taker](value)


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_sync_takers_reject_infinity(value: float) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        drain_background_sync(timeout=value)
    with pytest.raises(ValueError, match="greater than 0"):
        request_timeout(value)
    with pytest.raises(ValueError, match="greater than 0"):
        BlockingDetector(value)


@pytest.mark.parametrize(
    "name", [name for name, s in SETTINGS.items() if "seconds" in s.allowed.lower()]
)
def test_every_seconds_setting_rejects_infinity(name: str) -> None:
    assert not SETTINGS[name].valid(math.inf)


def test_names_for_messages() -> None:
    import functools

    def function() -> None: ...

    assert _validation.qualname(function).endswith("test_names_for_messages.<locals>.function")
    assert _validation.qualname(functools.partial(function)) == _validation.qualname(function)
    assert _validation.qualname(Signal) == "django.dispatch.dispatcher.Signal"
    assert _validation.qualname(Signal()) == "django.dispatch.dispatcher.Signal"
    assert _validation.describe_value(None) == "None"
    assert _validation.describe_value(3) == "a builtins.int object"
