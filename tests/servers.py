"""Real servers for tests: uvicorn on 127.0.0.1, on an ephemeral port, stopped by the test.

``serve_asgi(app)`` runs uvicorn in a thread of the test process (so coverage sees the code it
runs) and yields the base URL once the server accepts connections.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


@contextmanager
def serve_asgi(app: Any, *, lifespan: str = "off", **config: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 and yield ``http://127.0.0.1:<port>``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(
        uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False, **config)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.ready.wait(0.05):
            if not thread.is_alive():
                raise RuntimeError("uvicorn exited before it started serving")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        if thread.is_alive():  # pragma: no cover - only when uvicorn hangs
            raise RuntimeError("uvicorn did not stop within 30 s")
