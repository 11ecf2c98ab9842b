"""Background receivers handed to Django Tasks: the work leaves this process, in a queue.

``@background_receiver(signal, task="alias")`` connects a small sync receiver that turns each
sending of the signal into one task on the ``alias`` backend of the ``TASKS`` setting; a worker
process (``manage.py db_worker`` with django-tasks-db, or any backend's worker) runs the receiver.

What travels is JSON, built when the signal is sent:

* a model instance as its concrete fields' values at that moment (rebuilt in the worker, never
  re-read, so a ``post_delete`` receiver gets the deleted row), a model class as its label;
* sets and tuples as lists, dicts with string keys, strings, numbers, booleans and ``None``;
* anything else is a :class:`TypeError` at send time naming the argument.

A task row is data that anyone who can write to the queue can forge, so the worker trusts none of
it: it runs only a receiver registered here by ``background_receiver(task=...)`` (looked up by its
dotted path, never imported from it), and rebuilding the arguments imports nothing but the model
classes of installed apps, by label (nothing is unpickled).

Transactions: a backend that writes its tasks to the sending transaction's database
(django-tasks-db) enqueues inside that transaction, so the task exists exactly when the save
commits; any other backend is enqueued once the transaction commits (at once outside one).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import inspect
import json
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.models import Model
from django.dispatch import Signal

from django_async_toolkit.conf import conf

__all__ = [
    "TASK_PATH",
    "UnknownReceiverError",
    "backend",
    "dispatcher",
    "enqueue_receiver",
    "receiver_path",
    "register",
    "tasks_module",
]

TASK_NAME = "run_background_receiver"
TASK_PATH = f"{__name__}.{TASK_NAME}"

INSTALL_HINT = (
    "Django Tasks is built into Django 6.0 and later; on Django 4.2 and 5.2 install the backport "
    "with the extra: pip install 'django-async-toolkit[tasks]' (and add 'django_tasks' to "
    "INSTALLED_APPS)."
)

JSON_SCALARS = (str, int, float, bool)


class UnknownReceiverError(LookupError):
    """A task names a receiver that no ``background_receiver(task=...)`` registered here."""


# --- Django Tasks: built in (6.0+) or the backport ----------------------------------------------


@functools.cache
def tasks_module() -> ModuleType:
    """``django.tasks`` (Django 6.0+) or the ``django_tasks`` backport; else a clear error."""
    for name in ("django.tasks", "django_tasks"):
        if importlib.util.find_spec(name) is not None:
            return importlib.import_module(name)
    raise ImproperlyConfigured(f"background_receiver(task=...) needs Django Tasks. {INSTALL_HINT}")


def backend(alias: str) -> Any:
    """The Django Tasks backend of ``alias``; a clear error when there is none by that name."""
    configured = getattr(settings, "TASKS", None)
    handler = tasks_module().task_backends
    if configured is not None and alias not in configured:
        raise ImproperlyConfigured(
            f"background_receiver(task={alias!r}): {alias!r} is not a backend alias of the TASKS "
            f"setting (its aliases: {', '.join(map(repr, configured)) or 'none'})."
        )
    return handler[alias]


# --- The registry of receivers a worker may run --------------------------------------------------


@dataclass
class _Registered:
    func: Callable[..., Any]
    signals: list[Signal] = field(default_factory=list)


_registry: dict[str, _Registered] = {}
_registry_lock = threading.Lock()


def receiver_path(func: object) -> str:
    """The dotted path a worker finds ``func`` by; a :class:`TypeError` if it has none."""
    name = getattr(func, "__qualname__", None)
    module = getattr(func, "__module__", None)
    if not inspect.isfunction(func) or not isinstance(name, str) or not isinstance(module, str):
        raise TypeError(
            f"background_receiver(task=...) needs a module-level 'async def' function, not "
            f"{func!r}: a worker process finds the receiver by its dotted path."
        )
    if "<locals>" in name or "<lambda>" in name:
        raise TypeError(
            f"background_receiver(task=...) cannot hand {module}.{name} to a worker: it is "
            "defined inside a function (or is a lambda), so no other process can find it by its "
            "dotted path. Define it at the top level of a module that the worker imports at "
            "start-up (an app's models.py or signals.py imported by AppConfig.ready())."
        )
    if module == "__main__":
        raise TypeError(
            f"background_receiver(task=...) cannot hand __main__.{name} to a worker: a worker "
            "process has another __main__. Define it in an importable module of an app."
        )
    return f"{module}.{name}"


def register(func: Callable[..., Any], signals: list[Signal]) -> str:
    """Record ``func`` as a receiver that workers may run for ``signals``; return its path."""
    path = receiver_path(func)
    tasks_module()  # a missing Django Tasks is an error when connecting, not when sending
    with _registry_lock:
        entry = _registry.get(path)
        if entry is None or entry.func is not func:  # a module imported again replaces it
            entry = _registry[path] = _Registered(func)
        for signal in signals:
            if not any(known is signal for known in entry.signals):
                entry.signals.append(signal)
    return path


def _signal_index(path: str, signal: Signal) -> int:
    entry = _registry[path]
    for index, known in enumerate(entry.signals):
        if known is signal:
            return index
    raise LookupError(f"{path} is not connected to {signal!r} with background_receiver(task=...).")


# --- Arguments as JSON ---------------------------------------------------------------------------


def _encode(value: object) -> object:
    """A JSON-ready form of ``value``; dicts are tagged, so a value never passes for another."""
    if value is None or isinstance(value, JSON_SCALARS):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("a dict with keys that are not strings")
        return {"dict": {key: _encode(item) for key, item in value.items()}}
    if isinstance(value, Model):
        return {"model": _encode_instance(value)}
    if isinstance(value, type) and issubclass(value, Model):
        return {"model_class": value._meta.label}
    raise TypeError(f"a {type(value).__module__}.{type(value).__qualname__}")


def _encode_instance(instance: Model) -> dict[str, object]:
    deferred = instance.get_deferred_fields()
    values: dict[str, object] = {}
    for model_field in instance._meta.concrete_fields:
        if model_field.attname in deferred:
            continue  # reading it would query the database; it stays deferred in the worker
        value = model_field.value_from_object(instance)
        if value is not None and not isinstance(value, JSON_SCALARS):
            value = model_field.value_to_string(instance)
        values[model_field.attname] = value
    return {
        "label": instance._meta.label,
        "db": instance._state.db,
        "adding": instance._state.adding,
        "fields": values,
    }


def encode_call(
    path: str, signal: Signal, sender: object, named: dict[str, Any]
) -> dict[str, Any]:
    """The task's keyword arguments for one sending; a :class:`TypeError` names what cannot go."""
    encoded: dict[str, Any] = {}
    for name, value in [("sender", sender), *named.items()]:
        try:
            encoded[name] = _encode(value)
            json.dumps(encoded[name], allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"background receiver {path} (task=...): the argument {name!r} cannot travel to "
                f"a task worker as JSON ({error}). Send JSON values, model instances, model "
                "classes or sets, or connect the receiver without task= to run it in this "
                "process."
            ) from None
    return {
        "receiver": path,
        "signal_index": _signal_index(path, signal),
        "sender": encoded.pop("sender"),
        "named": encoded,
    }


def _model_class(label: object) -> type[Model]:
    if not isinstance(label, str):
        raise ValueError(f"a model label must be a string, not {label!r}")
    return apps.get_model(label)  # installed apps only: never imports anything else


def _decode(value: object) -> Any:
    if value is None or isinstance(value, JSON_SCALARS):
        return value
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dict) and len(value) == 1:
        ((kind, body),) = value.items()
        if kind == "dict" and isinstance(body, dict):
            return {key: _decode(item) for key, item in body.items()}
        if kind == "model_class":
            return _model_class(body)
        if kind == "model" and isinstance(body, dict):
            return _rebuild_instance(body)
    raise ValueError(f"{value!r} is not an argument encoded by background_receiver(task=...)")


def _rebuild_instance(body: dict[str, Any]) -> Model:
    model = _model_class(body.get("label"))
    values = body.get("fields")
    if not isinstance(values, dict):
        raise ValueError(f"the fields of a {model._meta.label} must be a dict, not {values!r}")
    known = {model_field.attname: model_field for model_field in model._meta.concrete_fields}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"{model._meta.label} has no field {', '.join(sorted(unknown))}")
    present = [attname for attname in known if attname in values]
    rebuilt = [
        None if values[attname] is None else known[attname].to_python(values[attname])
        for attname in present
    ]
    db = body.get("db")
    instance = model.from_db(db if isinstance(db, str) else None, present, rebuilt)
    instance._state.adding = body.get("adding") is True
    return instance


# --- The task a worker runs ----------------------------------------------------------------------


def _run_background_receiver(
    receiver: object, signal_index: object, sender: object, named: object
) -> None:
    """Run the registered receiver ``receiver`` with the arguments of one sending, rebuilt.

    Every argument comes from a task row (JSON anyone with access to the queue may have
    written), so each one is checked before anything is called.
    """
    entry = _registry.get(receiver) if isinstance(receiver, str) else None
    if entry is None:
        raise UnknownReceiverError(
            f"Refusing to run {receiver!r}: it is not a receiver connected with "
            "@background_receiver(task=...) in this process, and a task can only run one of "
            "those. Nothing was called. If it is one, make the worker import its module at "
            "start-up (connect it in an app's models.py, or in a module AppConfig.ready() "
            "imports)."
        )
    if (
        not isinstance(signal_index, int)
        or isinstance(signal_index, bool)
        or not 0 <= signal_index < len(entry.signals)
    ):
        raise UnknownReceiverError(
            f"Refusing to run {receiver}: signal {signal_index!r} is not one it is connected to. "
            "Nothing was called."
        )
    if not isinstance(named, dict):
        raise ValueError(f"the named arguments of a task must be a dict, not {named!r}")
    arguments = {name: _decode(value) for name, value in named.items()}
    async_to_sync(entry.func)(
        signal=entry.signals[signal_index], sender=_decode(sender), **arguments
    )


# The name Django Tasks imports it by (task.module_path): a module attribute that __getattr__
# builds on first use, so importing this module needs no TASKS setting.
_run_background_receiver.__name__ = _run_background_receiver.__qualname__ = TASK_NAME

_base_task: Any = None
_base_task_lock = threading.Lock()


def _default_alias() -> str:
    alias = conf.BACKGROUND_TASKS
    if alias is not None:
        return alias
    aliases = list(tasks_module().task_backends.settings)
    return "default" if "default" in aliases or not aliases else aliases[0]


def _task() -> Any:
    global _base_task
    with _base_task_lock:
        if _base_task is None:
            _base_task = tasks_module().task(backend=_default_alias())(_run_background_receiver)
        return _base_task


def __getattr__(name: str) -> Any:
    if name == TASK_NAME:
        return _task()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- Enqueueing ----------------------------------------------------------------------------------


def _backend_database(backend: Any) -> str | None:
    """The database alias a backend writes its tasks to, when it is one that uses the ORM."""
    if not type(backend).__module__.startswith("django_tasks_db"):
        return None
    from django_tasks_db.models import DBTaskResult

    return router.db_for_write(DBTaskResult)


def dispatcher(
    func: Callable[..., Any],
    signals: list[Signal],
    alias: str,
    *,
    submit: Callable[[str, Callable[[], Coroutine[Any, Any, object]]], None],
) -> Callable[..., None]:
    """The sync receiver that ``background_receiver(task=alias)`` connects for ``func``."""
    path = register(func, signals)
    backend(alias)  # an unknown alias is an error now, not at the first save

    def enqueue(signal: Signal, sender: object, **named: Any) -> None:
        on_loop = True
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            on_loop = False
        enqueue_receiver(path, alias, signal, sender, named, on_loop_thread=on_loop, submit=submit)

    return enqueue


def enqueue_receiver(
    path: str,
    alias: str,
    signal: Signal,
    sender: object,
    named: dict[str, Any],
    *,
    on_loop_thread: bool,
    submit: Callable[[str, Callable[[], Coroutine[Any, Any, object]]], None],
) -> None:
    """Enqueue one task that runs the receiver at ``path`` for this sending of ``signal``.

    The arguments are encoded now (a :class:`TypeError` names one that cannot travel).
    On a thread that runs an event loop (the ORM refuses to run there, and no transaction is
    open) the enqueue itself is handed to ``submit``, an in-process background dispatch.
    """
    kwargs = encode_call(path, signal, sender, named)
    task_backend = backend(alias)
    queued = _task().using(backend=alias)
    enqueue = functools.partial(queued.enqueue, **kwargs)
    if on_loop_thread:
        submit(f"enqueue of {path} on task backend {alias!r}", sync_to_async(enqueue))
        return
    using = named.get("using")
    using = using if isinstance(using, str) else DEFAULT_DB_ALIAS
    if not connections[using].in_atomic_block or _backend_database(task_backend) == using:
        # Outside a transaction; or inside one of the backend's own database, which the
        # enqueue joins: the task exists exactly if the transaction commits.
        enqueue()
    else:
        transaction.on_commit(enqueue, using=using)
