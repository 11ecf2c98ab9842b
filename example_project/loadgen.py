"""A small, bounded HTTP load generator (httpx.AsyncClient), for ``scripts/demo``.

It sends a fixed number of requests with a fixed number in flight, stops early at a deadline, and
reports requests per second and latency percentiles.
Only ever point it at servers on this machine (127.0.0.1).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

#: What request number ``i`` is: ``(method, path)``.
Plan = Callable[[int], tuple[str, str]]


@dataclass
class LoadResult:
    """What one run measured."""

    sent: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    #: How many requests of each (method, status) pair, e.g. ``("POST", 200)``.
    by_method: Counter[tuple[str, int]] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if status < 400)

    @property
    def errors(self) -> int:
        return self.sent - self.ok

    @property
    def requests_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        """The latency (seconds) below which ``fraction`` of the answered requests fall."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
        return ordered[index]


async def run_load(
    base_url: str,
    plan: Plan,
    *,
    requests: int,
    concurrency: int,
    deadline: float = 30.0,
    timeout: float = 10.0,
) -> LoadResult:
    """Send ``requests`` requests, ``concurrency`` at a time; stop sending after ``deadline`` s."""
    if requests < 1 or concurrency < 1:
        raise ValueError(f"requests and concurrency must be at least 1: {requests}, {concurrency}")
    if not base_url.startswith(("http://127.", "http://localhost")):
        raise ValueError(f"load is only ever sent to this machine, not to {base_url!r}")
    result = LoadResult()
    numbers = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:
        started = time.perf_counter()
        stop_at = started + deadline

        async def worker() -> None:
            for number in numbers:
                if time.perf_counter() >= stop_at:
                    return
                method, path = plan(number)
                sent = time.perf_counter()
                result.sent += 1
                try:
                    response = await client.request(method, path)
                except httpx.HTTPError as exc:
                    result.failures[type(exc).__name__] += 1
                    continue
                result.latencies.append(time.perf_counter() - sent)
                result.statuses[response.status_code] += 1
                result.by_method[method, response.status_code] += 1

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        result.seconds = time.perf_counter() - started
    return result
