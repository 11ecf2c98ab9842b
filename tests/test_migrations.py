"""``RunPythonAsync``: real migrations of ``tests/migrapp`` applied and unapplied with ``migrate``.

The app is installed only inside these tests (``modify_settings``); each test that migrates it
unapplies everything afterwards, so the database is left as it was.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.special import RunPython
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.writer import OperationWriter
from django.test.utils import modify_settings

from django_async_toolkit.migrations import RunPythonAsync
from django_async_toolkit.sync import db_sync_to_async
from tests.migrapp import probe
from tests.test_sync import close_thread_sensitive_connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures(close_thread_sensitive_connection.__name__),
]


def migrate(*target: str) -> None:
    call_command("migrate", "migrapp", *target, verbosity=0, interactive=False)


def applied() -> list[str]:
    return sorted(
        name
        for app, name in MigrationRecorder(connection).applied_migrations()
        if app == "migrapp"
    )


def note_texts() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT text FROM migrapp_note ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def note_table_exists() -> bool:
    return "migrapp_note" in connection.introspection.table_names()


@pytest.fixture
def migrapp() -> Iterator[None]:
    """``tests.migrapp`` installed, and all its migrations unapplied at the end."""
    with modify_settings(INSTALLED_APPS={"append": "tests.migrapp.apps.MigrappConfig"}):
        assert global_apps.is_installed("tests.migrapp")
        try:
            yield
        finally:
            migrate("zero")
    assert not note_table_exists()


@pytest.mark.usefixtures("migrapp")
def test_apply_and_unapply() -> None:
    migrate()
    assert applied() == ["0001_initial", "0002_add_notes", "0003_check_notes"]
    assert note_texts() == ["first", "second", "third"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM migrapp_note WHERE checked")
        assert cursor.fetchone() == (3,)

    migrate("0002")  # 0003's reverse is RunPythonAsync.noop
    assert note_texts() == ["first", "second", "third"]
    migrate("0001")  # 0002's reverse deletes its rows
    assert applied() == ["0001_initial"]
    assert note_table_exists()
    assert note_texts() == []


@pytest.mark.usefixtures("migrapp")
def test_async_orm_uses_the_migration_thread_and_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    migration_thread = threading.get_ident()

    async def after_forwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        seen["loop_thread"] = threading.get_ident()

        def inspect() -> None:
            seen["orm_thread"] = threading.get_ident()
            seen["same_connection"] = connections[DEFAULT_DB_ALIAS] is schema_editor.connection
            seen["in_atomic_block"] = schema_editor.connection.in_atomic_block
            seen["count"] = apps.get_model("migrapp", "Note").objects.count()

        await sync_to_async(inspect)()

    monkeypatch.setattr(probe, "after_forwards", after_forwards)
    migrate("0002")
    assert seen["loop_thread"] != migration_thread
    assert seen["orm_thread"] == migration_thread
    assert seen["same_connection"] is True
    assert seen["in_atomic_block"] is True
    assert seen["count"] == 3


@pytest.mark.usefixtures("migrapp")
def test_concurrent_orm_calls_share_the_migration_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def after_forwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        Note = apps.get_model("migrapp", "Note")
        await asyncio.gather(*(Note.objects.acreate(text=f"extra {i}") for i in range(5)))

    monkeypatch.setattr(probe, "after_forwards", after_forwards)
    migrate("0002")
    assert sorted(note_texts()) == sorted(
        ["first", "second", "third"] + [f"extra {i}" for i in range(5)]
    )


class HalfWay(Exception):
    pass


@pytest.mark.usefixtures("migrapp")
def test_failure_half_way_leaves_no_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    async def after_forwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        # The rows exist inside the migration's transaction...
        assert await apps.get_model("migrapp", "Note").objects.acount() == 3
        raise HalfWay("after the rows were created")

    monkeypatch.setattr(probe, "after_forwards", after_forwards)
    with pytest.raises(HalfWay):
        migrate()
    # ... and the rollback took them away with the migration.
    assert applied() == ["0001_initial"]
    assert note_texts() == []

    monkeypatch.undo()
    migrate()
    assert note_texts() == ["first", "second", "third"]


@pytest.mark.postgres_only
@pytest.mark.usefixtures("migrapp")
def test_other_threads_are_outside_the_migration_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts: dict[str, int] = {}

    async def after_forwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        Note = apps.get_model("migrapp", "Note")
        counts["thread_sensitive"] = await Note.objects.acount()
        counts["other_thread"] = await db_sync_to_async(
            Note.objects.count, thread_sensitive=False
        )()

    monkeypatch.setattr(probe, "after_forwards", after_forwards)
    migrate()
    # PostgreSQL isolates the uncommitted rows from the other thread's own connection.
    assert counts == {"thread_sensitive": 3, "other_thread": 0}


@pytest.mark.usefixtures("migrapp")
def test_migrate_plan_shows_the_functions_docstrings() -> None:
    out = io.StringIO()
    call_command("migrate", "migrapp", plan=True, stdout=out, no_color=True)
    assert out.getvalue().splitlines()[3:] == [
        "migrapp.0002_add_notes",
        "    Raw Python operation -> Add the first three notes.",
        "migrapp.0003_check_notes",
        "    Raw Python operation -> Mark every note checked.",
    ]
    migrate()
    out = io.StringIO()
    call_command("migrate", "migrapp", "0001", plan=True, stdout=out, no_color=True)
    # The reverse of 0003 is RunPythonAsync.noop, shown as Django shows RunPython.noop.
    assert out.getvalue().splitlines()[1:] == [
        "migrapp.0003_check_notes",
        "    Raw Python operation",
        "migrapp.0002_add_notes",
        "    Raw Python operation -> Remove the first three notes.",
    ]


@pytest.mark.usefixtures("migrapp")
async def test_migrate_from_async_code() -> None:
    """``migrate`` run from a thread that ``sync_to_async`` started: the loop above is not used."""
    await db_sync_to_async(migrate)()
    assert await db_sync_to_async(note_texts)() == ["first", "second", "third"]
    await db_sync_to_async(migrate)("zero")


async def forwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """A module-level async step, for the serialization test."""


def sync_forwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """A sync step: RunPythonAsync refuses it."""


async def documented(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Backfill the documented rows."""


def test_the_operation_keeps_the_functions_name_and_docstring() -> None:
    operation = RunPythonAsync(documented, reverse_code=forwards)
    for wrapper, code in [(operation.code, documented), (operation.reverse_code, forwards)]:
        assert wrapper is not code
        assert wrapper.__name__ == code.__name__
        assert wrapper.__qualname__ == code.__qualname__
        assert wrapper.__module__ == code.__module__
        assert wrapper.__doc__ == code.__doc__
    assert operation.code.__doc__ == "Backfill the documented rows."
    # Nothing to run: the no-op step is Django's own, described as Django describes it.
    assert RunPythonAsync(documented, RunPythonAsync.noop).reverse_code is RunPython.noop


def test_sync_code_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"code .*sync_forwards is a sync function.*RunPython\("):
        RunPythonAsync(sync_forwards)


def test_sync_reverse_code_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"reverse_code .*sync_forwards is a sync function"):
        RunPythonAsync(forwards, sync_forwards)


def test_runpython_noop_points_to_the_async_noop() -> None:
    with pytest.raises(TypeError, match=r"use RunPythonAsync\.noop"):
        RunPythonAsync(forwards, RunPython.noop)


def test_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"code must be an async function.*got 'forwards'"):
        RunPythonAsync("forwards")  # type: ignore[arg-type]


def test_deconstruct_and_serialize_name_the_async_functions() -> None:
    operation = RunPythonAsync(forwards, RunPythonAsync.noop, atomic=False)
    name, args, kwargs = operation.deconstruct()
    assert name == "RunPythonAsync"
    assert args == []
    assert kwargs == {
        "code": forwards,
        "reverse_code": RunPythonAsync.noop,
        "atomic": False,
    }
    assert operation.reversible
    assert not RunPythonAsync(forwards).reversible
    assert RunPythonAsync(forwards).deconstruct()[2] == {"code": forwards}

    text, imports = OperationWriter(operation, indentation=0).serialize()
    assert text.startswith("django_async_toolkit.migrations.RunPythonAsync(")
    assert "code=tests.test_migrations.forwards" in text
    assert "reverse_code=django_async_toolkit.migrations.RunPythonAsync.noop" in text
    assert "import django_async_toolkit.migrations" in imports
