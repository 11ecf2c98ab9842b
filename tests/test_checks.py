from __future__ import annotations

import importlib.machinery
import io
import sys
import types
from typing import Any

import pytest
from django.core.checks import CheckMessage, Error, Warning, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_async_toolkit.checks import (
    check_async_unsafe,
    check_event_loop,
    check_middleware,
    check_model_signal_receivers,
    check_settings,
    check_unknown_settings,
)
from django_async_toolkit.middleware import BlockingDetectorMiddleware, TimeoutMiddleware


class ProjectTimeout(TimeoutMiddleware):
    """A project's own subclass: the W003 check finds it by its bases."""


#: Django's model checks (run by run_checks() and manage.py check) ask the database backend
#: whether it supports the JSONField of the Django Tasks apps in the test settings.
needs_model_checks = pytest.mark.django_db


def test_valid_settings_pass() -> None:
    assert check_settings() == []


@override_settings(ASYNC_TOOLKIT_REQUEST_TIMEOUT=-5, ASYNC_TOOLKIT_EVENT_LOOP="trio")
def test_e001_names_setting_value_and_allowed() -> None:
    errors = check_settings()
    assert [e.id for e in errors] == ["async_toolkit.E001", "async_toolkit.E001"]
    assert all(isinstance(e, Error) for e in errors)
    timeout, loop = errors
    assert "ASYNC_TOOLKIT_REQUEST_TIMEOUT is -5" in timeout.msg
    assert "greater than 0" in timeout.msg
    assert "ASYNC_TOOLKIT_EVENT_LOOP is 'trio'" in loop.msg
    assert "'asyncio' or 'uvloop'" in loop.msg
    assert loop.hint is not None and "ASYNC_TOOLKIT_EVENT_LOOP" in loop.hint


@override_settings(ASYNC_TOOLKIT_RETRY_AFTER=0)
@needs_model_checks
def test_e001_registered_with_django() -> None:
    assert "async_toolkit.E001" in [m.id for m in run_checks()]


@override_settings(ASYNC_TOOLKIT_RETRY_AFTER=0)
@needs_model_checks
def test_e001_fails_manage_py_check() -> None:
    with pytest.raises(SystemCheckError, match="async_toolkit.E001"):
        call_command("check")


@override_settings(ASYNC_TOOLKIT_RETRY_AFTER=0, SILENCED_SYSTEM_CHECKS=["async_toolkit.E001"])
@needs_model_checks
def test_e001_can_be_silenced() -> None:
    call_command("check")


# --- The checks on middleware, the environment and the event loop ------------------------------

SYNC_ONLY = "tests.audit_middleware.SyncOnly"
OTHER_SYNC_ONLY = "tests.audit_middleware.OtherSyncOnly"
TIMEOUT = "django_async_toolkit.middleware.TimeoutMiddleware"
DETECTOR = "django_async_toolkit.middleware.BlockingDetectorMiddleware"


def ids(messages: list[CheckMessage]) -> list[str | None]:
    return [m.id for m in messages]


@override_settings(ASYNC_TOOLKIT_INTERFACE="asgi", MIDDLEWARE=[SYNC_ONLY])
def test_w001_sync_only_middleware_under_asgi() -> None:
    (warning,) = check_middleware()
    assert isinstance(warning, Warning)
    assert warning.id == "async_toolkit.W001"
    assert warning.obj == SYNC_ONLY
    assert f"Middleware {SYNC_ONLY} is sync-only" in warning.msg
    assert "ASYNC_TOOLKIT_INTERFACE is 'asgi'" in warning.msg
    assert "costs 2 thread hops on every request. " in warning.msg
    assert "The whole chain costs 2 thread hops; made async-capable, the chain would cost 0." in (
        warning.msg
    )
    assert warning.hint is not None and "AsyncMiddleware" in warning.hint


@override_settings(ASGI_APPLICATION="tests.asgi.application", MIDDLEWARE=[SYNC_ONLY])
def test_w001_asgi_inferred_from_asgi_application() -> None:
    (warning,) = check_middleware()
    assert warning.id == "async_toolkit.W001"
    assert "inferred: ASGI_APPLICATION is set" in warning.msg


@override_settings(
    ASYNC_TOOLKIT_INTERFACE="both",
    MIDDLEWARE=["tests.audit_middleware.Hybrid", SYNC_ONLY, OTHER_SYNC_ONLY],
)
def test_w001_names_each_sync_only_middleware_of_a_run() -> None:
    warnings = check_middleware()
    assert ids(warnings) == ["async_toolkit.W001", "async_toolkit.W001"]
    assert [w.obj for w in warnings] == [SYNC_ONLY, OTHER_SYNC_ONLY]
    assert all("costs 1 thread hop on every request (it shares" in w.msg for w in warnings)
    # Rewriting one of the two still leaves the other's run: 2 either way.
    assert all(
        "The whole chain costs 2 thread hops; made async-capable, the chain would cost 2." in w.msg
        for w in warnings
    )


@override_settings(
    ASYNC_TOOLKIT_INTERFACE="asgi",
    MIDDLEWARE=[
        "tests.audit_middleware.MixinBoth",
        "tests.audit_middleware.MixinRequestOnly",
        SYNC_ONLY,
    ],
)
def test_w001_says_when_the_rewrite_alone_would_cost_more() -> None:
    (warning,) = check_middleware()
    assert warning.id == "async_toolkit.W001"
    assert "The whole chain costs 2 thread hops; made async-capable, the chain would cost 3, " in (
        warning.msg
    )
    assert "pay a hop per sync hook (MiddlewareMixin): rewrite those too." in warning.msg


@pytest.mark.parametrize(
    "middleware",
    [
        ["tests.audit_middleware.Hybrid"],
        ["tests.audit_middleware.MixinBoth"],
        ["tests.audit_middleware.AsyncOnly"],
        ["tests.audit_middleware.NotUsed"],
        [],
    ],
)
def test_w001_only_for_sync_only_middleware(middleware: list[str]) -> None:
    with override_settings(ASYNC_TOOLKIT_INTERFACE="asgi", MIDDLEWARE=middleware):
        assert check_middleware() == []


@pytest.mark.parametrize(
    "interface", [{"ASYNC_TOOLKIT_INTERFACE": "wsgi"}, {"WSGI_APPLICATION": "tests.wsgi.app"}, {}]
)
def test_w001_not_without_asgi(interface: dict[str, str]) -> None:
    with override_settings(MIDDLEWARE=[SYNC_ONLY], **interface):
        assert check_middleware() == []


@override_settings(ASYNC_TOOLKIT_INTERFACE="wsgi", MIDDLEWARE=[TIMEOUT])
def test_w003_timeout_middleware_wsgi_only() -> None:
    (warning,) = check_middleware()
    assert isinstance(warning, Warning)
    assert warning.id == "async_toolkit.W003"
    assert warning.obj == TIMEOUT
    assert "is served only by WSGI (ASYNC_TOOLKIT_INTERFACE is 'wsgi')" in warning.msg
    assert "cannot be cancelled" in warning.msg
    assert warning.hint is not None and "ASYNC_TOOLKIT_INTERFACE = 'asgi'" in warning.hint


@override_settings(WSGI_APPLICATION="tests.wsgi.application", MIDDLEWARE=[TIMEOUT])
def test_w003_when_asgi_is_not_known() -> None:
    (warning,) = check_middleware()
    assert warning.id == "async_toolkit.W003"
    assert "is not known to be served by ASGI" in warning.msg
    assert "neither ASYNC_TOOLKIT_INTERFACE nor ASGI_APPLICATION is set" in warning.msg


@override_settings(
    ASYNC_TOOLKIT_INTERFACE="wsgi",
    MIDDLEWARE=["tests.audit_middleware.Hybrid", "tests.test_checks.ProjectTimeout"],
)
def test_w003_finds_a_subclass_of_timeout_middleware() -> None:
    assert [w.obj for w in check_middleware()] == ["tests.test_checks.ProjectTimeout"]


class ProjectDetector(BlockingDetectorMiddleware):
    """A project's own subclass: the W004 check finds it by its bases."""


@override_settings(ASYNC_TOOLKIT_INTERFACE="wsgi", MIDDLEWARE=[DETECTOR])
def test_w004_blocking_detector_middleware_wsgi_only() -> None:
    (warning,) = check_middleware()
    assert isinstance(warning, Warning)
    assert warning.id == "async_toolkit.W004"
    assert warning.obj == DETECTOR
    assert "is served only by WSGI (ASYNC_TOOLKIT_INTERFACE is 'wsgi')" in warning.msg
    assert "no event loop to watch" in warning.msg
    assert warning.hint is not None and "ASYNC_TOOLKIT_INTERFACE = 'asgi'" in warning.hint


@override_settings(
    WSGI_APPLICATION="tests.wsgi.application",
    MIDDLEWARE=[TIMEOUT, "tests.test_checks.ProjectDetector"],
)
def test_w003_and_w004_when_asgi_is_not_known() -> None:
    assert [(w.id, w.obj) for w in check_middleware()] == [
        ("async_toolkit.W003", TIMEOUT),
        ("async_toolkit.W004", "tests.test_checks.ProjectDetector"),
    ]
    assert all("is not known to be served by ASGI" in w.msg for w in check_middleware())


@pytest.mark.parametrize("interface", ["asgi", "both"])
def test_w004_not_under_asgi(interface: str) -> None:
    with override_settings(ASYNC_TOOLKIT_INTERFACE=interface, MIDDLEWARE=[DETECTOR]):
        assert check_middleware() == []


@pytest.mark.parametrize(
    "interface", [{"ASYNC_TOOLKIT_INTERFACE": "asgi"}, {"ASGI_APPLICATION": "tests.asgi.app"}]
)
def test_w003_not_under_asgi(interface: dict[str, str]) -> None:
    with override_settings(MIDDLEWARE=[TIMEOUT], **interface):
        assert check_middleware() == []


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_e003_middleware_that_cannot_be_loaded(interface: str) -> None:
    with override_settings(ASYNC_TOOLKIT_INTERFACE=interface, MIDDLEWARE=["tests.nowhere.Gone"]):
        (error,) = check_middleware()
    assert isinstance(error, Error)
    assert error.id == "async_toolkit.E003"
    assert "'tests.nowhere.Gone' cannot be imported" in error.msg


@override_settings(ASYNC_TOOLKIT_INTERFACE="tcp", MIDDLEWARE=[SYNC_ONLY, TIMEOUT])
def test_invalid_interface_is_left_to_e001() -> None:
    assert check_middleware() == []
    assert ids(check_settings()) == ["async_toolkit.E001"]


def test_w002_django_allow_async_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    (warning,) = check_async_unsafe()
    assert isinstance(warning, Warning)
    assert warning.id == "async_toolkit.W002"
    assert "DJANGO_ALLOW_ASYNC_UNSAFE is set in the environment ('true')" in warning.msg
    assert warning.hint is not None and "db_sync_to_async" in warning.hint


@pytest.mark.parametrize("value", [None, ""])
def test_w002_not_when_unset_or_empty(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    # Django's guard only looks at the value's truth: an empty value leaves it on.
    if value is None:
        monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE", raising=False)
    else:
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", value)
    assert check_async_unsafe() == []


@override_settings(ASYNC_TOOLKIT_EVENT_LOOP="uvloop")
def test_e002_uvloop_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what a failed import leaves behind
    (error,) = check_event_loop()
    assert isinstance(error, Error)
    assert error.id == "async_toolkit.E002"
    assert "ASYNC_TOOLKIT_EVENT_LOOP is 'uvloop' but uvloop is not installed" in error.msg
    assert error.hint is not None and "django-async-toolkit[uvloop]" in error.hint


@override_settings(ASYNC_TOOLKIT_EVENT_LOOP="uvloop")
def test_e002_not_when_uvloop_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = types.ModuleType("uvloop")
    installed.__spec__ = importlib.machinery.ModuleSpec("uvloop", None)
    monkeypatch.setitem(sys.modules, "uvloop", installed)
    assert check_event_loop() == []
    installed.__spec__ = None  # find_spec raises ValueError for such a module: still imported
    assert check_event_loop() == []


@pytest.mark.parametrize("value", ["asyncio", "trio"])
def test_e002_only_for_uvloop(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with override_settings(ASYNC_TOOLKIT_EVENT_LOOP=value):
        assert check_event_loop() == []


TRIGGERS: dict[str, dict[str, Any]] = {
    "async_toolkit.W001": {"ASYNC_TOOLKIT_INTERFACE": "asgi", "MIDDLEWARE": [SYNC_ONLY]},
    "async_toolkit.W002": {},
    "async_toolkit.W003": {"ASYNC_TOOLKIT_INTERFACE": "wsgi", "MIDDLEWARE": [TIMEOUT]},
    "async_toolkit.W004": {"ASYNC_TOOLKIT_INTERFACE": "wsgi", "MIDDLEWARE": [DETECTOR]},
    "async_toolkit.E002": {"ASYNC_TOOLKIT_EVENT_LOOP": "uvloop"},
    "async_toolkit.E003": {"ASYNC_TOOLKIT_INTERFACE": "asgi", "MIDDLEWARE": ["tests.nowhere.X"]},
    "async_toolkit.W005": {"ASYNC_TOOLKIT_INTERFACE": "asgi", "MIDDLEWARE": [TIMEOUT, SYNC_ONLY]},
    "async_toolkit.W007": {"ASYNC_TOOLKIT_REQUST_TIMEOUT": 5},
}


@pytest.fixture
def triggers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment half of the triggers (the settings half is in TRIGGERS)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    monkeypatch.setitem(sys.modules, "uvloop", None)


@needs_model_checks
@pytest.mark.usefixtures("triggers")
@pytest.mark.parametrize("check_id", TRIGGERS)
def test_registered_reported_by_manage_py_check_and_silenceable(check_id: str) -> None:
    others = [other for other in [*TRIGGERS, "async_toolkit.E001"] if other != check_id]
    with override_settings(**TRIGGERS[check_id], SILENCED_SYSTEM_CHECKS=others):
        assert check_id in ids(run_checks())
        with pytest.raises(SystemCheckError, match=check_id.replace(".", r"\.")):
            call_command("check", fail_level="WARNING")
    with override_settings(**TRIGGERS[check_id], SILENCED_SYSTEM_CHECKS=[*others, check_id]):
        call_command("check", fail_level="WARNING", stdout=io.StringIO())


# --- W005: the timeout or the detector made sync by a sync-only middleware below it ------------


@pytest.mark.parametrize(
    ("middleware", "lost"),
    [(TIMEOUT, "requests are never cancelled at their deadline"), (DETECTOR, "not started")],
)
def test_w005_sync_only_middleware_below_makes_it_sync(middleware: str, lost: str) -> None:
    with override_settings(
        ASYNC_TOOLKIT_INTERFACE="asgi",
        MIDDLEWARE=[middleware, "tests.audit_middleware.Hybrid", SYNC_ONLY],
    ):
        warnings = [w for w in check_middleware() if w.id == "async_toolkit.W005"]
    (warning,) = warnings
    assert warning.obj == middleware
    assert f"{middleware} runs in sync mode under ASGI" in warning.msg
    assert f"the sync-only middleware {SYNC_ONLY} below it" in warning.msg
    assert lost in warning.msg
    assert warning.hint is not None and f"move {middleware} below it" in warning.hint


@pytest.mark.parametrize(
    "middleware",
    [
        [SYNC_ONLY, TIMEOUT, DETECTOR],  # the sync-only middleware is above: no harm
        [TIMEOUT, DETECTOR, "tests.audit_middleware.Hybrid"],
    ],
)
def test_w005_not_when_nothing_below_is_sync_only(middleware: list[str]) -> None:
    with override_settings(ASYNC_TOOLKIT_INTERFACE="asgi", MIDDLEWARE=middleware):
        assert "async_toolkit.W005" not in ids(check_middleware())


@override_settings(ASYNC_TOOLKIT_INTERFACE="wsgi", MIDDLEWARE=[TIMEOUT, SYNC_ONLY])
def test_w005_is_for_asgi_only() -> None:
    assert "async_toolkit.W005" not in ids(check_middleware())


# --- W006: an async receiver on a model signal -----------------------------------------------


async def async_audit_receiver(sender: object, **kwargs: Any) -> None: ...


def test_w006_async_receiver_on_a_model_signal() -> None:
    from django.db.models.signals import post_delete, post_save

    from tests.models import Item

    post_save.connect(async_audit_receiver, sender=Item)
    post_delete.connect(async_audit_receiver)
    try:
        warnings = check_model_signal_receivers()
    finally:
        post_save.disconnect(async_audit_receiver, sender=Item)
        post_delete.disconnect(async_audit_receiver)
    assert ids(warnings) == ["async_toolkit.W006", "async_toolkit.W006"]
    by_signal = {w.msg.split(" receiver of ")[1].split(":")[0]: w for w in warnings}
    name = "tests.test_checks.async_audit_receiver"
    assert by_signal["post_save"].obj == name
    assert by_signal["post_save"].msg.startswith(f"{name} is an 'async def' receiver of post_save")
    assert "every save waits for it" in by_signal["post_save"].msg
    assert "every post delete waits for it" in by_signal["post_delete"].msg
    hint = by_signal["post_save"].hint
    assert hint is not None and "background_receiver(post_save, ...)" in hint


def test_w006_not_for_background_or_sync_receivers_or_other_signals() -> None:
    from django.core.signals import request_finished
    from django.db.models.signals import post_save

    from django_async_toolkit.signals import background_receiver

    def sync_receiver(sender: object, **kwargs: Any) -> None: ...

    async def in_background(sender: object, **kwargs: Any) -> None: ...

    background_receiver(post_save)(in_background)
    post_save.connect(sync_receiver)
    request_finished.connect(async_audit_receiver)
    try:
        assert check_model_signal_receivers() == []
    finally:
        post_save.disconnect(sync_receiver)
        request_finished.disconnect(async_audit_receiver)
        for receiver in getattr(in_background, "_async_toolkit_background_dispatchers", []):
            post_save.disconnect(receiver)


# --- W007: an ASYNC_TOOLKIT_* name that is no setting ---------------------------------------


@override_settings(ASYNC_TOOLKIT_REQUST_TIMEOUT=5, ASYNC_TOOLKIT_NOTHING_LIKE_IT=1)
def test_w007_unknown_setting_with_the_closest_real_name() -> None:
    warnings = check_unknown_settings()
    assert ids(warnings) == ["async_toolkit.W007", "async_toolkit.W007"]
    nothing, typo = warnings
    assert typo.obj == "ASYNC_TOOLKIT_REQUST_TIMEOUT"
    assert typo.msg == (
        "ASYNC_TOOLKIT_REQUST_TIMEOUT is not a setting of django-async-toolkit: it has no "
        "effect. Did you mean ASYNC_TOOLKIT_REQUEST_TIMEOUT?"
    )
    assert typo.hint == "Rename it to ASYNC_TOOLKIT_REQUEST_TIMEOUT."
    assert nothing.obj == "ASYNC_TOOLKIT_NOTHING_LIKE_IT"
    assert "Did you mean" not in nothing.msg


def test_w007_quiet_for_real_settings() -> None:
    with override_settings(ASYNC_TOOLKIT_REQUEST_TIMEOUT=5, ASYNC_TOOLKIT_DRAIN_TIMEOUT=None):
        assert check_unknown_settings() == []
