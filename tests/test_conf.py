from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_async_toolkit.conf import SETTINGS, conf


def test_defaults() -> None:
    assert conf.REQUEST_TIMEOUT is None
    assert conf.MAX_CONCURRENT_REQUESTS is None
    assert conf.CONCURRENCY_WAIT == 0.1
    assert conf.RETRY_AFTER == 1
    assert conf.BLOCKING_DETECTOR is False
    assert conf.BLOCKING_THRESHOLD == 0.1
    assert conf.SERVER_TIMING is False
    assert conf.EVENT_LOOP == "asyncio"
    assert conf.BLOCKING_WORKERS >= 5
    assert conf.DRAIN_TIMEOUT == 10.0
    assert conf.INTERFACE is None


def test_read_at_use_time() -> None:
    with override_settings(ASYNC_TOOLKIT_REQUEST_TIMEOUT=2.5):
        assert conf.REQUEST_TIMEOUT == 2.5
    assert conf.REQUEST_TIMEOUT is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REQUEST_TIMEOUT", 0),
        ("REQUEST_TIMEOUT", -1),
        ("REQUEST_TIMEOUT", "5"),
        ("REQUEST_TIMEOUT", float("inf")),
        ("MAX_CONCURRENT_REQUESTS", 0),
        ("MAX_CONCURRENT_REQUESTS", 2.0),
        ("MAX_CONCURRENT_REQUESTS", True),
        ("CONCURRENCY_WAIT", -0.1),
        ("CONCURRENCY_WAIT", None),
        ("RETRY_AFTER", 0),
        ("BLOCKING_DETECTOR", "yes"),
        ("BLOCKING_THRESHOLD", 0),
        ("SERVER_TIMING", 1),
        ("EVENT_LOOP", "trio"),
        ("BLOCKING_WORKERS", 0),
        ("DRAIN_TIMEOUT", 0),
        ("INTERFACE", "http"),
    ],
)
def test_invalid_value_raises_naming_setting(name: str, value: object) -> None:
    full_name = "ASYNC_TOOLKIT_" + name
    with (
        override_settings(**{full_name: value}),
        pytest.raises(ImproperlyConfigured) as excinfo,
    ):
        getattr(conf, name)
    message = str(excinfo.value)
    assert full_name in message
    assert repr(value) in message
    assert SETTINGS[name].allowed in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REQUEST_TIMEOUT", 0.5),
        ("MAX_CONCURRENT_REQUESTS", 3),
        ("CONCURRENCY_WAIT", 0),
        ("EVENT_LOOP", "uvloop"),
        ("DRAIN_TIMEOUT", None),
        ("INTERFACE", "both"),
    ],
)
def test_valid_values(name: str, value: object) -> None:
    with override_settings(**{"ASYNC_TOOLKIT_" + name: value}):
        assert getattr(conf, name) == value


def test_every_setting_has_a_property() -> None:
    for name in SETTINGS:
        assert isinstance(getattr(type(conf), name), property)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BLOCKING_WORKERS", 10**9),
        ("SYNC_WORKERS", 10**6),
        ("REQUEST_TIMEOUT", 10**7),
        ("DRAIN_TIMEOUT", 10**7),
    ],
)
def test_absurd_values_are_errors(name: str, value: object) -> None:
    setting = SETTINGS[name]
    assert not setting.valid(value)
    with (
        override_settings(**{setting.full_name: value}),
        pytest.raises(ImproperlyConfigured, match=setting.full_name),
    ):
        getattr(conf, name)
