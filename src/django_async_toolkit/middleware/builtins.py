"""Django's own middleware under ASGI, without a thread hop per hook.

Django's ``MiddlewareMixin`` runs every ``process_request`` and ``process_response`` hook through
``sync_to_async`` under ASGI, and the handler adapts each ``process_view`` the same way: a thread
hop per hook, per request (13 for the seven classes of ``startproject``'s ``MIDDLEWARE``).
The hooks of the classes in :data:`SERVED` are CPU work (headers, cookies, redirects, signing)
except in the cases their rules below name, where they read or save the session, render CSRF's
failure view, or load the user.

:class:`InlineMiddlewareLoaderMixin` gives a handler a ``load_middleware`` that, under ASGI, wraps
each of those exact classes (not subclasses) in :class:`InlineDjangoMiddleware`, which runs
Django's own hook on the event loop's thread when its rule says the call does no I/O, and behind
the same ``sync_to_async(thread_sensitive=True)`` hop as Django otherwise.
The hook code is Django's, so responses are Django's; only the thread it runs on changes.
Under WSGI, or with ``ASYNC_TOOLKIT_INLINE_DJANGO_MIDDLEWARE = False``, Django's own
``load_middleware`` runs unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.module_loading import import_string

from django_async_toolkit import _compat
from django_async_toolkit._validation import qualname
from django_async_toolkit.conf import conf

__all__ = [
    "SERVED",
    "InlineDjangoMiddleware",
    "InlineMiddlewareLoaderMixin",
    "Rules",
    "is_served",
]

logger = logging.getLogger("django.request")

#: The methods that RFC 9110 calls safe: ``CsrfViewMiddleware.process_view`` accepts them at once.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: Django's own session stores. Building one does no I/O; reading or saving one does, except for
#: the signed-cookie store, whose data is the cookie itself.
DJANGO_SESSION_STORES = frozenset(
    f"django.contrib.sessions.backends.{name}.SessionStore"
    for name in ("db", "cache", "cached_db", "file", "signed_cookies")
)
COOKIE_SESSION_STORE = "django.contrib.sessions.backends.signed_cookies.SessionStore"

#: Django's own message storages. Building one does no I/O; the cookie storage never does, the
#: other two read and write the session.
DJANGO_MESSAGE_STORAGES = frozenset(
    {
        "django.contrib.messages.storage.cookie.CookieStorage",
        "django.contrib.messages.storage.session.SessionStorage",
        "django.contrib.messages.storage.fallback.FallbackStorage",
    }
)
COOKIE_MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"
#: ``django.contrib.auth.SESSION_KEY``: the session key that names the logged-in user.
AUTH_USER_SESSION_KEY = "_auth_user_id"


# --- When a hook does I/O ----------------------------------------------------------------------
# Each rule reads only attributes and settings (never a lazy object, never the session's data),
# and answers True ("hop") whenever it cannot tell.


def _never(*args: Any) -> bool:
    return False


def _session(request: HttpRequest) -> Any:
    return request.__dict__.get("session")


def _is_django_store(session: object) -> bool:
    return qualname(type(session)) in DJANGO_SESSION_STORES


def _session_reads_free(session: Any) -> bool:
    """Whether reading ``session``'s data does no I/O: it is loaded, it has no key yet (a new
    session starts empty), or it is the signed cookie itself."""
    if not _is_django_store(session):
        return False
    return (
        "_session_cache" in vars(session)
        or session.session_key is None
        or qualname(type(session)) == COOKIE_SESSION_STORE
    )


def _user_read_free(request: HttpRequest) -> bool:
    """Whether ``request.user`` can be read without I/O: it was read already, or the session
    can be read for free and names no user (it is then ``AnonymousUser``)."""
    if "_cached_user" in request.__dict__:
        return True
    session = _session(request)
    if not _session_reads_free(session):
        return False
    if session.session_key is None:
        return True
    cache = vars(session).get("_session_cache")
    return cache is not None and AUTH_USER_SESSION_KEY not in cache


def _store_init_does_io(middleware: Any, request: HttpRequest) -> bool:
    """``SessionMiddleware.process_request`` builds the store: I/O only in a store of your own."""
    return qualname(getattr(middleware, "SessionStore", None)) not in DJANGO_SESSION_STORES


def _session_saved(middleware: Any, request: HttpRequest, response: HttpResponseBase) -> bool:
    """``SessionMiddleware.process_response`` reads the expiry and saves the session when it was
    modified (or ``SESSION_SAVE_EVERY_REQUEST``) and is not empty; else it only sets headers."""
    session = _session(request)
    if session is None:
        return False  # Django's hook returns the response untouched.
    if not _is_django_store(session):
        return True
    if not (session.modified or settings.SESSION_SAVE_EVERY_REQUEST) or session.is_empty():
        return False
    return qualname(type(session)) != COOKIE_SESSION_STORE


def _csrf_secret_read(middleware: Any, request: HttpRequest) -> bool:
    """``CsrfViewMiddleware.process_request`` reads the secret: from the session with
    ``CSRF_USE_SESSIONS``, otherwise from the cookie."""
    if not settings.CSRF_USE_SESSIONS:
        return False
    session = _session(request)
    return session is not None and not _session_reads_free(session)


def _csrf_checked(middleware: Any, request: HttpRequest, view: Callable[..., Any]) -> bool:
    """``CsrfViewMiddleware.process_view`` accepts at once a request already processed, a view
    that is ``csrf_exempt``, a safe method and the test client's requests; any other request is
    checked (the body parsed, the session read, a failure view rendered): a hop."""
    if getattr(request, "csrf_processing_done", False) or getattr(view, "csrf_exempt", False):
        return False
    if request.method in SAFE_METHODS:
        return False
    return not getattr(request, "_dont_enforce_csrf_checks", False)


def _csrf_secret_stored(middleware: Any, request: HttpRequest, response: HttpResponseBase) -> bool:
    """``CsrfViewMiddleware.process_response`` sets the cookie, or with ``CSRF_USE_SESSIONS``
    writes the secret to the session, when ``CSRF_COOKIE_NEEDS_UPDATE``."""
    if not request.META.get("CSRF_COOKIE_NEEDS_UPDATE") or not settings.CSRF_USE_SESSIONS:
        return False
    session = _session(request)
    return session is not None and not _session_reads_free(session)


def _user_loaded(middleware: Any, request: HttpRequest, view: Callable[..., Any]) -> bool:
    """``LoginRequiredMiddleware.process_view`` reads ``request.user`` (the session and the
    database), on Django 6.0+ only for a view that is not ``login_not_required``."""
    if not _compat.LOGIN_REQUIRED_READS_USER_FIRST and not getattr(view, "login_required", True):
        return False
    return not _user_read_free(request)


def _custom_message_storage(middleware: Any, request: HttpRequest) -> bool:
    """``MessageMiddleware.process_request`` builds ``MESSAGE_STORAGE``: I/O only in your own."""
    return settings.MESSAGE_STORAGE not in DJANGO_MESSAGE_STORAGES


def _messages_stored(middleware: Any, request: HttpRequest, response: HttpResponseBase) -> bool:
    """``MessageMiddleware.process_response`` stores messages that were read or added; the
    session and fallback storages read and write the session then."""
    storage = request.__dict__.get("_messages")
    if storage is None:
        return False
    name = qualname(type(storage))
    if name not in DJANGO_MESSAGE_STORAGES:
        return True
    if not (getattr(storage, "used", True) or getattr(storage, "added_new", True)):
        return False
    if name == COOKIE_MESSAGE_STORAGE:
        return False
    return not _session_reads_free(_session(request))


RequestRule = Callable[[Any, HttpRequest], bool]
ViewRule = Callable[[Any, HttpRequest, Callable[..., Any]], bool]
ResponseRule = Callable[[Any, HttpRequest, HttpResponseBase], bool]


@dataclass(frozen=True)
class Rules:
    """When each hook of one middleware class does I/O (and so runs behind a hop).

    Each rule gets the middleware, the request and the hook's next argument (the view or the
    response), and is called right before the hook would run.
    """

    process_request: RequestRule = _never
    process_view: ViewRule = _never
    process_response: ResponseRule = _never


#: Django's classes served inline, by dotted path, with the rules of their hooks.
#: A class not named here, a subclass included, keeps Django's adaptation.
SERVED: dict[str, Rules] = {
    "django.middleware.security.SecurityMiddleware": Rules(),
    "django.contrib.sessions.middleware.SessionMiddleware": Rules(
        process_request=_store_init_does_io, process_response=_session_saved
    ),
    "django.middleware.common.CommonMiddleware": Rules(),
    "django.middleware.csrf.CsrfViewMiddleware": Rules(
        process_request=_csrf_secret_read,
        process_view=_csrf_checked,
        process_response=_csrf_secret_stored,
    ),
    "django.contrib.auth.middleware.AuthenticationMiddleware": Rules(),
    "django.contrib.auth.middleware.LoginRequiredMiddleware": Rules(process_view=_user_loaded),
    "django.contrib.messages.middleware.MessageMiddleware": Rules(
        process_request=_custom_message_storage, process_response=_messages_stored
    ),
    "django.middleware.clickjacking.XFrameOptionsMiddleware": Rules(),
    "django.middleware.gzip.GZipMiddleware": Rules(),
    "django.middleware.http.ConditionalGetMiddleware": Rules(),
    "django.middleware.locale.LocaleMiddleware": Rules(),
}


def is_served(factory: object) -> bool:
    """Whether ``factory`` is exactly one of Django's classes in :data:`SERVED`."""
    return isinstance(factory, type) and qualname(factory) in SERVED


# --- The adapter -------------------------------------------------------------------------------


class InlineDjangoMiddleware:
    """One of Django's middleware instances (in async mode), its hooks run inline when they can.

    It stands in the chain where Django would put the instance: it calls ``process_request``,
    then the rest of the chain, then ``process_response``, as ``MiddlewareMixin.__acall__`` does,
    and its :meth:`process_view` is what the handler registers instead of the adapted hook.
    Each hook runs on the event loop's thread when its rule says the call does no I/O, and
    through ``sync_to_async(thread_sensitive=True)`` (Django's own adaptation) when it does.
    """

    def __init__(self, middleware: Any) -> None:
        self.middleware = middleware
        self.rules = SERVED[qualname(type(middleware))]
        self.get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = (
            middleware.get_response
        )
        self._process_request = getattr(middleware, "process_request", None)
        self._process_response = getattr(middleware, "process_response", None)
        markcoroutinefunction(self)

    def __repr__(self) -> str:
        return f"<InlineDjangoMiddleware {self.middleware!r}>"

    async def run_hook(self, hook: Callable[..., Any], needs_io: bool, *args: Any) -> Any:
        """Run one of Django's hooks: behind a hop when ``needs_io``, else inline."""
        if needs_io:
            return await sync_to_async(hook, thread_sensitive=True)(*args)
        return hook(*args)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        if self._process_request is not None:
            needs_io = self.rules.process_request(self.middleware, request)
            response = await self.run_hook(self._process_request, needs_io, request)
        response = response or await self.get_response(request)
        if self._process_response is not None:
            needs_io = self.rules.process_response(self.middleware, request, response)
            response = await self.run_hook(self._process_response, needs_io, request, response)
        return response

    async def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        """The middleware's ``process_view``, inline unless its rule says it does I/O."""
        needs_io = self.rules.process_view(self.middleware, request, view)
        return await self.run_hook(  # type: ignore[no-any-return]
            self.middleware.process_view, needs_io, request, view, view_args, view_kwargs
        )


# --- The handler side --------------------------------------------------------------------------


class InlineMiddlewareLoaderMixin(BaseHandler):
    """A handler whose ``load_middleware`` serves Django's own middleware inline under ASGI.

    The chain is built as ``BaseHandler.load_middleware`` builds it (the same modes, adapters,
    ``MiddlewareNotUsed`` handling and hook lists); the one difference is that an instance of a
    class in :data:`SERVED` that runs in async mode is wrapped in :class:`InlineDjangoMiddleware`,
    whose ``process_view`` is registered in place of the adapted one.
    ``process_template_response`` and ``process_exception`` are registered as Django does
    (none of the served classes has them).
    """

    #: The adapter class (tests put a subclass here).
    inline_middleware_class: type[InlineDjangoMiddleware] = InlineDjangoMiddleware

    def load_middleware(self, is_async: bool = False) -> None:
        if not is_async or not conf.INLINE_DJANGO_MIDDLEWARE:
            super().load_middleware(is_async)
            return
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []

        # (django-stubs does not declare BaseHandler._get_response_async.)
        view_layer = self._get_response_async  # type: ignore[attr-defined]
        handler: Any = convert_exception_to_response(view_layer)
        handler_is_async = True
        for path in reversed(settings.MIDDLEWARE):
            factory = import_string(path)
            can_sync = getattr(factory, "sync_capable", True)
            can_async = getattr(factory, "async_capable", False)
            if not can_sync and not can_async:
                raise RuntimeError(
                    f"Middleware {path} must have at least one of sync_capable/async_capable "
                    "set to True."
                )
            middleware_is_async = bool(can_async) if handler_is_async or not can_sync else False
            try:
                adapted = self.adapt_method_mode(
                    middleware_is_async,
                    handler,
                    handler_is_async,
                    debug=settings.DEBUG,
                    name=f"middleware {path}",
                )
                instance = factory(adapted)
            except MiddlewareNotUsed as exc:
                if settings.DEBUG:
                    if str(exc):
                        logger.debug("MiddlewareNotUsed(%r): %s", path, exc)
                    else:
                        logger.debug("MiddlewareNotUsed: %r", path)
                continue
            handler = adapted
            if instance is None:
                raise ImproperlyConfigured(f"Middleware factory {path} returned None.")

            layer: Any = instance
            if middleware_is_async and type(instance) is factory and is_served(factory):
                layer = self.inline_middleware_class(instance)
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(
                    0,
                    layer.process_view
                    if layer is not instance
                    else self.adapt_method_mode(True, instance.process_view),
                )
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(
                    self.adapt_method_mode(True, instance.process_template_response)
                )
            if hasattr(instance, "process_exception"):
                # As in Django: the exception-handling stack is always synchronous.
                self._exception_middleware.append(
                    self.adapt_method_mode(False, instance.process_exception)
                )
            handler = convert_exception_to_response(layer)
            handler_is_async = middleware_is_async

        # We only assign to this when initialization is complete, as Django does: it is the
        # flag for initialization being complete.
        self._middleware_chain = self.adapt_method_mode(True, handler, handler_is_async)
