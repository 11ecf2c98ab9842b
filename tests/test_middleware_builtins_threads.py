"""Where the hooks of Django's own middleware run under the toolkit's handler, and the hops.

Every hook of the served classes is wrapped (for the test) to record the thread it ran on, and
``SyncToAsync.__call__`` to count thread hops; a thread-start count would not do once workers are
pooled (a hop to an existing worker starts no thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import django
import pytest
from asgiref.sync import SyncToAsync
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.test import override_settings
from django.utils.module_loading import import_string

from django_async_toolkit.asgi import ASGIHandler
from tests.test_middleware_builtins import (
    LOGIN_REQUIRED,
    STARTPROJECT_MIDDLEWARE,
    Browser,
    has_login_required,
)

# A hop may run on a pooled worker that keeps a connection from an earlier test.
pytestmark = pytest.mark.django_db(transaction=True)

HOOKS = ("process_request", "process_view", "process_response")
ALL_SERVED = [
    *STARTPROJECT_MIDDLEWARE,
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.locale.LocaleMiddleware",
]


@dataclass
class Recorder:
    """The (class, hook, thread id) of every hook call, and the thread hops made."""

    calls: list[tuple[str, str, int]] = field(default_factory=list)
    hops: int = 0

    def clear(self) -> None:
        self.calls.clear()
        self.hops = 0


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    record = Recorder()
    classes = [import_string(path) for path in [*ALL_SERVED, *_login_required()]]
    for cls in classes:
        for name in HOOKS:
            if name not in vars(cls):
                continue
            monkeypatch.setattr(cls, name, _recording(record, cls.__name__, name, vars(cls)[name]))
    original_call = SyncToAsync.__call__

    async def counting_call(self: SyncToAsync[Any, Any], *args: Any, **kwargs: Any) -> Any:
        record.hops += 1
        return await original_call(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting_call)
    yield record


def _login_required() -> list[str]:
    return [LOGIN_REQUIRED] if django.VERSION >= (5, 1) else []


def _recording(
    record: Recorder, cls_name: str, hook: str, func: Callable[..., Any]
) -> Callable[..., Any]:
    def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        record.calls.append((cls_name, hook, threading.get_ident()))
        return func(self, *args, **kwargs)

    return recorded


STARTPROJECT_HOOKS = {
    ("SecurityMiddleware", "process_request"),
    ("SecurityMiddleware", "process_response"),
    ("SessionMiddleware", "process_request"),
    ("SessionMiddleware", "process_response"),
    ("CommonMiddleware", "process_request"),
    ("CommonMiddleware", "process_response"),
    ("CsrfViewMiddleware", "process_request"),
    ("CsrfViewMiddleware", "process_view"),
    ("CsrfViewMiddleware", "process_response"),
    ("AuthenticationMiddleware", "process_request"),
    ("MessageMiddleware", "process_request"),
    ("MessageMiddleware", "process_response"),
    ("XFrameOptionsMiddleware", "process_response"),
}


def urls(middleware: list[str], **settings: Any) -> Any:
    return override_settings(
        MIDDLEWARE=middleware, ROOT_URLCONF="tests.test_middleware_builtins", **settings
    )


async def test_every_startproject_hook_runs_on_the_loop_thread(recorder: Recorder) -> None:
    loop_thread = threading.get_ident()
    with urls(STARTPROJECT_MIDDLEWARE):
        response = await Browser(ASGIHandler()).request("/plain/")
    assert response.status == 200
    assert {(cls, hook) for cls, hook, _ in recorder.calls} == STARTPROJECT_HOOKS
    assert len(recorder.calls) == 13
    assert {thread for _, _, thread in recorder.calls} == {loop_thread}
    assert recorder.hops == 0


async def test_djangos_handler_runs_the_same_hooks_in_threads(recorder: Recorder) -> None:
    """The same recorder sees Django's handler hop: the test above could fail."""
    loop_thread = threading.get_ident()
    with urls(STARTPROJECT_MIDDLEWARE):
        response = await Browser(DjangoASGIHandler()).request("/plain/")
    assert response.status == 200
    assert {(cls, hook) for cls, hook, _ in recorder.calls} == STARTPROJECT_HOOKS
    assert loop_thread not in {thread for _, _, thread in recorder.calls}
    assert recorder.hops >= 13


async def test_every_served_class_runs_on_the_loop_thread(recorder: Recorder) -> None:
    loop_thread = threading.get_ident()
    stack = [*ALL_SERVED, *_login_required()]
    with urls(stack, USE_I18N=True):
        response = await Browser(ASGIHandler()).request(
            "/public/", headers=[(b"accept-encoding", b"gzip")]
        )
    assert response.status == 200
    assert {cls for cls, _, _ in recorder.calls} == {p.rsplit(".", 1)[1] for p in stack}
    assert {thread for _, _, thread in recorder.calls} == {loop_thread}
    assert recorder.hops == 0


async def test_session_saving_request_hops_only_to_save(recorder: Recorder) -> None:
    loop_thread = threading.get_ident()
    with urls(STARTPROJECT_MIDDLEWARE):
        browser = Browser(ASGIHandler())
        response = await browser.request("/session/set/")  # the view itself hops once
        assert response.status == 200
        off_loop = [(cls, hook) for cls, hook, thread in recorder.calls if thread != loop_thread]
        assert off_loop == [("SessionMiddleware", "process_response")]
        # The view's own sync_to_async and the save; the request's end needs no hop (its
        # worker runs Django's housekeeping when the lease ends).
        assert recorder.hops == 2
        recorder.clear()
        response = await browser.request("/plain/")  # the cookie comes back; nothing is saved
    assert response.status == 200
    assert {thread for _, _, thread in recorder.calls} == {loop_thread}
    assert recorder.hops == 0


async def test_post_checks_csrf_behind_one_hop(recorder: Recorder) -> None:
    loop_thread = threading.get_ident()
    with urls(STARTPROJECT_MIDDLEWARE):
        browser = Browser(ASGIHandler())
        await browser.request("/form/")
        recorder.clear()
        token = browser.cookies["csrftoken"]
        response = await browser.request(
            "/post/", method="POST", data={"csrfmiddlewaretoken": token}
        )
    assert response.status == 200
    off_loop = [(cls, hook) for cls, hook, thread in recorder.calls if thread != loop_thread]
    assert off_loop == [("CsrfViewMiddleware", "process_view")]


@has_login_required
async def test_login_required_loads_the_user_behind_a_hop(recorder: Recorder) -> None:
    loop_thread = threading.get_ident()
    with urls([*STARTPROJECT_MIDDLEWARE, LOGIN_REQUIRED], LOGIN_URL="/login/"):
        browser = Browser(ASGIHandler())
        # No session cookie: the user is AnonymousUser without reading anything, inline.
        response = await browser.request("/private/")
        assert response.status == 302
        assert {thread for _, _, thread in recorder.calls} == {loop_thread}
        await browser.request("/session/set/")  # a session (stored, not loaded) comes back
        recorder.clear()
        response = await browser.request("/private/")
    assert response.status == 302
    off_loop = [(cls, hook) for cls, hook, thread in recorder.calls if thread != loop_thread]
    assert off_loop == [("LoginRequiredMiddleware", "process_view")]


class SubclassedXFrame(import_string("django.middleware.clickjacking.XFrameOptionsMiddleware")):  # type: ignore[misc]
    """A subclass may do I/O in a hook: it keeps Django's adaptation."""


async def test_a_subclass_keeps_djangos_hop(recorder: Recorder) -> None:
    with urls([*STARTPROJECT_MIDDLEWARE[:-1], f"{__name__}.SubclassedXFrame"]):
        response = await Browser(ASGIHandler()).request("/plain/")
    assert response.status == 200
    # Its process_response, through sync_to_async; the request's end needs no hop (its
    # worker runs Django's housekeeping when the lease ends).
    assert recorder.hops == 1


async def test_the_setting_turns_it_off(recorder: Recorder) -> None:
    with urls(STARTPROJECT_MIDDLEWARE, ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE=False):
        response = await Browser(ASGIHandler()).request("/plain/")
    assert response.status == 200
    assert recorder.hops >= 13


def test_wsgi_is_unchanged(recorder: Recorder) -> None:
    from django.test import Client

    with urls(STARTPROJECT_MIDDLEWARE):
        response = Client().get("/plain/")
    assert response.status_code == 200
    assert {(cls, hook) for cls, hook, _ in recorder.calls} == STARTPROJECT_HOOKS
    assert {thread for _, _, thread in recorder.calls} == {threading.get_ident()}
    assert recorder.hops == 0
