"""System checks, registered by the app config.

Every check has a stable id (``async_toolkit.E001`` ...), so it can be silenced with
``SILENCED_SYSTEM_CHECKS`` and asserted by id in tests.
The ids and what to do about each are listed in the docs' audit page.
The middleware arithmetic comes from :mod:`django_async_toolkit.audit`, shared with
``manage.py async_audit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from django_async_toolkit.audit import (
    Interfaces,
    async_unsafe_allowed,
    audit_signals,
    blocking_detector_middleware_entries,
    model_middleware,
    served_interfaces,
    timeout_middleware_entries,
    uvloop_installed,
)
from django_async_toolkit.conf import (
    describe_problem,
    invalid_settings,
    unknown_setting_message,
    unknown_settings,
)


@register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``async_toolkit.E001``: a toolkit setting has a value it does not allow."""
    return [
        Error(
            describe_problem(setting, value),
            hint=f"Set {setting.full_name} to {setting.allowed}, or remove it to use the default.",
            id="async_toolkit.E001",
        )
        for setting, value in invalid_settings()
    ]


@register()
def check_unknown_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``async_toolkit.W007``: an ``ASYNC_TOOLKIT_*`` name the toolkit does not know (a typo)."""
    return [
        Warning(
            unknown_setting_message(name, close),
            hint=(
                f"Rename it to {close}." if close else "Remove it; docs/settings.rst lists them."
            ),
            obj=name,
            id="async_toolkit.W007",
        )
        for name, close in unknown_settings()
    ]


def _interfaces() -> Interfaces | None:
    try:
        return served_interfaces()
    except ImproperlyConfigured:
        return None  # ASYNC_TOOLKIT_INTERFACE is invalid: E001 reports it.


def _sync_only_warnings(interfaces: Interfaces) -> list[CheckMessage]:
    entries, chain = model_middleware(is_async=True)
    warnings: list[CheckMessage] = []
    for path, kind, layer in entries:
        if kind != "sync" or layer is None:
            continue
        _, rewritten = model_middleware(is_async=True, as_hop_free=path)
        shared = (
            " (it shares the 2 adapters around its run of neighbouring sync layers)"
            if layer.adapter_hops < 2
            else ""
        )
        if rewritten.hops > chain.hops:
            # The hybrids above it run sync today; async, their sync hooks would each cost a hop.
            outcome = (
                f"made async-capable, the chain would cost {rewritten.hops}, because the "
                "middleware above it would then run async and pay a hop per sync hook "
                "(MiddlewareMixin): rewrite those too"
            )
        else:
            outcome = f"made async-capable, the chain would cost {rewritten.hops}"
        warnings.append(
            Warning(
                f"Middleware {path} is sync-only (it is not async_capable) and the project is "
                f"served by ASGI ({interfaces.source}): Django runs it through sync_to_async/"
                f"async_to_sync, which costs {_hops(layer.hops)} on every request{shared}. "
                f"The whole chain costs {_hops(chain.hops)}; {outcome}.",
                hint=(
                    "Make it async-capable: subclass "
                    "django_async_toolkit.middleware.AsyncMiddleware (no hop in either mode), or "
                    "set async_capable = True and handle both modes; or remove it. "
                    "'manage.py async_audit' shows the hops of every layer."
                ),
                obj=path,
                id="async_toolkit.W001",
            )
        )
    return warnings


def _hops(count: int) -> str:
    return f"{count} thread hop{'' if count == 1 else 's'}"


def _served_without_asgi(interfaces: Interfaces) -> str:
    if interfaces.explicit:
        return f"is served only by WSGI ({interfaces.source})"
    return f"is not known to be served by ASGI ({interfaces.source})"


def _without_asgi_warnings(
    interfaces: Interfaces, entries: list[str], effect: str, remedy: str, check_id: str
) -> list[CheckMessage]:
    """A warning for each entry, which does nothing unless the project is served by ASGI."""
    served = _served_without_asgi(interfaces)
    return [
        Warning(
            f"{path} is in MIDDLEWARE but the project {served}. {effect}",
            hint=(
                "If the project is served by ASGI (uvicorn, daphne, granian, hypercorn), set "
                "ASYNC_TOOLKIT_INTERFACE = 'asgi' (or 'both'). "
                f"If it is served only by WSGI, {remedy}"
            ),
            obj=path,
            id=check_id,
        )
        for path in entries
    ]


def _timeout_warnings(interfaces: Interfaces) -> list[CheckMessage]:
    return _without_asgi_warnings(
        interfaces,
        timeout_middleware_entries(),
        effect=(
            "Under WSGI a request cannot be cancelled: the middleware passes requests through "
            "and ASYNC_TOOLKIT_REQUEST_TIMEOUT has no effect."
        ),
        remedy=(
            "remove the middleware and use the server's own timeout (for example gunicorn's "
            "--timeout)."
        ),
        check_id="async_toolkit.W003",
    )


def _blocking_detector_warnings(interfaces: Interfaces) -> list[CheckMessage]:
    return _without_asgi_warnings(
        interfaces,
        blocking_detector_middleware_entries(),
        effect=(
            "Under WSGI there is no event loop to watch: the middleware passes requests "
            "through, detects nothing and adds no Server-Timing entry."
        ),
        remedy="remove the middleware.",
        check_id="async_toolkit.W004",
    )


#: What W005 says each middleware loses when a sync-only middleware below it makes it sync.
_LOST_IN_SYNC_MODE = {
    "timeout": (
        "requests are never cancelled at their deadline (a view that overruns "
        "ASYNC_TOOLKIT_REQUEST_TIMEOUT gets no 504)"
    ),
    "detector": (
        "the blocking detector is not started by requests and adds no Server-Timing entry "
        "(nothing is watched unless ASYNC_TOOLKIT_BLOCKING_DETECTOR starts it at lifespan "
        "startup)"
    ),
}


def _made_sync_warnings() -> list[CheckMessage]:
    """``W005``: a sync-only middleware below Timeout/BlockingDetector makes them run sync."""
    entries, _ = model_middleware(is_async=True)
    watched = dict.fromkeys(timeout_middleware_entries(), "timeout")
    watched.update(dict.fromkeys(blocking_detector_middleware_entries(), "detector"))
    warnings: list[CheckMessage] = []
    for index, (path, _, layer) in enumerate(entries):
        if path not in watched or layer is None or layer.mode == "async":
            continue
        below = [p for p, kind, lower in entries[index + 1 :] if kind == "sync" and lower]
        culprits = ", ".join(below) or "a middleware below it"
        warnings.append(
            Warning(
                f"{path} runs in sync mode under ASGI, because the sync-only middleware "
                f"{culprits} below it in MIDDLEWARE makes the rest of the chain sync: "
                f"{_LOST_IN_SYNC_MODE[watched[path]]}.",
                hint=(
                    f"Make {culprits} async-capable (see django_async_toolkit.middleware."
                    f"AsyncMiddleware), or move {path} below it in MIDDLEWARE."
                ),
                obj=path,
                id="async_toolkit.W005",
            )
        )
    return warnings


@register()
def check_middleware(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``W001``: sync-only middleware under ASGI; ``W003``/``W004``: ``TimeoutMiddleware``/
    ``BlockingDetectorMiddleware`` in a project not served by ASGI; ``W005``: either of them
    made sync under ASGI by a sync-only middleware below it.

    ``E003``: a ``MIDDLEWARE`` entry that cannot be loaded (Django's handler would fail on it).
    """
    interfaces = _interfaces()
    if interfaces is None:
        return []
    try:
        if interfaces.asgi:
            return _sync_only_warnings(interfaces) + _made_sync_warnings()
        return _timeout_warnings(interfaces) + _blocking_detector_warnings(interfaces)
    except ImproperlyConfigured as exc:
        return [
            Error(
                f"MIDDLEWARE cannot be loaded: {exc}",
                hint="Django's handler fails on the same entry at the first request; fix it.",
                id="async_toolkit.E003",
            )
        ]


@register()
def check_async_unsafe(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``W002``: ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set in the environment."""
    value = async_unsafe_allowed()
    if value is None:
        return []
    return [
        Warning(
            f"DJANGO_ALLOW_ASYNC_UNSAFE is set in the environment ({value!r}): Django no longer "
            "raises SynchronousOnlyOperation, so a sync ORM call made from async code blocks the "
            "event loop (and every request it serves) instead of failing.",
            hint=(
                "Unset it outside an interactive shell or notebook. In async code use the async "
                "ORM (aget, acreate, 'async for'), or wrap sync calls with "
                "django_async_toolkit.sync.db_sync_to_async."
            ),
            id="async_toolkit.W002",
        )
    ]


@register()
def check_event_loop(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``E002``: ``ASYNC_TOOLKIT_EVENT_LOOP = "uvloop"`` but uvloop is not installed."""
    if getattr(settings, "ASYNC_TOOLKIT_EVENT_LOOP", None) != "uvloop" or uvloop_installed():
        return []
    return [
        Error(
            "ASYNC_TOOLKIT_EVENT_LOOP is 'uvloop' but uvloop is not installed: async management "
            "commands would fail to start.",
            hint=(
                "Install it with 'pip install django-async-toolkit[uvloop]' (not available on "
                "Windows), or set ASYNC_TOOLKIT_EVENT_LOOP = 'asyncio'."
            ),
            id="async_toolkit.E002",
        )
    ]


#: Django's model signals: sent synchronously, also from ``asave()`` and ``adelete()``.
MODEL_SIGNALS = tuple(
    f"django.db.models.signals.{name}"
    for name in (
        "pre_init",
        "post_init",
        "pre_save",
        "post_save",
        "pre_delete",
        "post_delete",
        "m2m_changed",
    )
)


@register()
def check_model_signal_receivers(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``W006``: an ``async def`` receiver on a model signal makes every save wait for it."""
    warnings: list[CheckMessage] = []
    for signal in audit_signals():
        if signal.signal not in MODEL_SIGNALS:
            continue
        for receiver in signal.receivers:
            if not receiver.is_async or receiver.background:
                continue
            short = signal.signal.rsplit(".", 1)[1]
            warnings.append(
                Warning(
                    f"{receiver.receiver} is an 'async def' receiver of {short}: model signals "
                    "are sent synchronously (also from asave() and adelete()), so every "
                    f"{'save' if 'save' in short else short.replace('_', ' ')} waits for it "
                    "to finish, on a thread of its own.",
                    hint=(
                        "Connect it with @django_async_toolkit.signals.background_receiver("
                        f"{short}, ...) so that senders do not wait (on_commit=True to run it "
                        "only after the transaction commits), or make it a plain def receiver."
                    ),
                    obj=receiver.receiver,
                    id="async_toolkit.W006",
                )
            )
    return warnings
