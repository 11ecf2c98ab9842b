"""Each signal's live receivers: sync or async, background or not."""

from __future__ import annotations

import inspect
import re
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.apps import apps
from django.dispatch import Signal

from django_async_toolkit._validation import qualname
from django_async_toolkit.signals import is_background_receiver


@dataclass
class ReceiverReport:
    """One connected receiver."""

    receiver: str
    is_async: bool
    #: Connected with ``@background_receiver``: the sender does not wait for it.
    background: bool
    #: The model it listens to, ``None`` for any sender, or a description of another sender.
    sender: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "async": self.is_async,
            "background": self.background,
            "sender": self.sender,
        }


@dataclass
class SignalReport:
    """One signal with the receivers connected to it."""

    signal: str
    receivers: list[ReceiverReport]

    def as_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "receivers": [r.as_dict() for r in self.receivers]}


def _signal_names() -> dict[int, tuple[str, Signal]]:
    """Every ``Signal`` found as a module attribute, under one name each."""
    found: dict[int, list[tuple[str, Signal]]] = {}
    for module_name, module in list(sys.modules.items()):
        # sys.modules may hold None (a blocked import) or objects without a __dict__.
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attribute, value in list(namespace.items()):
            # type(), not isinstance(): isinstance() would evaluate lazy objects (their __class__).
            if issubclass(type(value), Signal):
                found.setdefault(id(value), []).append((f"{module_name}.{attribute}", value))
    return {key: _home(names) for key, names in found.items()}


def _defines(module_name: str, attribute: str) -> bool:
    """Whether the module's source assigns ``attribute`` at top level (it is the signal's home)."""
    module = sys.modules.get(module_name)
    try:
        source = inspect.getsource(module)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    return re.search(rf"^{re.escape(attribute)}\s*(:[^=]*)?=", source, re.MULTILINE) is not None


def _home(names: list[tuple[str, Signal]]) -> tuple[str, Signal]:
    """The name of a signal that other modules import: the module that defines it, if found."""
    if len(names) > 1:
        defined = [item for item in names if _defines(*item[0].rsplit(".", 1))]
        names = defined or names
    return min(names, key=lambda item: (item[0].count("."), item[0]))


def _sender_names() -> dict[int, str]:
    names = {id(config): f"the {config.label} app" for config in apps.get_app_configs()}
    for model in apps.get_models(include_auto_created=True):
        names[id(model)] = model._meta.label
    return names


def _live_receiver(entry: tuple[Any, ...]) -> Any:
    receiver = entry[1]
    if isinstance(receiver, weakref.ReferenceType):
        return receiver()
    return receiver


def background_target(receiver: object) -> Callable[..., Any] | None:
    """The ``async def`` function behind a receiver connected by ``@background_receiver``.

    That receiver wraps the decorated function (``functools.update_wrapper``, so
    ``__wrapped__`` is that function).
    """
    if not is_background_receiver(receiver):
        return None
    target = getattr(receiver, "__wrapped__", receiver)
    return target if callable(target) else None


_TOOLKIT = "django_async_toolkit"


def audit_signals() -> list[SignalReport]:
    """Every signal that has live receivers, sorted by name, receivers in connection order.

    The toolkit's own receivers (those whose module is inside ``django_async_toolkit``, such as
    the one that notes each new database connection) are left out; a project's
    ``@background_receiver`` functions are named by the function, so they stay.
    """
    none_id = id(None)
    senders = _sender_names()
    reports = []
    for name, signal in sorted(_signal_names().values(), key=lambda item: item[0]):
        receivers = []
        with signal.lock:
            entries = list(signal.receivers)
        for entry in entries:
            receiver = _live_receiver(entry)
            if receiver is None:
                continue
            sender_id = entry[0][1]
            if sender_id == none_id:
                sender = None
            else:
                sender = senders.get(sender_id, "an object that is not a model or an app")
            target = background_target(receiver)
            receiver_name = qualname(target if target is not None else receiver)
            if receiver_name.split(".", 1)[0] == _TOOLKIT:
                continue  # the toolkit's own bookkeeping: nothing the project can change
            receivers.append(
                ReceiverReport(
                    receiver=receiver_name,
                    is_async=iscoroutinefunction(target if target is not None else receiver),
                    background=target is not None,
                    sender=sender,
                )
            )
        if receivers:
            reports.append(SignalReport(name, receivers))
    return reports
