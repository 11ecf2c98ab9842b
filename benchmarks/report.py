"""Render a ``results.json`` as the reStructuredText table of the docs' benchmarks page.

``python -m benchmarks.report benchmarks/results/results.json [more.json ...]``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _figure(value: float, unit: str) -> str:
    if unit == "seconds":
        return f"{value * 1000:,.1f} ms"
    return f"{value:,.0f} {unit}"


def table(payload: dict[str, Any]) -> str:
    env = payload["environment"]
    rows = [("Benchmark", "Ratio", "Target", "Subject", "Baseline")]
    for r in payload["results"]:
        medians = r["medians"]
        rows.append(
            (
                r["name"],
                f"{r['ratio']:.2f}x",
                r["target"] or "-",
                f"{r['subject']}: {_figure(medians[r['subject']], r['unit'])}",
                f"{r['baseline']}: {_figure(medians[r['baseline']], r['unit'])}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows[1:]]
    lines.append(rule)
    where = ", ".join(f"{k} {v}" for k, v in env.items())
    rounds = f"medians of {payload['rounds']} interleaved rounds"
    if "micro_rounds" in payload:
        rounds += (
            f" ({payload['micro_rounds']} for the signals and wrappers, "
            f"{payload['command_runs']} for the command start-up)"
        )
    return f"Measured with {where}; {rounds}.\n\n" + (
        "\n".join(line.rstrip() for line in lines) + "\n"
    )


def main(argv: list[str]) -> int:
    for path in argv:
        print(table(json.loads(Path(path).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
