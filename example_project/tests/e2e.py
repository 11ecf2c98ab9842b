"""Helpers of the example's end-to-end tests: servers in threads, and the test database's URL."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import uvicorn
from django.db import connection
from upstream.app import OrderAPI

UPSTREAM_ORDERS = 120  # 6 pages of 20
SERVER_START_TIMEOUT = 30.0


class ThreadedUvicorn(uvicorn.Server):
    """uvicorn serving one app from a thread of this process, on a port of 127.0.0.1."""

    def __init__(
        self, app: Any, *, lifespan: Literal["on", "off"], shutdown_timeout: float | None = None
    ) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                lifespan=lifespan,
                log_level="warning",
                access_log=False,
                # None: on exit, wait for every request in flight; else cancel them after that.
                timeout_graceful_shutdown=shutdown_timeout,
            )
        )
        self.started_event = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(
            target=self.run, kwargs={"sockets": [self.listener]}, name=f"uvicorn {self.url}"
        )

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.started_event.set()

    def __enter__(self) -> ThreadedUvicorn:
        self.thread.start()
        if not self.started_event.wait(SERVER_START_TIMEOUT) or self.should_exit:
            self.__exit__()
            raise RuntimeError(f"uvicorn did not start serving {self.url}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.should_exit = True
        self.thread.join(SERVER_START_TIMEOUT)
        self.listener.close()
        if self.thread.is_alive():
            raise RuntimeError(f"uvicorn serving {self.url} did not stop")


@dataclass
class Upstream:
    url: str
    api: OrderAPI


def database_url() -> str:
    """A ``DATABASE_URL`` for the test database (which pytest-django has switched to)."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    if connection.vendor == "postgresql":
        password = f":{quote(config['PASSWORD'], safe='')}" if config["PASSWORD"] else ""
        return (
            f"postgres://{quote(config['USER'], safe='')}{password}@"
            f"{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}/{config['NAME']}"
        )
    raise NotImplementedError(f"no DATABASE_URL for the {connection.vendor} backend")
