"""Management commands whose ``handle`` is ``async def``, and ``acall_command``.

A command runs on its own ``asyncio.Runner`` when it is started from the command line or with
``call_command``, and on the caller's loop when it is awaited with :func:`acall_command`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import (
    ALL_CHECKS,
    BaseCommand,
    CommandError,
    CommandParser,
    OutputWrapper,
)
from django.core.management.color import color_style, no_style
from django.db import DEFAULT_DB_ALIAS, connections

from django_async_toolkit import _compat, lifecycle, workers
from django_async_toolkit._validation import is_seconds
from django_async_toolkit.conf import conf
from django_async_toolkit.management._leftovers import (
    TaskFailures,
    cancel_and_report_stragglers,
    close_opened_since,
    open_aliases,
)
from django_async_toolkit.management._shutdown import ShutdownGuard

__all__ = ["AsyncAppCommand", "AsyncBaseCommand", "AsyncLabelCommand", "acall_command"]

T = TypeVar("T")

#: Set by :func:`acall_command` while Django's ``call_command`` parses the options for it:
#: ``execute()`` then records the parsed arguments instead of running the command.
_parsed_call: contextvars.ContextVar[list[tuple[tuple[Any, ...], dict[str, Any]]] | None] = (
    contextvars.ContextVar("django_async_toolkit_parsed_call", default=None)
)


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory that ``ASYNC_TOOLKIT_EVENT_LOOP`` asks for (``None``: asyncio's)."""
    if conf.EVENT_LOOP != "uvloop":
        return None
    try:
        import uvloop
    except ImportError as exc:
        raise ImproperlyConfigured(
            "ASYNC_TOOLKIT_EVENT_LOOP is 'uvloop', but uvloop is not installed. "
            "Install the extra with `pip install django-async-toolkit[uvloop]`, "
            "or set ASYNC_TOOLKIT_EVENT_LOOP = 'asyncio'."
        ) from exc
    return uvloop.new_event_loop


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer of at least 1")
    return number


class AsyncBaseCommand(BaseCommand):
    """A management command whose ``handle`` is ``async def``.

    Write ``async def handle(self, *args, **options)``; everything else (``add_arguments``,
    ``self.stdout``/``self.stderr``, ``CommandError``, ``--traceback``, ``--verbosity``,
    ``requires_system_checks``, the returned string written to stdout) is Django's.
    A subclass with a plain ``def handle`` is a :exc:`TypeError` when the class is defined.

    ``manage.py`` and ``call_command`` run ``handle`` on a new ``asyncio.Runner`` (uvloop when
    ``ASYNC_TOOLKIT_EVENT_LOOP = "uvloop"``); its thread-sensitive calls (the async ORM) run on a
    worker leased from the toolkit's pool (:mod:`django_async_toolkit.workers`), one thread for the
    whole command; :func:`acall_command` awaits it on the caller's loop.

    Run from the command line, on the main thread, the command owns SIGINT and SIGTERM.
    The first cancels ``handle`` (its ``finally`` blocks and ``async with`` exits run), and the
    command has :attr:`shutdown_timeout` seconds to finish; it then exits with status 130 (SIGINT)
    or 143 (SIGTERM) and one line on stderr.
    A second signal, or the timeout running out, exits at once, with the same status, after
    flushing stdout and stderr: that hard exit skips the cleanup that has not run yet.
    Under ``call_command`` the process's signal handlers are left alone.

    When ``handle`` ends, however it ends, the tasks it left running are cancelled and awaited,
    background signal dispatch is drained, and the database connections that the command opened
    on its threads are closed.
    """

    #: Seconds that ``handle`` gets to finish its cleanup after SIGINT or SIGTERM.
    shutdown_timeout: ClassVar[float] = 10.0

    #: The methods a subclass must write as ``async def``.
    async_methods: ClassVar[tuple[str, ...]] = ("handle",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.async_methods:
            method = getattr(cls, name, None)
            if not iscoroutinefunction(method):
                raise TypeError(
                    f"{cls.__module__}.{cls.__qualname__}.{name}() must be a coroutine function: "
                    f"{cls.__name__} is an {_async_base(cls)}, write `async def {name}(...)`. "
                    f"For a synchronous command, subclass Django's BaseCommand instead."
                )
        timeout = cls.shutdown_timeout
        if not is_seconds(timeout):
            raise TypeError(
                f"{cls.__qualname__}.shutdown_timeout is {timeout!r}; it must be a number of "
                f"seconds greater than 0."
            )

    async def handle(self, *args: Any, **options: Any) -> str | None:  # type: ignore[override]
        """The command's work. Subclasses must write it as ``async def``."""
        raise NotImplementedError("subclasses of AsyncBaseCommand must provide a handle() method")

    # --- running -------------------------------------------------------------------------------

    def execute(self, *args: Any, **options: Any) -> str | None:
        """Run the command on a new event loop (``manage.py`` and ``call_command`` call this)."""
        parsed = _parsed_call.get()
        if parsed is not None:
            parsed.append((args, options))
            return None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            name = type(self).__module__.rpartition(".")[2]
            raise RuntimeError(
                f"{type(self).__qualname__} is an async command and this thread's event loop "
                f"is running, so call_command() cannot run it here. "
                f"Use `await acall_command({name!r}, ...)` from "
                f"django_async_toolkit.management instead."
            )
        loop_factory = _event_loop_factory()
        before = open_aliases()
        try:
            self._prepare(options)
            if self.requires_system_checks and not options["skip_checks"]:
                self.check(**self._check_kwargs(options))
            if self.requires_migrations_checks:
                self.check_migrations()
            return self._run(loop_factory, args, options)
        finally:
            close_opened_since(before)

    async def aexecute(self, *args: Any, **options: Any) -> str | None:
        """The async twin of :meth:`execute`, on the running loop (:func:`acall_command`).

        The system and migration checks, when they run, and the closing of the connections that
        the command opened, run on the caller's thread-sensitive thread.
        """
        self._prepare(options)
        if (self.requires_system_checks and not options["skip_checks"]) or (
            self.requires_migrations_checks
        ):
            await sync_to_async(self._run_checks)(options)
        before = await sync_to_async(open_aliases)()
        try:
            return await self._handle_and_write(args, options)
        finally:
            await sync_to_async(close_opened_since)(before)

    def _prepare(self, options: dict[str, Any]) -> None:
        # BaseCommand.execute()'s handling of the output options, on every supported Django.
        if options["force_color"] and options["no_color"]:
            raise CommandError("The --no-color and --force-color options can't be used together.")
        if options["force_color"]:
            self.style = color_style(force_color=True)
        elif options["no_color"]:
            self.style = no_style()
            self.stderr.style_func = None
        if options.get("stdout"):
            self.stdout = OutputWrapper(options["stdout"])
        if options.get("stderr"):
            self.stderr = OutputWrapper(options["stderr"])

    def _check_kwargs(self, options: dict[str, Any]) -> dict[Any, Any]:
        if _compat.HAS_GET_CHECK_KWARGS:
            return self.get_check_kwargs(options)
        if self.requires_system_checks == ALL_CHECKS:
            return {}
        return {"tags": self.requires_system_checks}

    def _run_checks(self, options: dict[str, Any]) -> None:
        if self.requires_system_checks and not options["skip_checks"]:
            self.check(**self._check_kwargs(options))
        if self.requires_migrations_checks:
            self.check_migrations()

    async def _handle_and_write(
        self, args: tuple[Any, ...], options: dict[str, Any]
    ) -> str | None:
        output = await self.handle(*args, **options)
        if output:
            if self.output_transaction:
                connection = connections[options.get("database", DEFAULT_DB_ALIAS)]
                begin = self.style.SQL_KEYWORD(connection.ops.start_transaction_sql())
                end = self.style.SQL_KEYWORD(connection.ops.end_transaction_sql())
                output = f"{begin}\n{output}\n{end}"
            self.stdout.write(output)
        return output

    def _run(
        self,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
        args: tuple[Any, ...],
        options: dict[str, Any],
    ) -> str | None:
        owns_process = (
            getattr(self, "_called_from_command_line", False)
            and threading.current_thread() is threading.main_thread()
        )
        guard = ShutdownGuard(self.shutdown_timeout) if owns_process else None
        if guard is not None:
            guard.install()
        output: str | None = None
        try:
            runner = asyncio.Runner(loop_factory=loop_factory)
            try:
                output = runner.run(self._arun(guard, args, options, owns_process))
            finally:
                runner.close()
                # The worker the command leased, and any others: connections closed on each
                # worker, threads joined (a later unit of work starts a new pool).
                workers.shutdown_pool(timeout=conf.DRAIN_TIMEOUT)
        except BaseException as exc:
            if guard is None or guard.signum is None:
                raise
            # After a signal the exit status is the signal's, whatever handle() did on its way
            # out; an error it raised meanwhile is shown, not lost.
            if not isinstance(exc, asyncio.CancelledError):
                self.stderr.write(f"{type(exc).__name__} during shutdown: {exc}")
        else:
            if guard is None or guard.signum is None:
                if guard is not None:
                    guard.uninstall()
                return output
        # Signal handlers stay installed until the process is gone: a second signal during the
        # interpreter's own shutdown still exits at once.
        assert guard is not None
        guard.finish(self.stderr.write)

    async def _arun(
        self,
        guard: ShutdownGuard | None,
        args: tuple[Any, ...],
        options: dict[str, Any],
        owns_process: bool,
    ) -> str | None:
        loop = asyncio.get_running_loop()
        failed = TaskFailures(loop)
        # The command's thread-sensitive calls run on a worker leased from the toolkit's pool.
        async with workers.pooled_context():
            task = loop.create_task(self._handle_and_write(args, options))
            if guard is not None:
                guard.attach(loop, task)
            try:
                return await task
            finally:
                try:
                    await self._acleanup(loop, owns_process)
                finally:
                    failed.report(self.stderr.write)
                    if guard is not None:
                        guard.detach()

    async def _acleanup(self, loop: asyncio.AbstractEventLoop, owns_process: bool) -> None:
        """The toolkit's shutdown (see :mod:`.lifecycle`), with the command's stragglers.

        The tasks ``handle`` left running are cancelled after the drain and before the
        machinery stops; the process-wide machinery is stopped only by a command that owns the
        process (run from the command line), otherwise only this command's thread's
        connections are closed.
        """
        try:
            await lifecycle.drain_background_work()
        except TimeoutError as exc:
            self.stderr.write(f"Background signal dispatch did not finish: {exc}")
        finally:
            await cancel_and_report_stragglers(loop)
            if owns_process:
                await lifecycle.stop_machinery()
            else:
                await sync_to_async(connections.close_all)()


def _async_base(cls: type) -> str:
    for base in (AsyncAppCommand, AsyncLabelCommand):
        if issubclass(cls, base):
            return base.__name__
    return "AsyncBaseCommand"


class _ConcurrentItemsMixin(AsyncBaseCommand):
    """Runs one coroutine per item, at most ``max_concurrency`` at once, results in item order."""

    #: The default of ``--max-concurrency``: items handled at the same time.
    max_concurrency: ClassVar[int] = 8

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        value: object = cls.max_concurrency
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TypeError(
                f"{cls.__qualname__}.max_concurrency is {value!r}; it must be an integer of "
                f"at least 1."
            )

    def add_max_concurrency_argument(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-concurrency",
            type=_positive_int,
            default=self.max_concurrency,
            metavar="N",
            help=f"Handle at most N at the same time (default: {self.max_concurrency}).",
        )

    async def _handle_each(
        self,
        items: Sequence[T],
        handler: Callable[..., Awaitable[str | None]],
        options: dict[str, Any],
    ) -> str:
        limit = options.get("max_concurrency", self.max_concurrency)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise CommandError(
                f"max_concurrency is {limit!r}; it must be an integer of at least 1."
            )
        results: list[str | None] = [None] * len(items)
        pending: Iterable[tuple[int, T]] = iter(enumerate(items))

        async def worker() -> None:
            for index, item in pending:
                results[index] = await handler(item, **options)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(limit, len(items))):
                    group.create_task(worker())
        except ExceptionGroup as errors:
            # The items that failed together: one is raised as itself, several command errors
            # as one CommandError (run_from_argv() prints it), anything else as the group.
            if len(errors.exceptions) == 1:
                raise errors.exceptions[0] from None
            if all(isinstance(error, CommandError) for error in errors.exceptions):
                first: CommandError = errors.exceptions[0]  # type: ignore[assignment]
                raise CommandError(
                    "\n".join(str(error) for error in errors.exceptions),
                    returncode=first.returncode,
                ) from errors
            raise
        return "\n".join(result for result in results if result)


class AsyncLabelCommand(_ConcurrentItemsMixin):
    """Django's ``LabelCommand`` with ``async def handle_label(self, label, **options)``.

    Labels are handled concurrently, at most ``--max-concurrency`` at once (default
    :attr:`max_concurrency`); the strings that ``handle_label`` returns are written in label
    order.
    The first failure cancels the labels still running, and is raised as itself.
    """

    label = "label"
    missing_args_message = "Enter at least one %s."
    async_methods = ("handle", "handle_label")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.missing_args_message == AsyncLabelCommand.missing_args_message:
            self.missing_args_message = self.missing_args_message % self.label

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", metavar=self.label, nargs="+")
        self.add_max_concurrency_argument(parser)

    async def handle(self, *labels: str, **options: Any) -> str:  # type: ignore[override]
        return await self._handle_each(labels, self.handle_label, options)

    async def handle_label(self, label: str, **options: Any) -> str | None:
        """Handle one label; a returned string is written to stdout, in label order."""
        raise NotImplementedError(
            "subclasses of AsyncLabelCommand must provide a handle_label() method"
        )


class AsyncAppCommand(_ConcurrentItemsMixin):
    """Django's ``AppCommand`` with ``async def handle_app_config(self, app_config, **options)``.

    App configs are handled concurrently, at most ``--max-concurrency`` at once; output comes in
    the order of the labels given.
    """

    missing_args_message = "Enter at least one application label."
    async_methods = ("handle", "handle_app_config")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "args", metavar="app_label", nargs="+", help="One or more application label."
        )
        self.add_max_concurrency_argument(parser)

    async def handle(self, *app_labels: str, **options: Any) -> str:  # type: ignore[override]
        try:
            app_configs = [apps.get_app_config(app_label) for app_label in app_labels]
        except (LookupError, ImportError) as e:
            raise CommandError(f"{e}. Are you sure your INSTALLED_APPS setting is correct?") from e
        return await self._handle_each(app_configs, self.handle_app_config, options)

    async def handle_app_config(self, app_config: AppConfig, **options: Any) -> str | None:
        """Handle one app config; a returned string is written to stdout, in label order."""
        raise NotImplementedError(
            "subclasses of AsyncAppCommand must provide a handle_app_config() method"
        )


def _load_command(name: str) -> BaseCommand:
    # call_command()'s lookup, so that an unknown name fails the same way.
    try:
        app_name = get_commands()[name]
    except KeyError:
        raise CommandError(f"Unknown command: {name!r}") from None
    if isinstance(app_name, BaseCommand):
        return app_name
    return load_command_class(app_name, name)


async def acall_command(command_name: str | BaseCommand, *args: Any, **options: Any) -> Any:
    """The async twin of Django's ``call_command``, for code running on an event loop.

    An :class:`AsyncBaseCommand` runs on the current loop, in the caller's context; its options are
    parsed exactly as ``call_command`` parses them.
    A synchronous command runs through ``sync_to_async(call_command)`` on the caller's
    thread-sensitive thread.
    The process's signal handlers are left alone, and tasks the command leaves running keep
    running on the caller's loop.
    """
    command = (
        command_name if isinstance(command_name, BaseCommand) else _load_command(command_name)
    )
    if not isinstance(command, AsyncBaseCommand):
        return await sync_to_async(call_command)(command, *args, **options)
    parsed: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    token = _parsed_call.set(parsed)
    try:
        call_command(command, *args, **options)
    finally:
        _parsed_call.reset(token)
    parsed_args, parsed_options = parsed[0]
    return await command.aexecute(*parsed_args, **parsed_options)
