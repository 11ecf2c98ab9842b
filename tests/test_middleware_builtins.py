"""Django's own middleware served inline: whole responses compared with Django's handler.

Each scenario sends the same requests (cookies carried from one response to the next) through
Django's ``ASGIHandler`` and through the toolkit's, with the same settings, and compares status,
headers, cookies (name, value, every flag) and bodies. The values that Django makes random (the
CSRF secret, the session key) and the ``expires`` date of a cookie are compared by shape only;
gzip bodies are compared decompressed. The module is its own URLconf.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import django
import pytest
from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.test import override_settings
from django.urls import path

from django_async_toolkit.asgi import ASGIHandler
from tests.asgi_helpers import Response, call

STARTPROJECT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
LOGIN_REQUIRED = "django.contrib.auth.middleware.LoginRequiredMiddleware"
has_login_required = pytest.mark.skipif(
    django.VERSION < (5, 1), reason="LoginRequiredMiddleware exists from Django 5.1"
)
SESSION_ENGINES = ["db", "cache", "cached_db", "file", "signed_cookies"]

# Session stores use the database, and a hop may run on a pooled worker that keeps a connection
# from an earlier test (closing it at the start of a lease is database access).
pytestmark = pytest.mark.django_db(transaction=True)
RANDOM_COOKIES = {"csrftoken", "sessionid"}


# --- views (this module is the URLconf) --------------------------------------------------------


async def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"plain " * 50)


async def form(request: HttpRequest) -> HttpResponse:
    get_token(request)  # Sets the CSRF cookie, as {% csrf_token %} does.
    return HttpResponse(b"form")


async def post(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"posted " + request.method.encode())


async def exempt_post(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"exempt")


# What @csrf_exempt does (Django 4.2's decorator does not take an async view).
exempt_post.csrf_exempt = True  # type: ignore[attr-defined]


def _set_session(request: HttpRequest) -> None:
    request.session["visits"] = request.session.get("visits", 0) + 1


async def session_set(request: HttpRequest) -> HttpResponse:
    await sync_to_async(_set_session)(request)
    return HttpResponse(b"set")


async def session_get(request: HttpRequest) -> HttpResponse:
    visits = await sync_to_async(request.session.get)("visits", 0)
    return HttpResponse(f"visits={visits}".encode())


async def session_flush(request: HttpRequest) -> HttpResponse:
    await sync_to_async(request.session.flush)()
    return HttpResponse(b"flushed")


async def message_add(request: HttpRequest) -> HttpResponse:
    messages.info(request, "hello")
    messages.warning(request, "careful", extra_tags="x")
    return redirect("/message/show/")


def _read_messages(request: HttpRequest) -> list[str]:
    return [f"{m.level_tag}:{m.message}" for m in messages.get_messages(request)]


async def message_show(request: HttpRequest) -> HttpResponse:
    shown = await sync_to_async(_read_messages)(request)
    return HttpResponse(",".join(shown).encode())


async def _chunks() -> AsyncIterator[bytes]:
    for index in range(20):
        yield f"chunk {index} ".encode() * 20


def _sync_chunks() -> Iterator[bytes]:
    for index in range(20):
        yield f"chunk {index} ".encode() * 20


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_chunks(), content_type="text/plain")


async def stream_sync(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_sync_chunks(), content_type="text/plain")


async def private(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"private")


async def public(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"public")


if django.VERSION >= (5, 1):
    from django.contrib.auth.decorators import login_not_required

    public = login_not_required(public)
    session_set = login_not_required(session_set)

urlpatterns = [
    path("plain/", plain),
    path("form/", form),
    path("post/", post),
    path("exempt/", exempt_post),
    path("session/set/", session_set),
    path("session/get/", session_get),
    path("session/flush/", session_flush),
    path("message/add/", message_add),
    path("message/show/", message_show),
    path("stream/", stream),
    path("stream/sync/", stream_sync),
    path("private/", private),
    path("public/", public),
]


# --- comparing -------------------------------------------------------------------------------


@dataclass
class Browser:
    """Sends requests to one handler, keeping the cookies it was given."""

    app: Any
    cookies: dict[str, str] = field(default_factory=dict)

    async def request(
        self,
        target: str,
        *,
        method: str = "GET",
        data: dict[str, str] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> Response:
        all_headers = list(headers or [])
        if self.cookies:
            jar = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            all_headers.append((b"cookie", jar.encode()))
        body = b""
        if data is not None:
            body = urlencode(data).encode()
            all_headers.append((b"content-type", b"application/x-www-form-urlencoded"))
            all_headers.append((b"content-length", str(len(body)).encode()))
        route, _, query = target.partition("?")
        response = await call(
            self.app,
            route,
            method=method,
            body_chunks=(body,),
            headers=all_headers,
            query_string=query.encode(),
        )
        for name, value in response.headers:
            if name.lower() == b"set-cookie":
                for morsel in SimpleCookie(value.decode("latin-1")).values():
                    if morsel["max-age"] == "0":
                        self.cookies.pop(morsel.key, None)
                    else:
                        self.cookies[morsel.key] = morsel.value
        return response


def _cookie_shape(value: bytes) -> tuple[Any, ...]:
    (morsel,) = SimpleCookie(value.decode("latin-1")).values()
    shown = "<random>" if morsel.key in RANDOM_COOKIES and morsel.value else morsel.value
    if morsel.key == "messages" and morsel.value:
        # Signed with a timestamp (SIGNING_BACKEND): the signed data must be the same.
        shown = morsel.value.rsplit(":", 2)[0]
    flags = tuple(
        (key, morsel[key] if key != "expires" or not morsel[key] else "<date>")
        for key in sorted(morsel.keys())
    )
    return (morsel.key, shown, flags)


def normalized(response: Response) -> dict[str, Any]:
    """What must be equal between the two handlers' answers."""
    headers: list[tuple[str, Any]] = []
    gzipped = any(n.lower() == b"content-encoding" and v == b"gzip" for n, v in response.headers)
    for name, value in response.headers:
        key = name.decode().lower()
        if key == "set-cookie":
            headers.append((key, _cookie_shape(value)))
        elif key == "content-length" and gzipped:
            headers.append((key, "<gzip length>"))  # gzip adds random bytes (BREACH mitigation)
        else:
            headers.append((key, value.decode("latin-1")))
    body = gzip.decompress(response.body) if gzipped else response.body
    body = re.sub(rb"[A-Za-z0-9]{64}", b"<token>", body)
    return {"status": response.status, "headers": sorted(headers, key=repr), "body": body}


Step = dict[str, Any]


async def compare(steps: list[Step]) -> list[dict[str, Any]]:
    """Run ``steps`` through both handlers (built with the current settings); assert equal."""
    answers: list[list[dict[str, Any]]] = []
    for app in (DjangoASGIHandler(), ASGIHandler()):
        browser = Browser(app)
        answers.append([normalized(await browser.request(**step)) for step in steps])
    django_answers, toolkit_answers = answers
    for step, theirs, ours in zip(steps, django_answers, toolkit_answers, strict=True):
        assert ours == theirs, step
    return toolkit_answers


def header(answer: dict[str, Any], name: str) -> list[Any]:
    return [value for key, value in answer["headers"] if key == name]


@pytest.fixture(params=SESSION_ENGINES)
def session_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    engine = f"django.contrib.sessions.backends.{request.param}"
    with override_settings(SESSION_ENGINE=engine, SESSION_FILE_PATH=str(tmp_path)):
        yield request.param


def stack(*extra: str, prepend: tuple[str, ...] = ()) -> Any:
    return override_settings(
        MIDDLEWARE=[*prepend, *STARTPROJECT_MIDDLEWARE, *extra], ROOT_URLCONF=__name__
    )


# --- the DB-free path ------------------------------------------------------------------------


async def test_db_free_get_matches_django() -> None:
    with stack():
        (answer,) = await compare([{"target": "/plain/"}])
    assert answer["status"] == 200
    assert header(answer, "x-frame-options") == ["DENY"]
    assert header(answer, "x-content-type-options") == ["nosniff"]
    assert header(answer, "content-length") == ["300"]


@pytest.mark.parametrize("target", ["/plain", "/plain?a=1", "/missing"])
async def test_append_slash_redirects_and_404s_match_django(target: str) -> None:
    with stack():
        (answer,) = await compare([{"target": target}])
    if target.startswith("/plain"):
        assert answer["status"] == 301
        assert header(answer, "location") == [target.replace("/plain", "/plain/")]
    else:
        assert answer["status"] == 404


async def test_security_redirect_and_headers_match_django() -> None:
    with (
        stack(),
        override_settings(
            SECURE_SSL_REDIRECT=True,
            SECURE_HSTS_SECONDS=60,
            SECURE_REFERRER_POLICY="origin",
            X_FRAME_OPTIONS="SAMEORIGIN",
        ),
    ):
        (answer,) = await compare([{"target": "/plain/"}])
    assert answer["status"] == 301
    assert header(answer, "location") == ["https://testserver/plain/"]


async def test_csrf_cookie_flags_and_posts_match_django() -> None:
    with (
        stack(),
        override_settings(
            CSRF_COOKIE_SECURE=True, CSRF_COOKIE_HTTPONLY=True, CSRF_COOKIE_SAMESITE="Strict"
        ),
    ):
        answers = await compare(
            [
                {"target": "/form/"},
                {"target": "/post/", "method": "POST", "data": {"a": "1"}},
                {"target": "/exempt/", "method": "POST", "data": {"a": "1"}},
            ]
        )
    form_answer, missing_token, exempt = answers
    (cookie,) = header(form_answer, "set-cookie")
    assert cookie[0] == "csrftoken"
    assert ("httponly", True) in cookie[2] and ("samesite", "Strict") in cookie[2]
    assert missing_token["status"] == 403
    assert b"CSRF" in missing_token["body"]
    assert exempt["status"] == 200


async def _post_with_token(app: Any, *, as_header: bool) -> Response:
    browser = Browser(app)
    await browser.request("/form/")
    token = browser.cookies["csrftoken"]
    if as_header:
        return await browser.request(
            "/post/", method="POST", data={}, headers=[(b"x-csrftoken", token.encode())]
        )
    return await browser.request("/post/", method="POST", data={"csrfmiddlewaretoken": token})


@pytest.mark.parametrize("as_header", [False, True])
async def test_post_with_csrf_token_matches_django(as_header: bool) -> None:
    with stack():
        theirs = normalized(await _post_with_token(DjangoASGIHandler(), as_header=as_header))
        ours = normalized(await _post_with_token(ASGIHandler(), as_header=as_header))
    assert ours == theirs
    assert ours["status"] == 200 and ours["body"] == b"posted POST"


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
async def test_gzip_conditional_get_and_locale_match_django() -> None:
    extra = (
        "django.middleware.gzip.GZipMiddleware",
        "django.middleware.http.ConditionalGetMiddleware",
    )
    with (
        stack("django.middleware.locale.LocaleMiddleware", prepend=extra),
        override_settings(USE_I18N=True, LANGUAGES=[("en", "English"), ("fr", "French")]),
    ):
        gzip_header = [(b"accept-encoding", b"gzip"), (b"accept-language", b"fr")]
        answers = await compare(
            [
                {"target": "/plain/", "headers": gzip_header},
                {"target": "/plain/"},
                {"target": "/stream/", "headers": gzip_header},
                {"target": "/stream/sync/", "headers": gzip_header},
            ]
        )
        compressed, plain_answer, streamed, streamed_sync = answers
        assert header(compressed, "content-encoding") == ["gzip"]
        assert header(compressed, "content-language") == ["fr"]
        assert header(streamed, "content-encoding") == ["gzip"]
        assert streamed["body"] == streamed_sync["body"]
        assert streamed["body"].startswith(b"chunk 0 ")
        (etag,) = header(plain_answer, "etag")
        (not_modified,) = await compare(
            [{"target": "/plain/", "headers": [(b"if-none-match", etag.encode())]}]
        )
    assert not_modified["status"] == 304


# --- sessions and messages, on every session engine ------------------------------------------


async def test_session_round_trip_matches_django(session_engine: str) -> None:
    with stack():
        answers = await compare(
            [
                {"target": "/session/get/"},
                {"target": "/session/set/"},
                {"target": "/session/set/"},
                {"target": "/session/get/"},
                {"target": "/session/flush/"},
                {"target": "/session/get/"},
            ]
        )
    first, set_once, _, read_back, flushed, after_flush = answers
    assert first["body"] == b"visits=0" and header(first, "set-cookie") == []
    (cookie,) = header(set_once, "set-cookie")
    assert cookie[0] == "sessionid"
    assert read_back["body"] == b"visits=2"
    assert header(flushed, "set-cookie")[0][1] == ""  # deleted
    assert after_flush["body"] == b"visits=0"


async def test_session_saved_every_request_matches_django(session_engine: str) -> None:
    with stack(), override_settings(SESSION_SAVE_EVERY_REQUEST=True, SESSION_COOKIE_AGE=60):
        answers = await compare(
            [{"target": "/session/set/"}, {"target": "/plain/"}, {"target": "/session/get/"}]
        )
    assert answers[2]["body"] == b"visits=1"
    assert header(answers[1], "set-cookie")  # saved again, though untouched


@pytest.mark.parametrize(
    "storage",
    [
        "django.contrib.messages.storage.fallback.FallbackStorage",
        "django.contrib.messages.storage.session.SessionStorage",
        "django.contrib.messages.storage.cookie.CookieStorage",
    ],
)
async def test_messages_round_trip_matches_django(session_engine: str, storage: str) -> None:
    with stack(), override_settings(MESSAGE_STORAGE=storage):
        answers = await compare(
            [
                {"target": "/message/add/"},
                {"target": "/message/show/"},
                {"target": "/message/show/"},
            ]
        )
    added, shown, shown_again = answers
    assert added["status"] == 302
    assert shown["body"] == b"info:hello,warning:careful"
    assert shown_again["body"] == b""


async def test_csrf_in_sessions_matches_django(session_engine: str) -> None:
    with stack(), override_settings(CSRF_USE_SESSIONS=True):
        answers = await compare(
            [
                {"target": "/form/"},
                {"target": "/post/", "method": "POST", "data": {}},
                {"target": "/plain/"},
            ]
        )
    form_answer, rejected, _ = answers
    assert header(form_answer, "set-cookie")[0][0] == "sessionid"
    assert rejected["status"] == 403


@has_login_required
async def test_login_required_matches_django(session_engine: str) -> None:
    with stack(LOGIN_REQUIRED), override_settings(LOGIN_URL="/accounts/login/"):
        private_answer, public_answer = await compare(
            [{"target": "/private/?next=1"}, {"target": "/public/"}]
        )
    assert private_answer["status"] == 302
    assert header(private_answer, "location") == ["/accounts/login/?next=/private/%3Fnext%3D1"]
    assert public_answer["status"] == 200
