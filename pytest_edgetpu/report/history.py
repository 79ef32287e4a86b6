"""``pytest-edgetpu history``: the steps found in a gate's runs, as a Markdown table and a PNG
per benchmark. Renders; never decides."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import one_line
from ..judge.history import Point, Series
from ..judge.verdict import format_interval, format_ms
from .plots import check_matplotlib, write_png

__all__ = ["history_markdown", "newest_regression", "write_history_plots"]


def history_markdown(series: Sequence[Series]) -> str:
    """A table of every step found, then a line per benchmark without one."""
    rows = []
    for one in series:
        for step in one.steps:
            before = one.points[step.index - 1] if step.index else None
            first = one.points[step.index]
            rows.append(
                f"| `{one_line(one.test_id)}` | `{one.profile}` | {one_line(first.run)} "
                f"({one_line(first.created[:16])}) | {step.change.estimate:+.1%} "
                f"({format_interval(step.change.low, step.change.high)}) | "
                f"{format_ms(step.before_ms)} -> {format_ms(step.after_ms)} | "
                f"{one_line(before.run) if before else ''} .. {one_line(first.run)} | "
                f"{_commits(before, first)} |"
            )
    lines = ["## pytest-edgetpu history", ""]
    if rows:
        lines += [
            "| test | profile | first run after the step | change (95% CI) | compared ms | "
            "between runs | commits |",
            "|:---|:---|:---|---:|---:|:---|:---|",
            *rows,
            "",
        ]
    steady = [one for one in series if not one.steps]
    lines += [
        f"- `{one_line(one.test_id)}` on `{one.profile}`: no step in {len(one.points)} run(s)"
        for one in steady
    ]
    return "\n".join(lines) + "\n"


def _commits(before: Point | None, first: Point) -> str:
    """``a1b2c3d..e4f5a6b``: the commits the step came between (to hand to ``git bisect``), where
    both runs' results files name theirs."""
    if before is None or not before.commit or not first.commit:
        return ""
    return f"`{one_line(before.commit[:7])}..{one_line(first.commit[:7])}`"


def newest_regression(series: Sequence[Series]) -> list[str]:
    """The benchmarks whose newest step is a slowdown, in words (every step found already
    counts against the threshold, as a gate's regression does)."""
    found = []
    for one in series:
        if one.steps and one.steps[-1].change.estimate > 0:
            step = one.steps[-1]
            found.append(
                f"{one.test_id} on {one.profile}: {step.change.estimate:+.1%} since "
                f"{one.points[step.index].run}"
            )
    return found


def write_history_plots(series: Sequence[Series], directory: Path) -> list[Path]:
    """A PNG per benchmark: its compared figure run after run, its levels between steps."""
    check_matplotlib("--plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()
    for one in series:
        figure = Figure(figsize=(8.5, 4.0), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots()
        xs = range(len(one.points))
        axes.plot(xs, [p.value_ms for p in one.points], "o-", color="#4C72B0", markersize=4)
        untrusted = [(i, p.value_ms) for i, p in enumerate(one.points) if not p.trusted]
        if untrusted:
            axes.plot(*zip(*untrusted, strict=True), "x", color="#999999", label="BUSY/UNSTABLE")
            axes.legend(loc="best")
        edges = [0, *(s.index for s in one.steps), len(one.points)]
        levels = [one.steps[0].before_ms] if one.steps else []
        levels += [s.after_ms for s in one.steps]
        for start, end, level in zip(edges, edges[1:], levels, strict=False):
            axes.hlines(level, start - 0.4, end - 0.6, colors="#C44E52")
        axes.set_title(one_line(f"{one.test_id} ({one.profile})"), fontsize=10, loc="left")
        axes.set_xlabel("run")
        axes.set_ylabel("compared ms")
        png = io.BytesIO()
        figure.savefig(png, format="png")
        written.append(write_png(directory, f"{one.test_id}-{one.profile}", used, png.getvalue()))
    return written
