"""Render a ``results.json`` as the reStructuredText table of the docs' benchmarks page.

``python -m benchmarks.report benchmarks/results/results.json [more.json ...]``

Each row says whether its ratio meets its target (see :func:`verdict`); a ratio below its target
reads "BELOW TARGET", and is printed with enough digits not to round up to the target.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

BELOW = "BELOW TARGET"
MET = "met"

# ">= 4x", ">= 0.9x (within 10%)": a floor. "about 10x": a claim, met down to 10% under it.
_FLOOR = re.compile(r"^\s*>=\s*([0-9.]+)\s*x\b")
_ABOUT = re.compile(r"^\s*about\s+([0-9.]+)\s*x\b")
# "within 20 ms": the subject's median may be at most that much slower than the baseline's.
_WITHIN_MS = re.compile(r"^\s*within\s+([0-9.]+)\s*ms\b")
ABOUT_TOLERANCE = 0.9


def target_ratio(target: str) -> float | None:
    """The ratio a target names (``">= 4x"`` -> 4.0, ``"about 10x"`` -> 10.0), else ``None``."""
    match = _FLOOR.match(target) or _ABOUT.match(target)
    return float(match.group(1)) if match else None


def verdict(result: dict[str, Any]) -> bool | None:
    """Whether a result (a ``results.json`` row) meets its target; ``None`` when it has none.

    ``>= Nx`` needs a ratio of at least N; ``about Nx`` at least 90% of N; ``within N ms`` a
    ``difference_ms`` of at most N.
    """
    target = result.get("target") or ""
    ratio = float(result["ratio"])
    if floor := _FLOOR.match(target):
        return ratio >= float(floor.group(1))
    if about := _ABOUT.match(target):
        return ratio >= ABOUT_TOLERANCE * float(about.group(1))
    if (within := _WITHIN_MS.match(target)) and "difference_ms" in result:
        return float(result["difference_ms"]) <= float(within.group(1))
    if target:
        raise ValueError(f"benchmark {result['name']!r}: cannot judge target {target!r}")
    return None


def verdict_text(result: dict[str, Any]) -> str:
    """``"met"``, ``"BELOW TARGET"``, or ``"-"`` for a result without a target."""
    met = verdict(result)
    return "-" if met is None else MET if met else BELOW


def ratio_text(result: dict[str, Any]) -> str:
    """The ratio as ``"6.52x"``; below its target, never rounded up to it (0.9668 -> 0.967x)."""
    ratio = float(result["ratio"])
    text = f"{ratio:.2f}x"
    floor = target_ratio(result.get("target") or "")
    if floor is not None and verdict(result) is False:
        digits = 2
        while float(text[:-1]) >= floor and digits < 6:
            digits += 1
            text = f"{ratio:.{digits}f}x"
    return text


def _figure(value: float, unit: str) -> str:
    if unit == "seconds":
        return f"{value * 1000:,.1f} ms"
    return f"{value:,.0f} {unit}"


def setup(payload: dict[str, Any]) -> str:
    """What the figures were measured with: versions, machine and rounds, in one sentence."""
    env = payload["environment"]
    where = ", ".join(f"{k} {v}" for k, v in env.items())
    rounds = f"medians of {payload['rounds']} interleaved rounds"
    if "micro_rounds" in payload:
        rounds += (
            f" ({payload['micro_rounds']} for the signals and wrappers, "
            f"{payload['command_runs']} for the command start-up)"
        )
    return f"Measured with {where}; {rounds}."


def _rst_table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows[1:]]
    lines.append(rule)
    return [line.rstrip() for line in lines]


def cpu_table(payload: dict[str, Any]) -> str:
    """The server suites' CPU figures (``server_cpu``), or ``""`` when no row has them.

    A contender's *cores* near 1.00 means its server kept one core busy: a Python server is
    then bound by its own CPU time per request (the GIL), not by waiting.
    """
    rows: list[tuple[str, ...]] = [("Benchmark", "Server", "CPU per request", "Cores busy")]
    for r in payload["results"]:
        for contender in (r["subject"], r["baseline"]):
            figures = r.get("server_cpu", {}).get(contender)
            if figures:
                rows.append(
                    (
                        r["name"],
                        contender,
                        f"{figures['us_per_request']:,.0f} µs",
                        f"{figures['cores']:.2f}",
                    )
                )
    if len(rows) == 1:
        return ""
    intro = (
        "CPU time (user and system) of each server process under the load above, per request "
        "served; *cores busy* is CPU seconds per second of load (1.00: one core kept busy).\n\n"
    )
    return intro + "\n".join(_rst_table(rows)) + "\n"


def table(payload: dict[str, Any]) -> str:
    rows = [("Benchmark", "Ratio", "Target", "Verdict", "Subject", "Baseline")]
    for r in payload["results"]:
        medians = r["medians"]
        met = verdict(r)
        rows.append(
            (
                r["name"],
                ratio_text(r),
                r["target"] or "-",
                # Bold, so that a missed target stands out in the rendered page too.
                f"**{BELOW}**" if met is False else verdict_text(r),
                f"{r['subject']}: {_figure(medians[r['subject']], r['unit'])}",
                f"{r['baseline']}: {_figure(medians[r['baseline']], r['unit'])}",
            )
        )
    lines = _rst_table(rows)
    missed = [r["name"] for r in payload["results"] if verdict(r) is False]
    summary = ""
    if missed:
        count = (
            "1 ratio is below its" if len(missed) == 1 else f"{len(missed)} ratios are below their"
        )
        summary = f"{count} target: {'; '.join(missed)}.\n\n"
    text = f"{setup(payload)}\n\n{summary}" + "\n".join(lines) + "\n"
    cpu = cpu_table(payload)
    return f"{text}\n{cpu}" if cpu else text


def main(argv: list[str]) -> int:
    for path in argv:
        print(table(json.loads(Path(path).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
