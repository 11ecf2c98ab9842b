"""Run every ``RunPython`` of Django's own migration tests through ``RunPythonAsync``.

Imported first by ``tests.django_suite.run_django_tests`` (see
``tests/test_migrations_django_suite.py``), before Django's test migrations are loaded, so each
``migrations.RunPython(code, reverse_code, ...)`` they build is a :class:`RunPythonAsync`.
Their sync functions become async functions that run them with ``sync_to_async`` (on the
migration's thread, as an ``await Model.objects...`` call would), and keep their name and
docstring, as the ``async def`` a user would write in their place.
"""

from __future__ import annotations

import atexit
import functools
import sys
from collections.abc import Callable
from typing import Any

import django.db.migrations
import django.db.migrations.operations
from asgiref.sync import sync_to_async
from django.apps.registry import Apps
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.special import RunPython as DjangoRunPython

from django_async_toolkit.migrations import AsyncMigrationCode, RunPythonAsync
from django_async_toolkit.sync import is_async_callable

_ran = 0


def _as_async(code: Callable[..., Any]) -> AsyncMigrationCode:
    if code is DjangoRunPython.noop or code is RunPythonAsync.noop:
        return RunPythonAsync.noop
    if is_async_callable(code):
        return code

    async def run(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        global _ran
        _ran += 1
        await sync_to_async(code)(apps, schema_editor)

    functools.update_wrapper(
        run, code, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=()
    )
    return run


class RunPython(RunPythonAsync):
    """Django's ``RunPython``: its signature, errors and ``deconstruct()`` name, run async."""

    def __init__(
        self,
        code: Any,  # anything: Django's own error for a non-callable is part of the contract
        reverse_code: Any = None,
        atomic: bool | None = None,
        hints: dict[str, Any] | None = None,
        elidable: bool = False,
    ) -> None:
        if not callable(code) or (reverse_code is not None and not callable(reverse_code)):
            DjangoRunPython.__init__(self, code, reverse_code)  # Django's own ValueError
        super().__init__(
            _as_async(code),
            None if reverse_code is None else _as_async(reverse_code),
            atomic=atomic,
            hints=hints,
            elidable=elidable,
        )


django.db.migrations.RunPython = RunPython  # type: ignore[misc, assignment]
django.db.migrations.operations.RunPython = RunPython  # type: ignore[misc, assignment]

# Say at exit how many steps ran through RunPythonAsync, so the test that runs Django's suite can
# tell that the swap was in place.
atexit.register(
    lambda: print(f"django_async_toolkit.migrations ran {_ran} RunPython steps", file=sys.stderr)
)
