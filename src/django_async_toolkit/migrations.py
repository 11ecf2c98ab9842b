"""``RunPythonAsync``: a data migration written as ``async def forwards(apps, schema_editor)``.

Django's ``RunPython`` calls its code synchronously, so an ``async def`` function passed to it
returns a coroutine that never runs.
``RunPythonAsync`` runs the coroutine to completion on the migration's own thread.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from django.apps.registry import Apps
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.special import RunPython

from django_async_toolkit.sync import is_async_callable

__all__ = ["RunPythonAsync"]

AsyncMigrationCode = Callable[[Apps, BaseDatabaseSchemaEditor], Awaitable[None]]
MigrationCode = Callable[[Apps, BaseDatabaseSchemaEditor], None]


def _on_migration_thread(
    code: AsyncMigrationCode,
) -> Callable[[Apps, BaseDatabaseSchemaEditor], None]:
    """A sync callable for ``RunPython`` that runs ``code`` to completion on the calling thread.

    ``force_new_loop=True`` runs a fresh event loop for the call, on a helper thread, while the
    migration's thread waits in asgiref's ``CurrentThreadExecutor``.
    Thread-sensitive ``sync_to_async`` calls (the async ORM's) are sent back to that waiting
    thread, so they use the migration's connection and its transaction.

    The callable carries ``code``'s ``__name__``, ``__qualname__``, ``__module__`` and
    ``__doc__`` (and ``__wrapped__``): ``migrate --plan`` describes a ``RunPython`` step by its
    code's docstring, and tracebacks and reprs name the migration's own function.
    ``RunPythonAsync.noop`` becomes ``RunPython.noop``: nothing to run, so no loop, and the plan
    shows it as Django shows its own no-op step.
    """
    if code is RunPythonAsync.noop:
        return RunPython.noop  # type: ignore[return-value]  # the stubs say StateApps

    def run(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        async_to_sync(code, force_new_loop=True)(apps, schema_editor)

    functools.update_wrapper(
        run, code, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=()
    )
    return run


def _check_async(argument: str, code: object) -> None:
    if not callable(code):
        raise TypeError(
            f"RunPythonAsync {argument} must be an async function "
            f"(async def {argument}(apps, schema_editor)); got {code!r}."
        )
    if not is_async_callable(code):
        name = getattr(code, "__qualname__", repr(code))
        hint = (
            "RunPythonAsync.noop"
            if code is RunPython.noop
            else f"RunPython({name}) for a sync function"
        )
        raise TypeError(
            f"RunPythonAsync {argument} {name} is a sync function; RunPythonAsync runs "
            f"`async def {argument}(apps, schema_editor)` functions: make it async, or use {hint}."
        )


class RunPythonAsync(RunPython):
    """``RunPython`` for ``async def`` functions: ``async def forwards(apps, schema_editor)``.

    The arguments are ``RunPython``'s.
    ``code`` and ``reverse_code`` must be async callables (``RunPythonAsync.noop`` for a step that
    does nothing); a sync callable is a ``TypeError`` that names it.

    The coroutine runs to completion on the migration's thread, with a new event loop.
    Its async ORM calls (``await Model.objects.acreate(...)``, ``async for``...) and other
    thread-sensitive ``sync_to_async`` calls run on the migration's thread, with the migration's
    connection, inside its transaction: on a backend with transactional DDL (PostgreSQL, SQLite)
    a failure half-way leaves nothing behind.
    ``sync_to_async(thread_sensitive=False)``, ``run_blocking()``, other threads and background
    tasks use other connections, outside that transaction.
    Concurrency inside the function (``asyncio.gather`` of ORM calls) is allowed, but those calls
    share the one connection and run one at a time.
    """

    def __init__(
        self,
        code: AsyncMigrationCode,
        reverse_code: AsyncMigrationCode | None = None,
        atomic: bool | None = None,
        hints: dict[str, Any] | None = None,
        elidable: bool = False,
    ) -> None:
        _check_async("code", code)
        if reverse_code is not None:
            _check_async("reverse_code", reverse_code)
        self.async_code = code
        self.async_reverse_code = reverse_code
        super().__init__(
            _on_migration_thread(code),
            None if reverse_code is None else _on_migration_thread(reverse_code),
            atomic=atomic,
            hints=hints,
            elidable=elidable,
        )

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, Any]]:
        """Deconstruct with the async functions, so ``squashmigrations`` can write them out."""
        name, args, kwargs = super().deconstruct()
        kwargs["code"] = self.async_code
        if self.async_reverse_code is not None:
            kwargs["reverse_code"] = self.async_reverse_code
        return name, args, kwargs

    @staticmethod
    async def noop(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:  # type: ignore[override]
        """An async step that does nothing, e.g. ``reverse_code=RunPythonAsync.noop``."""
