"""Background receivers on Django Tasks (django-tasks-db) vs in-process background dispatch.

Two comparisons, side by side in one process on the benchmark's SQLite database:

* what a ``Model.save()`` costs with a task-backed ``background_receiver`` (the enqueue: one more
  row inserted in the save's transaction) vs with an in-process one (the dispatch, drained);
* how many receivers per second ``manage.py db_worker --batch`` runs (in this process, so
  without its start-up) vs in-process background dispatch of the same receiver.

Needs django-tasks-db (and the ``django-tasks`` backport on Django 4.2/5.2); the suite is skipped
without it.
"""

from __future__ import annotations

from typing import Any

from benchmarks.harness import Result, interleave, rate, seconds

ALIAS = "bench"
TASK_UID = "bench_tasks_task_receiver"
INPROCESS_UID = "bench_tasks_inprocess_receiver"


def available() -> bool:
    from django.conf import settings

    return "bench" in getattr(settings, "TASKS", {})


async def task_receiver(sender: Any, **kwargs: Any) -> None:
    return None


async def inprocess_receiver(sender: Any, **kwargs: Any) -> None:
    return None


def tasks(config: Any) -> list[Result]:
    if not available():
        print("  skipped: django-tasks-db is not installed")
        return []
    from django.core.management import call_command
    from django.db.models.signals import post_save
    from django.dispatch import Signal
    from django_tasks_db.models import DBTaskResult

    from benchmarks.models import Row
    from django_async_toolkit.signals import (
        background_receiver,
        drain_background_sync,
        send_background,
    )

    # Every save and every task is a commit of the SQLite file (an fsync): a tenth of the signal
    # suite's dispatches keeps the suite to a few minutes.
    n = max(5, config.dispatches // 10)

    def saves(uid: str | None, func: Any, task: str | None) -> float:
        if uid is not None:
            background_receiver(post_save, sender=Row, dispatch_uid=uid, task=task)(func)
        try:

            def go() -> None:
                for index in range(n):
                    Row.objects.create(name=f"row {index}")
                drain_background_sync()

            return rate(go, n)
        finally:
            if uid is not None:
                post_save.disconnect(sender=Row, dispatch_uid=uid)

    save_rounds = interleave(
        {
            "save, task-backed receiver": lambda: saves(TASK_UID, task_receiver, ALIAS),
            "save, in-process receiver": lambda: saves(INPROCESS_UID, inprocess_receiver, None),
            "save, no receiver": lambda: saves(None, None, None),
        },
        config.rounds,
    )

    ping = Signal()
    background_receiver(ping, task=ALIAS, dispatch_uid="bench_ping_task")(task_receiver)
    in_process = Signal()
    background_receiver(in_process, dispatch_uid="bench_ping_inprocess")(inprocess_receiver)

    def worker() -> float:
        DBTaskResult.objects.all().delete()
        for _ in range(n):
            ping.send(sender=None)

        def run() -> None:
            call_command(
                "db_worker", "--batch", "--no-startup-delay", "--backend", ALIAS, verbosity=0
            )

        elapsed = seconds(run)
        assert DBTaskResult.objects.successful().count() == n
        return n / elapsed

    def dispatch() -> float:
        def go() -> None:
            for _ in range(n):
                send_background(in_process, None)
            drain_background_sync()

        return rate(go, n)

    worker_rounds = interleave(
        {"db_worker": worker, "in-process background dispatch": dispatch},
        max(3, config.rounds),
    )
    DBTaskResult.objects.all().delete()
    Row.objects.exclude(name="benchmark row").delete()
    return [
        Result(
            "tasks",
            "save with a task-backed background receiver vs an in-process one (enqueue cost)",
            "saves/s",
            save_rounds,
            baseline="save, in-process receiver",
            subject="save, task-backed receiver",
            notes="SQLite, autocommit: the task row is a second INSERT and commit per save",
        ),
        Result(
            "tasks",
            "db_worker throughput vs in-process background dispatch, no-op receiver",
            "receivers/s",
            worker_rounds,
            baseline="in-process background dispatch",
            subject="db_worker",
            notes="db_worker --batch run in the benchmark process (its start-up not counted)",
        ),
    ]
