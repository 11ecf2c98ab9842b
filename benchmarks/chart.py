"""The chart of the benchmark ratios: one panel per run, drawn with matplotlib.

``python -m benchmarks.chart OUT.png results.json [more.json ...]``

Each row is a bar from the 1x line to the subject's ratio against the baseline, on a log axis (so
that 0.5x and 2x are as far from 1x, and a 15x row does not flatten the others), with its target
marked and coloured by whether the ratio meets it. Each panel's title says what the run measured
with. matplotlib is a benchmark dependency only (``scripts/bench`` and the ``bench`` tox
environment install it); the package never imports this module.
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import ratio_text, target_ratio, verdict

MET_COLOR = "#2e8b57"
BELOW_COLOR = "#c8463c"
UNJUDGED_COLOR = "#7a8ca5"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit(
            "benchmarks.chart needs matplotlib, a benchmark-only dependency: "
            "`python -m pip install matplotlib` (scripts/bench installs it in .venv-bench)."
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def panel_title(payload: dict[str, Any]) -> str:
    """The setup of one run, for its panel's title."""
    env = payload["environment"]
    first = f"Django {env['django']}, Python {env['python']}, asgiref {env['asgiref']}"
    if "uvicorn" in env:
        first += f", uvicorn {env['uvicorn']}"
    second = [env["machine"]] if "machine" in env else []
    second.append(f"medians of {payload['rounds']} interleaved rounds")
    if payload.get("quick"):
        second.append("QUICK RUN: sizes too small to judge")
    return first + "\n" + "; ".join(second)


def _plottable(ratio: float) -> bool:
    """Whether a ratio has a place on a log axis (a quick run may measure a zero)."""
    return math.isfinite(ratio) and ratio > 0


def _limits(results: Sequence[dict[str, Any]]) -> tuple[float, float]:
    values = [1.0] + [r for r in (float(r["ratio"]) for r in results) if _plottable(r)]
    values += [t for r in results if (t := target_ratio(r.get("target") or "")) is not None]
    # Room on the right for the ratio's label.
    return min(values) / 1.8, max(values) * 3.0


# Layout, in inches: a fixed height per row, so every chart reads at the same scale.
_ROW, _TITLE, _GAP, _TOP, _BOTTOM = 0.36, 0.5, 0.4, 0.5, 1.0
_WIDTH, _LEFT, _RIGHT = 12.0, 4.8, 0.25


def _label(result: dict[str, Any]) -> str:
    met = verdict(result)
    text = ratio_text(result)
    if "difference_ms" in result:
        text += f"  ({result['difference_ms']:+.1f} ms; target {result['target']})"
    return text + ("  below target" if met is False else "")


def render(payloads: Sequence[dict[str, Any]]) -> bytes:
    """A PNG with one panel per ``results.json`` payload."""
    if not payloads:
        raise ValueError("render() needs at least one results.json payload")
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    heights = [len(p["results"]) * _ROW for p in payloads]
    total = _TOP + sum(heights) + len(payloads) * _TITLE + (len(payloads) - 1) * _GAP + _BOTTOM
    fig = plt.figure(figsize=(_WIDTH, total))
    low, high = _limits([r for p in payloads for r in p["results"]])
    top = total - _TOP
    for payload, height in zip(payloads, heights, strict=True):
        top -= _TITLE
        fig.text(0.01, (top + 0.06) / total, panel_title(payload), fontsize=9.5, va="bottom")
        ax = fig.add_axes(
            (_LEFT / _WIDTH, (top - height) / total, 1 - (_LEFT + _RIGHT) / _WIDTH, height / total)
        )
        top -= height + _GAP
        results = payload["results"]
        for y, r in enumerate(results):
            ratio = float(r["ratio"])
            met = verdict(r)
            color = UNJUDGED_COLOR if met is None else MET_COLOR if met else BELOW_COLOR
            if _plottable(ratio):
                ax.barh(y, ratio - 1.0, left=1.0, height=0.6, color=color)
            else:
                ratio = 1.0  # no bar; the label says what was measured
            ax.text(
                max(ratio, 1.0) * 1.06,
                y,
                _label(r),
                va="center",
                fontsize=9,
                color=BELOW_COLOR if met is False else "black",
                fontweight="bold" if met is False else "normal",
            )
            target = target_ratio(r.get("target") or "")
            if target is not None:
                ax.plot([target], [y], marker="|", markersize=17, mew=2.5, color="black")
        ax.axvline(1.0, color="black", linewidth=1.2)
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(range(len(results)), [r["name"] for r in results], fontsize=9)
        ax.set_ylim(len(results) - 0.5, -0.5)
        ax.grid(axis="x", which="major", color="#dddddd", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    ax.set_xlabel("subject / baseline (log scale; right of 1x is better)")
    legend = [
        Patch(color=MET_COLOR, label="meets its target"),
        Patch(color=BELOW_COLOR, label="below its target"),
        Patch(color=UNJUDGED_COLOR, label="no target"),
        Line2D(
            [], [], marker="|", linestyle="", markersize=12, mew=2.5, color="black", label="target"
        ),
        Line2D([], [], color="black", linewidth=1.2, label="1x: as fast as the baseline"),
    ]
    fig.legend(
        handles=legend,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.08 / total),
        ncol=len(legend),
        fontsize=9,
        frameon=False,
    )
    fig.text(
        0.01,
        (total - 0.15) / total,
        "django-async-toolkit: each benchmark's ratio against what you would otherwise use",
        fontsize=12,
        fontweight="bold",
        va="top",
    )
    out = io.BytesIO()
    # No metadata with versions or dates: the same results give the same file.
    fig.savefig(out, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m benchmarks.chart OUT.png results.json [more.json ...]")
        return 2
    out, *paths = argv
    Path(out).write_bytes(render([json.loads(Path(p).read_text()) for p in paths]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
