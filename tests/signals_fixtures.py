"""Fixtures shared by the signals tests."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture(name="worker_closes")
def worker_closes_fixture(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the threads other than the main one that closed a database connection.

    Django's SQLite backend ignores ``close()`` on an in-memory database (the tests' default); here
    a connection of another thread really closes, as with a file database or PostgreSQL (the
    shared in-memory test database lives on through the main thread's connection).
    """
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.sqlite3.base import DatabaseWrapper

    closes: list[str] = []
    original = DatabaseWrapper.close

    def close(self: DatabaseWrapper) -> None:
        if threading.current_thread() is threading.main_thread():
            original(self)
        else:
            if self.connection is not None:
                closes.append(threading.current_thread().name)
            BaseDatabaseWrapper.close(self)

    monkeypatch.setattr(DatabaseWrapper, "close", close)
    return closes
