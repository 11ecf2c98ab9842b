from __future__ import annotations

import threading

import pytest


class ThreadCloses(list[str]):
    """The names of the threads that closed a connection, with a way to wait for them."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def record(self, name: str) -> None:
        with self._changed:
            self.append(name)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[str]:
        """Wait until ``count`` closes were recorded; a copy of them.

        A pooled worker closes its connections in the housekeeping that ends its lease, which may
        run just after the dispatch itself has finished (and ``drain_background`` has returned).
        """
        with self._changed:
            self._changed.wait_for(lambda: len(self) >= count, timeout=timeout)
            return list(self)


@pytest.fixture(name="worker_closes")
def worker_closes_fixture(monkeypatch: pytest.MonkeyPatch) -> ThreadCloses:
    """Names of the threads other than the main one that closed a database connection.

    Django's SQLite backend ignores ``close()`` on an in-memory database (the tests' default); here
    a connection of another thread really closes, as with a file database or PostgreSQL (the
    shared in-memory test database lives on through the main thread's connection).
    """
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.sqlite3.base import DatabaseWrapper

    closes = ThreadCloses()
    original = DatabaseWrapper.close

    def close(self: DatabaseWrapper) -> None:
        if threading.current_thread() is threading.main_thread():
            original(self)
        else:
            if self.connection is not None:
                closes.record(threading.current_thread().name)
            BaseDatabaseWrapper.close(self)

    monkeypatch.setattr(DatabaseWrapper, "close", close)
    return closes
