"""The benchmark report and chart: a ratio below its target is marked, never rounded up to it.

Timing is never judged here (that is what ``benchmarks/`` is for): these tests feed the report
fixed ``results.json`` rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import BELOW, ratio_text, table, target_ratio, verdict

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def row(ratio: float, target: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"subject at {ratio} for {target or 'no target'}",
        "unit": "requests/s",
        "ratio": ratio,
        "target": target,
        "subject": "toolkit",
        "baseline": "django",
        "medians": {"toolkit": 100.0 * ratio, "django": 100.0},
        **extra,
    }


def payload(*rows: dict[str, Any]) -> dict[str, Any]:
    return {
        "environment": {"python": "3.12.1", "django": "6.1.3", "asgiref": "3.13.0"},
        "quick": False,
        "rounds": 7,
        "results": list(rows),
    }


@pytest.mark.parametrize(
    ("target", "expected"),
    [(">= 4x", 4.0), (">= 0.9x (within 10%)", 0.9), ("about 10x", 10.0), ("within 20 ms", None)],
)
def test_target_ratio(target: str, expected: float | None) -> None:
    assert target_ratio(target) == expected


def test_verdicts() -> None:
    assert verdict(row(4.5, ">= 4x")) is True
    assert verdict(row(0.9668, ">= 0.97x")) is False
    assert verdict(row(9.2, "about 10x")) is True
    assert verdict(row(8.0, "about 10x")) is False
    assert verdict(row(0.96, "within 20 ms", difference_ms=10.1)) is True
    assert verdict(row(0.9, "within 20 ms", difference_ms=25.0)) is False
    assert verdict(row(0.8, "")) is None
    with pytest.raises(ValueError, match="cannot judge target 'faster'"):
        verdict(row(2.0, "faster"))


def test_a_ratio_below_its_target_is_not_rounded_up_to_it() -> None:
    assert ratio_text(row(0.9668, ">= 0.97x")) == "0.967x"
    assert ratio_text(row(0.96999, ">= 0.97x")) == "0.96999x"
    assert ratio_text(row(0.9668, ">= 0.9x")) == "0.97x"
    assert ratio_text(row(6.516, ">= 4x")) == "6.52x"


def test_the_table_marks_a_missed_target_plainly() -> None:
    text = table(payload(row(6.5, ">= 4x"), row(0.9668, ">= 0.97x"), row(0.8, "")))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("Benchmark"))
    assert header.split() == ["Benchmark", "Ratio", "Target", "Verdict", "Subject", "Baseline"]
    met = next(line for line in lines if line.startswith("subject at 6.5 "))
    below = next(line for line in lines if line.startswith("subject at 0.9668 "))
    unjudged = next(line for line in lines if line.startswith("subject at 0.8 "))
    assert "  met  " in met and BELOW not in met
    assert f"**{BELOW}**" in below and "0.967x" in below
    assert BELOW not in unjudged
    assert "1 ratio is below its target: subject at 0.9668 for >= 0.97x." in text
    two = table(payload(row(0.9668, ">= 0.97x"), row(3.7, ">= 4x")))
    assert "2 ratios are below their target: subject at 0.9668 for >= 0.97x; subject at" in two


def test_the_docs_results_have_targets_the_report_understands() -> None:
    for path in sorted(DOCS.glob("results-*.json")):
        for result in json.loads(path.read_text())["results"]:
            verdict(result)  # raises on a target it cannot judge


def test_the_chart_is_a_png_with_a_panel_per_run() -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is a benchmark-only dependency")
    from benchmarks.chart import panel_title, render

    run = payload(row(6.5, ">= 4x"), row(0.9668, ">= 0.97x"), row(0.8, ""))
    png = render([run, payload(row(1.1, ">= 1x"))])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert panel_title(run).startswith("Django 6.1.3, Python 3.12.1, asgiref 3.13.0")
    with pytest.raises(ValueError, match="at least one"):
        render([])


def test_the_servers_cpu_per_request_is_tabled_when_measured() -> None:
    cpu = {
        "toolkit": {"us_per_request": 891.4, "cores": 0.994},
        "django": {"us_per_request": 1891.0, "cores": 0.63},
    }
    text = table(payload(row(3.3, ">= 4x", server_cpu=cpu), row(6.5, ">= 4x")))
    lines = text.splitlines()
    header = [line for line in lines if line.startswith("Benchmark")][-1]
    assert header.split() == ["Benchmark", "Server", "CPU", "per", "request", "Cores", "busy"]
    toolkit = next(line for line in lines if "891 µs" in line)
    django = next(line for line in lines if "1,891 µs" in line)
    assert toolkit.startswith("subject at 3.3 ") and "toolkit" in toolkit and "0.99" in toolkit
    assert "django" in django and "0.63" in django
    assert "subject at 6.5" not in text.split("CPU time")[1]  # a row without figures is left out
    assert "CPU time" not in table(payload(row(6.5, ">= 4x")))
