"""``AsyncBaseCommand``, ``AsyncLabelCommand``, ``AsyncAppCommand`` and ``acall_command``,
in-process: through Django's ``call_command`` (a new event loop) and ``acall_command`` (the
test's loop). The signal handling is tested in real subprocesses in
``test_management_signals.py``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest
import uvloop
from asgiref.sync import sync_to_async
from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.core.management import BaseCommand, call_command, get_commands
from django.core.management.base import CommandError, CommandParser
from django.db import connection, connections
from django.test import override_settings

from django_async_toolkit import _compat, lifecycle
from django_async_toolkit.management import (
    AsyncAppCommand,
    AsyncBaseCommand,
    AsyncLabelCommand,
    _shutdown,
    acall_command,
)
from django_async_toolkit.management._shutdown import ShutdownGuard

# --- commands used by the tests ---------------------------------------------------------------


class Greet(AsyncBaseCommand):
    """Returns a greeting; records the thread and loop it ran on."""

    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--shout", action="store_true")

    async def handle(self, *args: Any, **options: Any) -> str:
        self.thread = threading.current_thread()
        self.loop = asyncio.get_running_loop()
        self.options = options
        if options["verbosity"] > 1:
            self.stdout.write("verbose")
        greeting = f"Hello, {options['name']}"
        return greeting.upper() if options["shout"] else greeting


class Fail(AsyncBaseCommand):
    async def handle(self, *args: Any, **options: Any) -> None:
        raise CommandError("it failed", returncode=3)


class Shout(AsyncLabelCommand):
    """Upper-cases labels; each label waits for the events the test sets up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.active = 0
        self.most_active = 0
        self.finished: list[str] = []
        self.waits: dict[str, str] = {}
        self.done: dict[str, asyncio.Event] = {}

    async def handle_label(self, label: str, **options: Any) -> str | None:
        done = self.done.setdefault(label, asyncio.Event())
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            if label in self.waits:
                await self.done.setdefault(self.waits[label], asyncio.Event()).wait()
            if label.startswith("fail"):
                raise CommandError(f"cannot shout {label!r}")
            if label.startswith("boom"):
                raise ValueError(label)
            if label == "quiet":
                return None
            return label.upper()
        finally:
            self.active -= 1
            self.finished.append(label)
            done.set()


class AppNames(AsyncAppCommand):
    async def handle_app_config(self, app_config: AppConfig, **options: Any) -> str:
        # The first label given finishes last.
        await asyncio.sleep(0.01 if app_config.label == "contenttypes" else 0)
        return f"{app_config.label}: {app_config.verbose_name}"


@pytest.fixture
def registered() -> Iterator[Callable[[str, BaseCommand], None]]:
    """Make a command instance loadable by name, as if an installed app provided it."""
    commands = get_commands()
    added: list[str] = []

    def register(name: str, command: BaseCommand) -> None:
        commands[name] = command  # type: ignore[assignment]
        added.append(name)

    yield register
    for name in added:
        del commands[name]


# --- class creation ---------------------------------------------------------------------------


def test_sync_handle_is_a_type_error_at_class_creation() -> None:
    with pytest.raises(TypeError, match=r"write `async def handle\(\.\.\.\)`") as info:

        class Sync(AsyncBaseCommand):
            def handle(self, *args: Any, **options: Any) -> None:  # type: ignore[override]
                pass

    assert "Sync.handle() must be a coroutine function" in str(info.value)
    assert "subclass Django's BaseCommand instead" in str(info.value)


def test_sync_handle_label_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"AsyncLabelCommand, write `async def handle_label"):

        class Sync(AsyncLabelCommand):
            def handle_label(self, label: str, **options: Any) -> None:  # type: ignore[override]
                pass


def test_sync_handle_app_config_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"AsyncAppCommand, write `async def handle_app_config"):

        class Sync(AsyncAppCommand):
            def handle_app_config(  # type: ignore[override]
                self, app_config: AppConfig, **options: Any
            ) -> None:
                pass


@pytest.mark.parametrize("value", [0, -1, "5", True, float("inf")])
def test_invalid_shutdown_timeout_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match=r"shutdown_timeout is .*; it must be a number of seconds"):

        class Bad(AsyncBaseCommand):
            shutdown_timeout = value  # type: ignore[assignment]

            async def handle(self, *args: Any, **options: Any) -> None:
                pass


@pytest.mark.parametrize("value", [0, 1.5, True, None])
def test_invalid_max_concurrency_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match=r"max_concurrency is .*; it must be an integer"):

        class Bad(AsyncLabelCommand):
            max_concurrency = value  # type: ignore[assignment]

            async def handle_label(self, label: str, **options: Any) -> None:
                pass


async def test_base_handle_must_be_written() -> None:
    with pytest.raises(NotImplementedError, match="must provide a handle"):
        await AsyncBaseCommand().handle()
    with pytest.raises(NotImplementedError, match="must provide a handle_label"):
        await AsyncLabelCommand().handle_label("a")
    with pytest.raises(NotImplementedError, match="must provide a handle_app_config"):
        await AsyncAppCommand().handle_app_config(AppConfig.create("tests"))


# --- call_command -----------------------------------------------------------------------------


def test_call_command_runs_handle_on_a_new_loop_and_writes_the_output() -> None:
    out = StringIO()
    command = Greet()
    result = call_command(command, "Ada", shout=True, stdout=out)
    assert result == "HELLO, ADA"
    assert out.getvalue() == "HELLO, ADA\n"
    assert command.thread is threading.current_thread()
    assert command.loop.is_closed()
    assert type(command.loop).__module__.startswith("asyncio")


def test_call_command_verbosity_and_parsed_options() -> None:
    out = StringIO()
    command = Greet()
    call_command(command, "--verbosity=2", "Ada", stdout=out)
    assert out.getvalue() == "verbose\nHello, Ada\n"
    assert command.options["verbosity"] == 2
    assert command.options["shout"] is False


def test_call_command_leaves_the_signal_handlers_alone() -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))

    class Handlers(AsyncBaseCommand):
        async def handle(self, *args: Any, **options: Any) -> None:
            self.seen = signal.getsignal(signal.SIGTERM)

    command = Handlers()
    call_command(command)
    assert command.seen is before[1]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    or threading.current_thread() is not threading.main_thread(),
    reason="asyncio.Runner handles Ctrl-C only with Python's default SIGINT handler",
)
def test_ctrl_c_under_call_command_behaves_like_asyncio_run() -> None:
    events: list[str] = []

    class Interrupted(AsyncBaseCommand):
        async def handle(self, *args: Any, **options: Any) -> None:
            try:
                # Ctrl-C, as the terminal would send it: asyncio.Runner's own handler takes it.
                signal.raise_signal(signal.SIGINT)
                await asyncio.Event().wait()
            finally:
                events.append("finally")

    with pytest.raises(KeyboardInterrupt):
        call_command(Interrupted())
    assert events == ["finally"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_command_error_propagates_with_its_returncode() -> None:
    with pytest.raises(CommandError, match="it failed") as info:
        call_command(Fail())
    assert info.value.returncode == 3


def test_empty_output_is_not_written() -> None:
    class Quiet(AsyncBaseCommand):
        async def handle(self, *args: Any, **options: Any) -> str:
            return ""

    out = StringIO()
    assert call_command(Quiet(), stdout=out) == ""
    assert out.getvalue() == ""


def test_output_transaction_wraps_the_output() -> None:
    class Sql(AsyncBaseCommand):
        output_transaction = True

        async def handle(self, *args: Any, **options: Any) -> str:
            return "SELECT 1;"

    out = StringIO()
    call_command(Sql(), stdout=out, no_color=True)
    begin = connection.ops.start_transaction_sql()
    end = connection.ops.end_transaction_sql()
    assert out.getvalue() == f"{begin}\nSELECT 1;\n{end}\n"


@pytest.mark.parametrize(
    ("options", "expected"),
    [({"skip_checks": False}, {}), ({}, None)],
    ids=["checks", "skipped"],
)
def test_system_checks_run_as_in_base_command(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    seen: list[dict[str, Any]] = []
    command = Greet()
    monkeypatch.setattr(command, "check", lambda **kwargs: seen.append(kwargs))
    monkeypatch.setattr(type(command), "requires_system_checks", "__all__")
    call_command(command, "Ada", **options)
    assert seen == ([] if expected is None else [expected])


def test_system_check_tags_are_passed() -> None:
    class Tagged(AsyncBaseCommand):
        requires_system_checks = ["models"]

        def check(self, **kwargs: Any) -> None:  # type: ignore[override]
            self.check_kwargs = kwargs

        async def handle(self, *args: Any, **options: Any) -> None:
            pass

    command = Tagged()
    call_command(command, skip_checks=False)
    assert command.check_kwargs == {"tags": ["models"]}


def test_system_check_errors_stop_the_command() -> None:
    class Failing(AsyncBaseCommand):
        def check(self, **kwargs: Any) -> None:  # type: ignore[override]
            raise CommandError("SystemCheckError: broken")

        async def handle(self, *args: Any, **options: Any) -> None:
            raise AssertionError("handle() must not run")

    with pytest.raises(CommandError, match="broken"):
        call_command(Failing(), skip_checks=False)


@pytest.mark.django_db
def test_migrations_check_runs() -> None:
    class Migrations(AsyncBaseCommand):
        requires_migrations_checks = True

        def check_migrations(self) -> None:
            self.checked = True

        async def handle(self, *args: Any, **options: Any) -> None:
            pass

    command = Migrations()
    call_command(command)
    assert command.checked


def test_color_options() -> None:
    command = Greet()
    with pytest.raises(CommandError, match="can't be used together"):
        call_command(command, "Ada", no_color=True, force_color=True)
    call_command(command, "Ada", force_color=True, stdout=StringIO())
    assert command.style.ERROR("x") != "x"
    call_command(command, "Ada", no_color=True, stdout=StringIO(), stderr=StringIO())
    assert command.style.ERROR("x") == "x"
    assert command.stderr.style_func("x") == "x"


async def test_call_command_on_a_running_loop_names_acall_command() -> None:
    with pytest.raises(RuntimeError, match=r"await acall_command\('test_management', \.\.\.\)"):
        call_command(Greet(), "Ada")


def test_uvloop_when_configured() -> None:
    command = Greet()
    with override_settings(ASYNC_TOOLKIT_EVENT_LOOP="uvloop"):
        call_command(command, "Ada", stdout=StringIO())
    assert isinstance(command.loop, uvloop.Loop)


def test_uvloop_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with (
        override_settings(ASYNC_TOOLKIT_EVENT_LOOP="uvloop"),
        pytest.raises(ImproperlyConfigured, match=r"django-async-toolkit\[uvloop\]"),
    ):
        call_command(Greet(), "Ada")


def test_tasks_left_running_are_cancelled_and_awaited(caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []

    class Spawner(AsyncBaseCommand):
        async def handle(self, *args: Any, **options: Any) -> str:
            async def child(name: str, fail: bool) -> None:
                try:
                    await asyncio.Event().wait()
                finally:
                    events.append(f"{name} cancelled")
                    if fail:
                        raise ValueError(f"{name} failed on its way out")  # noqa: B012

            loop = asyncio.get_running_loop()
            self.tasks = [
                loop.create_task(child("quiet", False)),
                loop.create_task(child("noisy", True)),
            ]
            await asyncio.sleep(0)
            return "done"

    command = Spawner()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        assert call_command(command, stdout=StringIO()) == "done"
    assert sorted(events) == ["noisy cancelled", "quiet cancelled"]
    assert all(task.done() for task in command.tasks)
    (record,) = [r for r in caplog.records if "left running by an async command" in r.message]
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "noisy failed on its way out"


@pytest.mark.parametrize("awaited", [False, True])
def test_a_task_that_failed_before_handle_returned_is_reported(awaited: bool) -> None:
    """Nothing awaited it: its error goes to stderr with its traceback (else nothing is said)."""

    class FailsEarly(AsyncBaseCommand):
        requires_system_checks: list[str] = []

        async def handle(self, *args: Any, **options: Any) -> str:
            ended = asyncio.Event()

            async def send_report() -> None:
                try:
                    raise ValueError("the report server said no")
                finally:
                    ended.set()

            self.task = asyncio.get_running_loop().create_task(send_report(), name="report")
            await ended.wait()
            await asyncio.sleep(0)  # the task is done now
            if awaited:
                with pytest.raises(ValueError):
                    await self.task
            return "done"

    err = StringIO()
    command = FailsEarly()
    assert call_command(command, stdout=StringIO(), stderr=err) == "done"
    if awaited:
        assert err.getvalue() == ""  # handle saw the error itself
        return
    report = err.getvalue()
    assert "Task report (" in report
    assert "send_report) failed and nothing awaited it:" in report
    assert "Traceback (most recent call last):" in report
    assert 'raise ValueError("the report server said no")' in report
    assert report.rstrip().endswith("ValueError: the report server said no")


def test_threads_the_command_started_are_gone_afterwards() -> None:
    class Threads(AsyncBaseCommand):
        async def handle(self, *args: Any, **options: Any) -> None:
            loop = asyncio.get_running_loop()
            self.names = {
                await sync_to_async(lambda: threading.current_thread().name)(),
                await loop.run_in_executor(None, lambda: threading.current_thread().name),
            }

    before = set(threading.enumerate())
    command = Threads()
    call_command(command)
    assert len(command.names) == 2
    assert not {t.name for t in set(threading.enumerate()) - before} & command.names


# --- database connections ---------------------------------------------------------------------


@pytest.fixture
def closed_on(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record (alias, thread name) for each connection closed; really close it (even in memory)."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    closed: list[tuple[str, str]] = []
    wrapper = type(connections["default"])
    original = wrapper.close

    def close(self: Any) -> None:
        if self.connection is not None and self.alias == "default":
            closed.append((self.alias, threading.current_thread().name))
            if not self.in_atomic_block and threading.current_thread() is not main:
                BaseDatabaseWrapper.close(self)
                return
        original(self)

    main = threading.main_thread()
    monkeypatch.setattr(wrapper, "close", close)
    return closed


def _query() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return threading.current_thread().name


class Query(AsyncBaseCommand):
    """Opens a connection on its thread-sensitive worker; waits forever when told to."""

    def __init__(self, *, wait: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait = wait
        self.started = asyncio.Event()

    async def handle(self, *args: Any, **options: Any) -> None:
        self.worker = await sync_to_async(_query)()
        self.started.set()
        if self.wait:
            await asyncio.Event().wait()


@pytest.mark.django_db(transaction=True)
def test_call_command_closes_the_connection_of_its_worker_thread(
    closed_on: list[tuple[str, str]],
) -> None:
    command = Query()
    call_command(command)
    assert command.worker.startswith("async-toolkit-worker-")  # leased from the pool
    assert closed_on == [("default", command.worker)]


@pytest.mark.skipif(
    connection.vendor == "sqlite" and connection.is_in_memory_db(),
    reason="an in-memory SQLite connection cannot be closed without losing the test database",
)
@pytest.mark.django_db(transaction=True)
def test_call_command_closes_main_thread_connections_it_opened(
    closed_on: list[tuple[str, str]],
) -> None:
    connection.close()
    closed_on.clear()

    class Checks(AsyncBaseCommand):
        requires_migrations_checks = True

        async def handle(self, *args: Any, **options: Any) -> None:
            pass

    call_command(Checks(), stdout=StringIO())
    assert ("default", threading.main_thread().name) in closed_on


@pytest.mark.django_db(transaction=True)
def test_call_command_leaves_the_callers_connection_open(
    closed_on: list[tuple[str, str]],
) -> None:
    _query()
    call_command(Query())
    assert connection.connection is not None
    assert ("default", threading.main_thread().name) not in closed_on


@pytest.mark.django_db(transaction=True)
async def test_acall_command_closes_the_connection_it_opened_after_a_cancel(
    closed_on: list[tuple[str, str]],
) -> None:
    command = Query(wait=True)
    task = asyncio.get_running_loop().create_task(acall_command(command))
    await command.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed_on == [("default", command.worker)]


@pytest.mark.django_db(transaction=True)
def test_worker_connection_closed_with_asgirefs_own_context_executor(
    monkeypatch: pytest.MonkeyPatch, closed_on: list[tuple[str, str]]
) -> None:
    # With an asgiref whose ThreadSensitiveContext takes no executor, asgiref makes the worker.
    monkeypatch.setattr(_compat, "THREAD_SENSITIVE_CONTEXT_EXECUTOR", False)
    command = Query()
    call_command(command)
    assert not command.worker.startswith("async-command-sync")
    assert closed_on == [("default", command.worker)]


def test_background_dispatch_that_does_not_drain_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def drain_background(timeout: float | None = None) -> None:
        raise TimeoutError(f"1 background dispatch did not finish within {timeout} s: x")

    monkeypatch.setattr(lifecycle, "drain_background", drain_background)
    err = StringIO()
    with override_settings(ASYNC_TOOLKIT_DRAIN_TIMEOUT=2.5):
        assert call_command(Greet(), "Ada", stdout=StringIO(), stderr=err) == "Hello, Ada"
    assert err.getvalue() == (
        "Background signal dispatch did not finish: "
        "1 background dispatch did not finish within 2.5 s: x\n"
    )


# --- acall_command ----------------------------------------------------------------------------


async def test_acall_command_runs_on_the_current_loop() -> None:
    out = StringIO()
    command = Greet()
    result = await acall_command(command, "Ada", shout=True, stdout=out)
    assert result == "HELLO, ADA"
    assert out.getvalue() == "HELLO, ADA\n"
    assert command.loop is asyncio.get_running_loop()
    assert command.thread is threading.current_thread()


async def test_acall_command_by_name(registered: Callable[[str, BaseCommand], None]) -> None:
    command = Greet()
    registered("greet", command)
    out = StringIO()
    assert await acall_command("greet", "--verbosity", "2", "Bo", stdout=out) == "Hello, Bo"
    assert out.getvalue() == "verbose\nHello, Bo\n"


async def test_acall_command_unknown_name() -> None:
    with pytest.raises(CommandError, match="Unknown command: 'no_such_command'"):
        await acall_command("no_such_command")


async def test_acall_command_parses_options_like_call_command() -> None:
    with pytest.raises(TypeError, match="Unknown option"):
        await acall_command(Greet(), "Ada", colour=True)
    with pytest.raises(CommandError, match="the following arguments are required: name"):
        await acall_command(Greet())


async def test_acall_command_command_error() -> None:
    with pytest.raises(CommandError, match="it failed"):
        await acall_command(Fail())


@pytest.mark.parametrize(
    ("skip_checks", "migrations", "ran"),
    [(False, False, ["check"]), (True, True, ["migrations"]), (True, False, [])],
)
async def test_acall_command_runs_the_checks_it_needs(
    skip_checks: bool, migrations: bool, ran: list[str]
) -> None:
    class Checked(AsyncBaseCommand):
        requires_migrations_checks = migrations

        def check(self, **kwargs: Any) -> None:  # type: ignore[override]
            self.ran.append("check")

        def check_migrations(self) -> None:
            self.ran.append("migrations")

        async def handle(self, *args: Any, **options: Any) -> None:
            pass

    command = Checked()
    command.ran = []
    await acall_command(command, skip_checks=skip_checks)
    assert command.ran == ran


async def test_acall_command_runs_checks_off_the_loop() -> None:
    loop_thread = threading.current_thread()

    class Checked(AsyncBaseCommand):
        requires_migrations_checks = True

        def check(self, **kwargs: Any) -> None:  # type: ignore[override]
            self.check_thread = threading.current_thread()

        def check_migrations(self) -> None:
            self.migrations_thread = threading.current_thread()

        async def handle(self, *args: Any, **options: Any) -> None:
            pass

    command = Checked()
    await acall_command(command, skip_checks=False)
    assert command.check_thread is not loop_thread
    assert command.migrations_thread is not loop_thread


@pytest.mark.django_db  # Django's JSONField check asks the database what it supports.
async def test_acall_command_sync_command_by_app_name() -> None:
    out = StringIO()
    try:
        await acall_command("check", stdout=out)
    finally:
        # The check opened a connection on asgiref's process-wide thread: really close it (an
        # in-memory SQLite connection ignores close()), so later tests find that thread clean.
        await sync_to_async(_close_for_real)()
    assert out.getvalue() == "System check identified no issues (0 silenced).\n"


def _close_for_real() -> None:
    for conn in connections.all(initialized_only=True):
        raw, conn.connection = conn.connection, None
        if raw is not None:
            raw.close()


async def test_acall_command_runs_a_sync_command_off_the_loop(
    registered: Callable[[str, BaseCommand], None],
) -> None:
    class SyncCommand(BaseCommand):
        def add_arguments(self, parser: CommandParser) -> None:
            parser.add_argument("value")

        def handle(self, *args: Any, **options: Any) -> str:
            self.thread = threading.current_thread()
            return f"sync {options['value']}"

    command = SyncCommand()
    registered("sync_command", command)
    out = StringIO()
    assert await acall_command("sync_command", "x", stdout=out) == "sync x"
    assert out.getvalue() == "sync x\n"
    assert command.thread is not threading.current_thread()


# --- AsyncLabelCommand ------------------------------------------------------------------------


def test_label_command_is_bounded_and_keeps_label_order() -> None:
    command = Shout()
    # "a" finishes only after "c": completion order differs from label order.
    command.waits = {"a": "c"}
    out = StringIO()
    result = call_command(command, "a", "b", "c", "d", "quiet", max_concurrency=2, stdout=out)
    assert result == "A\nB\nC\nD"
    assert out.getvalue() == "A\nB\nC\nD\n"
    assert command.most_active == 2
    assert command.finished.index("c") < command.finished.index("a")


def test_label_command_default_bound() -> None:
    command = Shout()
    labels = [f"l{i}" for i in range(20)]
    call_command(command, *labels, stdout=StringIO())
    assert command.most_active == Shout.max_concurrency == 8


async def test_label_command_with_acall_command() -> None:
    command = Shout()
    command.waits = {"x": "y"}
    out = StringIO()
    result = await acall_command(command, "x", "y", "--max-concurrency=3", stdout=out)
    assert result == "X\nY"
    assert out.getvalue() == "X\nY\n"


def test_label_command_first_error_cancels_the_rest_and_is_raised_as_itself() -> None:
    command = Shout()
    # "slow" waits for a label that never runs: only the cancellation can end it.
    command.waits = {"slow": "never"}
    with pytest.raises(CommandError, match="cannot shout 'fail'") as info:
        call_command(command, "slow", "fail", max_concurrency=2)
    assert info.value.__cause__ is None
    assert sorted(command.finished) == ["fail", "slow"]


def test_label_command_several_command_errors_are_one_command_error() -> None:
    with pytest.raises(CommandError) as info:
        call_command(Shout(), "fail1", "fail2", max_concurrency=2)
    assert str(info.value) == "cannot shout 'fail1'\ncannot shout 'fail2'"
    assert isinstance(info.value.__cause__, ExceptionGroup)


def test_label_command_several_other_errors_are_an_exception_group() -> None:
    with pytest.raises(ExceptionGroup) as info:
        call_command(Shout(), "boom1", "fail", max_concurrency=2)
    assert sorted(type(e).__name__ for e in info.value.exceptions) == [
        "CommandError",
        "ValueError",
    ]


def test_label_command_invalid_max_concurrency() -> None:
    with pytest.raises(CommandError, match="--max-concurrency: 'x' is not an integer"):
        call_command(Shout(), "a", "--max-concurrency=x")
    with pytest.raises(CommandError, match="max_concurrency is 0; it must be an integer"):
        call_command(Shout(), "a", max_concurrency=0)


def test_label_command_needs_a_label() -> None:
    with pytest.raises(CommandError, match="Enter at least one label"):
        call_command(Shout())

    class Urls(Shout):
        label = "url"

    with pytest.raises(CommandError, match="Enter at least one url"):
        call_command(Urls())

    class Custom(Shout):
        missing_args_message = "Name some pages."

    with pytest.raises(CommandError, match="Name some pages."):
        call_command(Custom())


# --- AsyncAppCommand --------------------------------------------------------------------------


def test_app_command_keeps_label_order() -> None:
    out = StringIO()
    result = call_command(AppNames(), "contenttypes", "auth", stdout=out)
    assert result == "contenttypes: Content Types\nauth: Authentication and Authorization"
    assert out.getvalue() == result + "\n"


async def test_app_command_with_acall_command() -> None:
    result = await acall_command(AppNames(), "auth", "contenttypes", max_concurrency=1)
    assert result == "auth: Authentication and Authorization\ncontenttypes: Content Types"


def test_app_command_unknown_app() -> None:
    with pytest.raises(CommandError, match=r"No installed app with label 'nope'\.+ Are you sure"):
        call_command(AppNames(), "nope")


# --- the shutdown guard, in-process (the real exits are in test_management_signals.py) ----------


class Exited(Exception):
    """Raised by the fake ``_exit`` in place of ending the test process."""


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    statuses: list[int] = []

    def fake_exit(status: int) -> None:
        statuses.append(status)
        raise Exited(status)

    monkeypatch.setattr(_shutdown, "_exit", fake_exit)
    return statuses


@pytest.fixture
def guard() -> Iterator[ShutdownGuard]:
    guard = ShutdownGuard(timeout=60)
    yield guard
    guard.uninstall()
    if guard._deadline is not None:
        guard._deadline.cancel()
        guard._deadline.join()


def test_guard_install_and_uninstall(guard: ShutdownGuard) -> None:
    before = signal.getsignal(signal.SIGTERM)
    guard.install()
    assert signal.getsignal(signal.SIGINT) == guard._on_signal
    assert signal.getsignal(signal.SIGTERM) == guard._on_signal
    guard.uninstall()
    assert signal.getsignal(signal.SIGTERM) is before


def test_guard_second_signal_exits_at_once(
    guard: ShutdownGuard, exits: list[int], capfd: pytest.CaptureFixture[str]
) -> None:
    guard._on_signal(signal.SIGTERM, None)
    assert guard.status == 143
    assert guard._deadline is not None and guard._deadline.is_alive()
    with pytest.raises(Exited):
        guard._on_signal(signal.SIGINT, None)
    assert exits == [143]
    assert capfd.readouterr().err == (
        "SIGTERM, then SIGINT: exiting at once with status 143; "
        "the remaining cleanup was skipped.\n"
    )


def test_guard_deadline_exits(
    guard: ShutdownGuard, exits: list[int], capfd: pytest.CaptureFixture[str]
) -> None:
    guard._on_signal(signal.SIGINT, None)
    with pytest.raises(Exited):
        guard._on_deadline()
    assert exits == [130]
    assert capfd.readouterr().err == (
        "SIGINT: the command did not finish its cleanup within shutdown_timeout (60 s); "
        "exiting with status 130; the remaining cleanup was skipped.\n"
    )


def test_guard_finish_then_deadline_exits_without_a_second_line(
    guard: ShutdownGuard, exits: list[int], capfd: pytest.CaptureFixture[str]
) -> None:
    guard._on_signal(signal.SIGINT, None)
    lines: list[str] = []
    with pytest.raises(SystemExit) as info:
        guard.finish(lines.append)
    assert info.value.code == 130
    assert lines == ["SIGINT: the command was cancelled and cleaned up; exiting with status 130."]
    with pytest.raises(Exited):
        guard._on_deadline()
    assert exits == [130]
    assert capfd.readouterr().err == ""


def test_guard_signal_while_the_exit_line_is_written_does_not_exit(
    guard: ShutdownGuard, exits: list[int]
) -> None:
    guard._on_signal(signal.SIGINT, None)
    with guard._exit_lock:
        guard._on_signal(signal.SIGINT, None)
    assert exits == []


async def test_guard_signal_cancels_the_attached_task(guard: ShutdownGuard) -> None:
    task = asyncio.get_running_loop().create_task(asyncio.Event().wait())
    guard.attach(asyncio.get_running_loop(), task)
    guard._on_signal(signal.SIGTERM, None)
    with pytest.raises(asyncio.CancelledError):
        await task
    guard.detach()


async def test_guard_signal_before_attach_cancels_at_once(guard: ShutdownGuard) -> None:
    guard._on_signal(signal.SIGINT, None)
    task = asyncio.get_running_loop().create_task(asyncio.Event().wait())
    guard.attach(asyncio.get_running_loop(), task)
    try:
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        guard.detach()


def _current_wakeup_fd() -> int:
    current = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(current)
    return current


async def test_guard_wakes_the_loop_while_attached_and_restores_the_wakeup_fd(
    guard: ShutdownGuard,
) -> None:
    before = _current_wakeup_fd()
    loop = asyncio.get_running_loop()
    task = loop.create_task(asyncio.Event().wait())
    guard.attach(loop, task)
    try:
        assert guard._wakeup is not None
        _, reader, writer = guard._wakeup
        assert _current_wakeup_fd() == writer.fileno()
    finally:
        guard.detach()
        task.cancel()
    assert _current_wakeup_fd() == before
    assert reader.fileno() == -1 and writer.fileno() == -1  # both ends closed
    guard.detach()  # a second detach does nothing
