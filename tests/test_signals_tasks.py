"""Background receivers on Django Tasks, in this process: the immediate and dummy backends.

The fixture app ``tests.tasksapp`` connects its receivers at start-up, as a project does; the
immediate backend (alias ``default``) runs them inside the enqueue, the dummy one (``dummy``)
keeps the task results for the test to look at and run.
"""

from __future__ import annotations

import datetime
import decimal
import importlib.util
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.dispatch import Signal
from django.test import override_settings
from django.utils import timezone
from django.utils.module_loading import import_string

from tests import tasks_config

pytestmark = pytest.mark.skipif(
    not (tasks_config.BUILT_IN or tasks_config.BACKPORT),
    reason="Django Tasks is not installed (Django 6.0+, or pip install django-tasks)",
)

if tasks_config.BUILT_IN or tasks_config.BACKPORT:
    from django_async_toolkit.signals import (
        asend,
        background_receiver,
        drain_background,
        drain_background_sync,
        send_background,
    )
    from django_async_toolkit.signals import tasks as signal_tasks
    from tests.tasksapp import receivers
    from tests.tasksapp.models import Draft, Note


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    receivers.calls.clear()
    dummy().clear()
    yield
    drain_background_sync(timeout=10)
    receivers.calls.clear()
    dummy().clear()


def dummy() -> Any:
    return signal_tasks.tasks_module().task_backends["dummy"]


def calls_of(name: str) -> list[dict[str, Any]]:
    return [call for call in receivers.calls if call["receiver"] == name]


# --- Every send enqueues one task ---


@pytest.mark.django_db(transaction=True)
def test_a_save_runs_the_receiver_once_with_the_instance_rebuilt() -> None:
    due = timezone.now().replace(microsecond=0)
    note = Note.objects.create(
        title="first", price=decimal.Decimal("1.50"), due=due, extra={"tags": ["a", 1]}
    )

    (call,) = calls_of("note_saved")
    assert call["sender"] is Note
    assert call["created"] is True
    assert call["raw"] is False
    assert call["using"] == "default"
    assert call["update_fields"] is None
    rebuilt = call["instance"]
    assert isinstance(rebuilt, Note)
    assert rebuilt is not note
    assert (rebuilt.pk, rebuilt.title, rebuilt.price, rebuilt.due) == (
        note.pk,
        "first",
        decimal.Decimal("1.50"),
        due,
    )
    assert rebuilt.token == note.token
    assert rebuilt.extra == {"tags": ["a", 1]}
    assert rebuilt._state.adding is False
    assert rebuilt._state.db == "default"

    note.title = "second"
    note.save(update_fields=["title"])
    assert [c["update_fields"] for c in calls_of("note_saved")] == [None, ["title"]]


@pytest.mark.django_db(transaction=True)
def test_post_delete_gets_the_row_as_it_was() -> None:
    parent = Note.objects.create(title="parent")
    note = Note.objects.create(title="doomed", parent=parent)
    pk = note.pk
    note.delete()

    (call,) = calls_of("note_deleted")
    assert call["instance"].pk == pk  # rebuilt from the values sent, not re-read: it is gone
    assert call["instance"].title == "doomed"
    assert call["instance"].parent_id == parent.pk
    assert call["origin"].pk == pk
    assert not Note.objects.filter(pk=pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_queryset_delete_names_the_origin_it_cannot_carry() -> None:
    Note.objects.create(title="one")
    with pytest.raises(TypeError, match="'origin'.*QuerySet"):
        Note.objects.all().delete()
    assert Note.objects.count() == 1  # the delete's transaction rolled back


def test_send_enqueues_once_per_send() -> None:
    receivers.pinged.send(sender=None, n=1, tags={"a", "b"}, pair=(1, 2))
    receivers.pinged.send(sender=Note, n=2, nested={"x": {"y": [1.5, None]}})

    first, second = calls_of("ping_received")
    assert first["sender"] is None
    assert first["signal"] is receivers.pinged
    assert (first["n"], sorted(first["tags"]), first["pair"]) == (1, ["a", "b"], [1, 2])
    assert second["sender"] is Note
    assert second["nested"] == {"x": {"y": [1.5, None]}}


async def test_asend_enqueues_once() -> None:
    await asend(receivers.pinged, sender=None, n=3)
    assert [c["n"] for c in calls_of("ping_received")] == [3]


async def test_send_background_from_async_code_enqueues_once() -> None:
    send_background(receivers.pinged, sender=None, n=4)
    await drain_background(timeout=10)
    assert [c["n"] for c in calls_of("ping_received")] == [4]


def test_send_background_from_sync_code_enqueues_once_and_at_once() -> None:
    send_background(receivers.queued, sender=None, n=5)
    # The enqueue happened inside send_background(), not in a background dispatch.
    assert len(dummy().results) == 1
    drain_background_sync(timeout=10)
    assert [c["n"] for c in calls_of("ping_received")] == [5]


def test_one_receiver_on_two_signals_is_called_with_the_signal_sent() -> None:
    receivers.queued.send(sender=None, n=6)
    (call,) = calls_of("ping_received")
    assert call["signal"] is receivers.queued


# --- Arguments as JSON ---


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (object(), "builtins.object"),
        (datetime.date(2024, 1, 1), "datetime.date"),
        ({1: "a"}, "keys that are not strings"),
        (float("nan"), "not JSON compliant"),
    ],
)
def test_an_argument_json_cannot_carry_is_a_type_error_at_send_time(value: Any, what: str) -> None:
    with pytest.raises(TypeError, match=f"argument 'thing'.*{what}"):
        receivers.pinged.send(sender=None, thing=value)
    assert receivers.calls == []


def test_a_sender_json_cannot_carry_is_named() -> None:
    with pytest.raises(TypeError, match="argument 'sender'"):
        receivers.pinged.send(sender=object())


def test_the_dummy_backend_keeps_one_json_task_per_send() -> None:
    receivers.queued.send(sender=Note, n=7, tags=frozenset({"x"}))
    (result,) = dummy().results
    assert result.task.module_path == signal_tasks.TASK_PATH
    assert result.task.backend == "dummy"
    assert json.loads(json.dumps(result.kwargs)) == {
        "receiver": "tests.tasksapp.receivers.queued_to_dummy",
        "signal_index": 0,
        "sender": {"model_class": "tasksapp.Note"},
        "named": {"n": 7, "tags": ["x"]},
    }
    assert calls_of("queued_to_dummy") == []

    # What a worker does with it: find the Task by its path, and call it.
    task = import_string(result.task.module_path)
    task.call(*result.args, **result.kwargs)
    (call,) = calls_of("queued_to_dummy")
    assert (call["sender"], call["n"], call["tags"]) == (Note, 7, ["x"])


# --- Transactions ---


@pytest.mark.django_db(transaction=True)
def test_a_backend_outside_the_database_is_enqueued_on_commit() -> None:
    with transaction.atomic():
        Draft.objects.create(title="kept")
        assert dummy().results == []  # not before the commit
    assert len(dummy().results) == 1

    with pytest.raises(RuntimeError), transaction.atomic():
        Draft.objects.create(title="rolled back")
        raise RuntimeError("roll back")
    assert len(dummy().results) == 1  # a rollback enqueues nothing


# --- Safety: a task is data that anyone with write access to the queue can forge ---


@pytest.fixture
def no_system_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    commands: list[str] = []
    monkeypatch.setattr(os, "system", commands.append)
    return commands


def run_forged(**kwargs: Any) -> None:
    task = import_string(signal_tasks.TASK_PATH)
    task.call(**{"signal_index": 0, "sender": None, "named": {}, **kwargs})


@pytest.mark.parametrize(
    "receiver", ["os.system", "tests.tasksapp.receivers.plain_function", "", 42]
)
def test_a_task_naming_anything_but_a_registered_receiver_calls_nothing(
    receiver: Any, no_system_calls: list[str]
) -> None:
    with pytest.raises(signal_tasks.UnknownReceiverError, match="Nothing was called"):
        run_forged(receiver=receiver, named={"command": "echo pwned"})
    assert no_system_calls == []


@pytest.mark.parametrize("index", [1, -1, "0", True, None])
def test_a_task_naming_a_signal_the_receiver_is_not_connected_to_calls_nothing(
    index: Any,
) -> None:
    with pytest.raises(signal_tasks.UnknownReceiverError):
        run_forged(receiver="tests.tasksapp.receivers.note_saved", signal_index=index)
    assert receivers.calls == []


@pytest.mark.parametrize(
    ("named", "error"),
    [
        ({"instance": {"model": {"label": "os.path", "fields": {}}}}, LookupError),
        ({"instance": {"model_class": "subprocess.Popen"}}, LookupError),
        ({"instance": {"pickle": "gASVAAAA"}}, ValueError),
        ({"instance": {"model": {"label": "tasksapp.Note", "fields": {"nope": 1}}}}, ValueError),
        ({"a": 1, "b": {"dict": {}, "extra": 1}}, ValueError),
    ],
)
def test_rebuilding_arguments_imports_only_models_by_label(
    named: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        run_forged(receiver="tests.tasksapp.receivers.note_saved", named=named)
    assert receivers.calls == []


# --- Connecting ---

signal_of_tests = Signal()


async def module_level_receiver(sender: Any, **kwargs: Any) -> None:
    receivers.calls.append({"receiver": "module_level_receiver", **kwargs})


def test_a_receiver_defined_in_a_function_is_a_type_error_when_connected() -> None:
    async def closure(sender: Any, **kwargs: Any) -> None:
        pass

    with pytest.raises(TypeError, match="defined inside a function"):
        background_receiver(signal_of_tests, task="dummy")(closure)
    assert not signal_of_tests.receivers


def test_a_receiver_in_main_is_a_type_error_when_connected() -> None:
    async def in_main(sender: Any, **kwargs: Any) -> None:
        pass

    in_main.__qualname__ = "in_main"
    in_main.__module__ = "__main__"
    with pytest.raises(TypeError, match="__main__"):
        background_receiver(signal_of_tests, task="dummy")(in_main)


def test_an_unknown_alias_is_an_error_when_connected() -> None:
    with pytest.raises(ImproperlyConfigured, match="'nowhere' is not a backend alias"):
        background_receiver(signal_of_tests, task="nowhere")(module_level_receiver)


def test_the_default_setting_hands_every_background_receiver_to_tasks() -> None:
    local = Signal()
    with override_settings(ASYNC_TOOLKIT_BACKGROUND_TASKS="dummy"):
        background_receiver(local)(module_level_receiver)
        local.send(sender=None, n=8)
    (result,) = dummy().results
    assert result.kwargs["receiver"] == f"{__name__}.module_level_receiver"
    assert receivers.calls == []


def test_without_django_tasks_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    signal_tasks.tasks_module.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    try:
        with pytest.raises(ImproperlyConfigured, match=r"django-async-toolkit\[tasks\]"):
            background_receiver(signal_of_tests, task="dummy")(module_level_receiver)
    finally:
        monkeypatch.undo()
        signal_tasks.tasks_module.cache_clear()


# --- The guide's example ---


class Recorder:
    """A webhook endpoint that records each JSON body."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(json.loads(body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.mark.django_db(transaction=True)
def test_the_guide_example_runs_the_receiver_from_the_task() -> None:
    from django.contrib.auth.models import User
    from django.db.models.signals import post_save

    from tests.docs_examples import load_example
    from tests.servers import serve_asgi

    crm = Recorder()
    with serve_asgi(crm) as url, override_settings(CRM_WEBHOOK_URL=f"{url}/hooks"):
        example = load_example("signals_tasks")
        try:
            user = User.objects.create(username="ada")  # the immediate backend runs it here
        finally:
            assert post_save.disconnect(sender=User, dispatch_uid="crm_user_saved_task")
            del example
    assert crm.bodies == [{"id": user.pk, "username": "ada", "created": True}]


# --- ASYNC_TOOLKIT_BACKGROUND_TASKS and its check ---


def background_tasks_errors() -> list[Any]:
    from django_async_toolkit.checks import check_settings

    return [e for e in check_settings() if "ASYNC_TOOLKIT_BACKGROUND_TASKS" in e.msg]


def test_e001_for_an_alias_that_tasks_does_not_have() -> None:
    with override_settings(ASYNC_TOOLKIT_BACKGROUND_TASKS="nowhere"):
        (error,) = background_tasks_errors()
    assert error.id == "async_toolkit.E001"
    assert "'nowhere'" in error.msg
    assert "alias of a backend of the TASKS setting" in error.msg
    with override_settings(ASYNC_TOOLKIT_BACKGROUND_TASKS="dummy"):
        assert background_tasks_errors() == []
    with override_settings(ASYNC_TOOLKIT_BACKGROUND_TASKS=None):
        assert background_tasks_errors() == []


def test_e001_without_django_tasks_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django_async_toolkit import conf

    monkeypatch.setattr(conf, "_tasks_installed", lambda: False)
    with override_settings(ASYNC_TOOLKIT_BACKGROUND_TASKS="default"):
        (error,) = background_tasks_errors()
        with pytest.raises(ImproperlyConfigured, match=r"django-async-toolkit\[tasks\]"):
            background_receiver(signal_of_tests)(module_level_receiver)
    assert error.id == "async_toolkit.E001"
    assert "pip install 'django-async-toolkit[tasks]'" in error.msg
