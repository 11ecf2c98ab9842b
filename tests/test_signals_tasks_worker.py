"""Background receivers on django-tasks-db, run by its real worker (``manage.py db_worker``).

Each test gets a database of its own that separate processes share (a SQLite file, or a fresh
PostgreSQL database on the PostgreSQL lane), migrated by ``manage.py migrate``:

* a writer process saves N rows (each save enqueues one task in its transaction) and is killed
  with SIGKILL; ``db_worker --batch`` then runs every receiver once;
* a task row forged to name something other than a registered receiver fails, and calls nothing;
* in this process, the enqueue joins the sending transaction: a rollback leaves no task.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction

from tests import tasks_config

pytestmark = pytest.mark.skipif(
    not tasks_config.DATABASE_BACKEND,
    reason="django-tasks-db is not installed (it needs Django 5.2+)",
)

ROOT = Path(__file__).resolve().parent.parent
PROCESS_TIMEOUT = 120


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.tasks_worker_settings"
    env["ASYNC_TOOLKIT_TASKS_TEST_DB"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("DATABASE_URL", None)
    return env


def django_command(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m django ARGS`` against the test's shared database; fails the test on error."""
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
    return result


QUERY = """
import json
from django_tasks_db.models import DBTaskResult
from tests.tasksapp.models import Delivery, Parcel
print(json.dumps({
    "parcels": sorted(Parcel.objects.values_list("pk", flat=True)),
    "deliveries": sorted(Delivery.objects.values_list("note_id", flat=True)),
    "tasks": sorted(
        [r.status, r.exception_class_path] for r in DBTaskResult.objects.all()
    ),
}))
"""


def query(url: str) -> dict[str, Any]:
    output = django_command(url, "shell", "-c", QUERY).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_worker(url: str) -> subprocess.CompletedProcess[str]:
    return django_command(url, "db_worker", "--batch", "--no-startup-delay", "--backend", "db")


@pytest.fixture
def shared_database(tmp_path: Path) -> Iterator[str]:
    """The URL of a database of this test's own, migrated, that subprocesses can open."""
    default = settings.DATABASES["default"]
    if default["ENGINE"] != "django.db.backends.postgresql":
        url = f"sqlite://{tmp_path / 'tasks.sqlite3'}"
        django_command(url, "migrate", "--run-syncdb", "--verbosity", "0")
        yield url
        return
    import psycopg

    name = f"async_toolkit_tasks_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(
        host=default["HOST"],
        port=default["PORT"],
        user=default["USER"],
        password=default["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgres://{default['USER']}@{default['HOST']}:{default['PORT']}/{name}"
        try:
            django_command(url, "migrate", "--run-syncdb", "--verbosity", "0")
            yield url
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def test_a_killed_writer_loses_nothing_and_the_worker_runs_each_receiver_once(
    shared_database: str,
) -> None:
    count = 24
    with subprocess.Popen(
        [sys.executable, "-m", "tests.tasks_writer", str(count)],
        cwd=ROOT,
        env=_env(shared_database),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as writer:
        assert writer.stdout is not None and writer.stderr is not None
        try:
            line = writer.stdout.readline()
        finally:
            writer.send_signal(signal.SIGKILL)
            errors = writer.stderr.read()
            writer.wait(timeout=PROCESS_TIMEOUT)
        assert line.strip() == f"saved {count}", errors
    assert writer.returncode == -signal.SIGKILL

    before = query(shared_database)
    assert len(before["parcels"]) == count
    assert before["deliveries"] == []  # nothing ran in the writer: it is all in the queue
    assert before["tasks"] == [["READY", ""]] * count

    run_worker(shared_database)

    after = query(shared_database)
    assert after["deliveries"] == after["parcels"]  # each receiver once, for each row
    assert after["tasks"] == [["SUCCESSFUL", ""]] * count

    run_worker(shared_database)  # a second worker finds nothing left to run
    assert query(shared_database)["deliveries"] == after["parcels"]


FORGE = """
from django_tasks_db.models import DBTaskResult
from django_async_toolkit.signals.tasks import TASK_PATH
for receiver in ["os.system", "tests.tasksapp.receivers.plain_function"]:
    DBTaskResult.objects.create(
        task_path=TASK_PATH,
        backend_name="db",
        args_kwargs={
            "args": [],
            "kwargs": {
                "receiver": receiver,
                "signal_index": 0,
                "sender": None,
                "named": {"command": "touch %(marker)s"},
            },
        },
    )
DBTaskResult.objects.create(
    task_path="os.system", backend_name="db",
    args_kwargs={"args": ["touch %(marker)s"], "kwargs": {}},
)
"""


def test_a_forged_task_fails_and_calls_nothing(shared_database: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    django_command(shared_database, "shell", "-c", FORGE % {"marker": marker})

    run_worker(shared_database)

    assert not marker.exists()
    tasks = query(shared_database)["tasks"]
    assert [status for status, _ in tasks] == ["FAILED"] * 3
    assert sorted(path for _, path in tasks) == [
        "django.core.exceptions.SuspiciousOperation",  # django-tasks-db's own check
        "django_async_toolkit.signals.tasks.UnknownReceiverError",
        "django_async_toolkit.signals.tasks.UnknownReceiverError",
    ]


@pytest.mark.django_db(transaction=True)
def test_the_enqueue_joins_the_sending_transaction() -> None:
    from django_tasks_db.models import DBTaskResult

    from tests.tasksapp.models import Parcel

    with pytest.raises(RuntimeError), transaction.atomic():
        Parcel.objects.create(title="rolled back")
        # Inside the transaction the task is already there, on the same connection.
        assert DBTaskResult.objects.count() == 1
        raise RuntimeError("roll back")
    assert DBTaskResult.objects.count() == 0

    with transaction.atomic():
        parcel = Parcel.objects.create(title="kept")
    (result,) = DBTaskResult.objects.all()
    assert result.status == "READY"
    kwargs = result.args_kwargs["kwargs"]
    assert kwargs["receiver"] == "tests.tasksapp.receivers.deliver"
    assert kwargs["sender"] == {"model_class": "tasksapp.Parcel"}
    assert kwargs["named"]["instance"]["model"]["fields"]["id"] == parcel.pk
    assert kwargs["named"]["created"] is True
    assert connection.in_atomic_block is False
