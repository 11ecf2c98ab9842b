"""Interleaved measurement: run each contender in turn, round after round, and keep medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    """One comparison: the figures of each contender and the ratio the benchmark claims."""

    suite: str
    name: str
    unit: str
    #: contender -> the per-round figures (higher is better when ``higher_is_better``)
    rounds: dict[str, list[float]]
    baseline: str
    subject: str
    higher_is_better: bool = True
    target: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def median(self, contender: str) -> float:
        return statistics.median(self.rounds[contender])

    @property
    def ratio(self) -> float:
        """How many times better the subject is than the baseline (> 1 is better)."""
        subject, baseline = self.median(self.subject), self.median(self.baseline)
        if self.higher_is_better:
            return subject / baseline if baseline else float("inf")
        return baseline / subject if subject else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "name": self.name,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "baseline": self.baseline,
            "subject": self.subject,
            "ratio": self.ratio,
            "target": self.target,
            "notes": self.notes,
            "medians": {k: self.median(k) for k in self.rounds},
            "rounds": self.rounds,
            **self.extra,
        }


def interleave(
    contenders: dict[str, Callable[[], float]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Call each contender once per round, in turn (A B C A B C ...), and collect the figures.

    Each callable runs one measurement and returns its figure. The order rotates every round so
    that no contender always follows the same one.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    figures: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            figures[name].append(contenders[name]())
    return figures


def rate(func: Callable[[], None], operations: int) -> float:
    """Operations per second of ``func``, which performs ``operations`` operations."""
    start = time.perf_counter()
    func()
    return operations / (time.perf_counter() - start)


def seconds(func: Callable[[], None]) -> float:
    """Wall time of one call of ``func``."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start
