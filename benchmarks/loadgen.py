"""A small HTTP/1.1 keep-alive load generator on raw asyncio streams.

httpx would be the bottleneck at several thousand requests per second on one core; this client
does only what a GET with ``Content-Length`` responses needs, so the server is what is measured.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass


@dataclass
class LoadResult:
    requests: int
    errors: int
    elapsed: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else 0.0


async def _connection(
    host: str, port: int, path: str, deadline: float, latencies: list[float], errors: list[int]
) -> int:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value)
                elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2")):
                errors.append(1)
            done += 1
    finally:
        writer.close()
        await writer.wait_closed()
    return done


async def run_load(
    url_host: str, port: int, path: str, *, connections: int, duration: float
) -> LoadResult:
    """Keep ``connections`` connections busy for ``duration`` seconds; bounded by the deadline."""
    latencies: list[float] = []
    errors: list[int] = []
    start = time.perf_counter()
    deadline = start + duration
    counts = await asyncio.gather(
        *(
            _connection(url_host, port, path, deadline, latencies, errors)
            for _ in range(connections)
        )
    )
    return LoadResult(sum(counts), len(errors), time.perf_counter() - start, latencies)


def load(host: str, port: int, path: str, *, connections: int, duration: float) -> LoadResult:
    """Synchronous entry point of :func:`run_load`."""
    return asyncio.run(run_load(host, port, path, connections=connections, duration=duration))
