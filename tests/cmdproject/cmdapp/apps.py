from __future__ import annotations

import os
import threading
from typing import Any

from django.apps import AppConfig


class CmdAppConfig(AppConfig):
    """Writes down each closed database connection when ``CMDPROJECT_CLOSE_LOG`` is set."""

    name = "cmdapp"

    def ready(self) -> None:
        log = os.environ.get("CMDPROJECT_CLOSE_LOG")
        if not log:
            return
        from django.db.backends.sqlite3.base import DatabaseWrapper

        original = DatabaseWrapper.close

        def close(self: Any) -> None:
            if self.connection is not None:
                with open(log, "a") as file:
                    file.write(f"closed {self.alias} {threading.current_thread().name}\n")
            original(self)

        DatabaseWrapper.close = close  # type: ignore[method-assign]
