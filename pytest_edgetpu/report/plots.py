"""Plots (``--edgetpu-plot=DIR``): per benchmark, a PNG of this run's latency against its
baseline's, with the verdict in the title.

Two panels, each scaled to what it shows. The top one shows what the gate compares: every
interpreter instance's value of the gated metric, baseline above this run, as points over a box.
The bottom one shows the pooled per-invoke distribution: this run's quantile sketch (the
result's ``quantiles_ms``) as a curve, the quantiles a baseline entry keeps (min, p50, p90, p99,
max) as squares, and the p50 (dashed) and p99 (dotted) of both runs as vertical lines. This run
is drawn in its verdict's colour, the baseline in grey.

Renders results and the baseline entries they were compared with; decides nothing.
matplotlib is an optional dependency (the ``plot`` extra): it is imported only here, only when
plots are written, and drawn with the Agg backend without pyplot's global state.
"""

from __future__ import annotations

import importlib.util
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from ..core.errors import ConfigError, ResultsError
from ..core.jsonio import write_atomic
from ..core.stats import instance_figure
from ..judge.baselines import BaselineEntry
from ..judge.results import QUANTILE_LEVELS, Result, TimedResult
from ..judge.verdict import Status, compared_words, format_interval, format_ms

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["check_matplotlib", "write_plots", "write_png"]

#: The command that installs what ``--edgetpu-plot`` needs.
_INSTALL: Final = 'pip install "pytest-edgetpu[plot]"'

_BASELINE_COLOR: Final = "#7f7f7f"
_STATUS_COLORS: Final = {
    Status.REGRESSION: "#d62728",
    Status.IMPROVED: "#2ca02c",
    Status.UNSTABLE: "#ff7f0e",
    Status.BUSY: "#ff7f0e",
    Status.INCOMPARABLE: "#ff7f0e",
    Status.MODEL_CHANGED: "#ff7f0e",
}
_CURRENT_COLOR: Final = "#1f77b4"
# The quantiles a baseline entry keeps, at their levels.
_ENTRY_QUANTILES: Final = (("min", 0.0), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))

# One run in a plot: its name, per-instance values, pooled summary and colour.
_Series = tuple[str, Sequence[float], Mapping[str, float], str]


def check_matplotlib(option: str = "--edgetpu-plot") -> None:
    """Stop before any test runs (or any file is read) when ``option`` cannot be honoured."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(
            f"{option} needs matplotlib, which is not installed; install it with: {_INSTALL}"
        )


def write_plots(results: Sequence[Result], directory: Path) -> list[Path]:
    """Write one PNG per judged result into ``directory``; returns the files written."""
    check_matplotlib()
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()
    for result in results:
        if not isinstance(result, TimedResult):
            continue
        written.append(
            write_png(directory, result.test_id, used, _plot(result, result.compared_entry))
        )
    return written


def write_png(directory: Path, name: str, used: set[str], png: bytes) -> Path:
    """Write ``png`` into ``directory`` under a file name made from ``name``, unique among
    ``used`` (two names may slug alike: neither plot is lost)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.")[:150] or "test"
    unique, count = stem, 1
    while unique in used:
        count += 1
        unique = f"{stem}-{count}"
    used.add(unique)
    path = directory / f"{unique}.png"
    try:
        # Atomic: a full disk leaves no empty PNG, and a planted symlink is replaced.
        write_atomic(path, png)
    except OSError as exc:
        raise ResultsError(f"cannot write the plot {path}: {exc.strerror or exc}") from exc
    return path


def _plot(result: TimedResult, baseline: BaselineEntry | None) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    color = _STATUS_COLORS.get(result.verdict.status, _CURRENT_COLOR)
    figure = Figure(figsize=(8.5, 6.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, height_ratios=(1.0, 1.5))
    figure.suptitle(_title(result), x=0.01, ha="left", fontsize=10, color=color)
    series: list[_Series] = [
        ("this run", result.instance_values_ms, result.summary.figures(), color)
    ]
    if baseline is not None:
        series.append(
            ("baseline", baseline.instance_values_ms, baseline.summary_ms, _BASELINE_COLOR)
        )
    _instances(top, result.metric, series)
    _distribution(bottom, result.quantiles_ms, series)
    png = io.BytesIO()
    figure.savefig(png, format="png")
    return png.getvalue()


def _title(result: TimedResult) -> str:
    verdict, metric = result.verdict, result.metric
    now = format_ms(result.value_ms)
    change = verdict.change
    if change is None or verdict.baseline_ms is None:
        figures = f"{metric} {now} ms, not compared with a baseline"
    else:
        figures = (
            f"{verdict.compared_figures}: {change.estimate:+.1%} "
            f"(95% CI {format_interval(change.low, change.high)})"
        )
        if verdict.confirmed:
            figures += ", confirmed by a second measurement"
        figures += (
            f"\ncompared: {compared_words(metric, bool(verdict.against), verdict.in_processes)}"
            " (top); "
            f"pooled {metric} "
            f"{format_ms(verdict.baseline_ms)} ms -> {now} ms (bottom)"
        )
    device = f"{result.device}: {result.device_words}"
    if verdict.model_changed:
        device += "; the model changed since the baseline"
    return f"{verdict.status.value}  {result.test_id}\n{figures}\n{device}"


def _instances(axes: Axes, metric: str, series: Sequence[_Series]) -> None:
    """Every instance's value of the gated metric, one row per run, points over a box."""
    # Deterministic jitter: the same result always draws the same picture.
    jitter = np.random.default_rng(0)
    labels = []
    for row, (name, values, _, color) in enumerate(series):
        axes.boxplot(
            [values],
            positions=[row],
            orientation="horizontal",
            widths=0.55,
            showfliers=False,
            patch_artist=True,
            boxprops={"facecolor": color, "alpha": 0.18, "edgecolor": color},
            medianprops={"color": color},
            whiskerprops={"color": color},
            capprops={"color": color},
        )
        axes.scatter(
            values,
            row + jitter.uniform(-0.18, 0.18, len(values)),
            s=14,
            color=color,
            alpha=0.8,
            zorder=3,
        )
        labels.append(f"{name}\n{len(values)} instances")
    axes.set_yticks(range(len(series)), labels, fontsize=8)
    axes.set_ylim(-0.6, len(series) - 0.4)
    axes.set_xlabel(
        f"{instance_figure(metric)} of each interpreter instance (ms): what the gate compares"
    )
    axes.grid(axis="x", alpha=0.3)


def _distribution(axes: Axes, quantiles: Sequence[float] | None, series: Sequence[_Series]) -> None:
    """All invokes pooled: this run's quantile sketch as a curve, the quantiles a baseline
    entry keeps as points, and the p50 and p99 of both as vertical lines."""
    current_color = series[0][3]
    if quantiles:
        axes.plot(
            quantiles,
            [100 * level for level in QUANTILE_LEVELS],
            color=current_color,
            marker=".",
            linewidth=1,
            label="this run, quantiles",
        )
    for name, _, summary, color in series[1:]:
        # A hand-edited baseline file may keep fewer figures: draw those it has.
        known = [(summary[k], 100 * level) for k, level in _ENTRY_QUANTILES if k in summary]
        axes.scatter(
            [x for x, _ in known],
            [y for _, y in known],
            marker="s",
            color=color,
            zorder=3,
            label=f"{name} min, p50, p90, p99, max",
        )
    for name, _, summary, color in series:
        for metric, style in (("p50", "--"), ("p99", ":")):
            if metric not in summary:
                continue
            axes.axvline(
                summary[metric],
                color=color,
                linestyle=style,
                linewidth=1.2,
                label=f"{name} {metric} {format_ms(summary[metric])} ms",
            )
    # From the fastest to the slowest invoke, the tail included; on a log axis when the slowest
    # is far out, so that it does not squeeze the bulk of the invokes into a corner.
    # This run's summary has every figure; a baseline's may lack some.
    summaries = [summary for _, _, summary, _ in series]
    low = min(s["min"] for s in summaries if "min" in s)
    high = max(s[k] for s in summaries for k in ("max", "p99") if k in s)
    if high > 3 * low:
        axes.set_xscale("log")
        axes.set_xlim(low / 1.05, high * 1.05)
    else:
        # Identical figures would leave no width to draw in.
        span = (high - low) or 0.1 * high
        axes.set_xlim(max(0.0, low - 0.05 * span), high + 0.08 * span)
    axes.set_ylim(-3, 103)
    axes.set_xlabel("latency of each invoke, all instances pooled, up to the slowest (ms)")
    axes.set_ylabel("% of invokes at or below", fontsize=8)
    axes.legend(loc="best", fontsize=8, framealpha=0.9)
    axes.grid(alpha=0.3)
