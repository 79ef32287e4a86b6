"""A verdict and what it is about: its status, the measurement it judged, the policy it
applied, and the one message every output shows for it.

Values only; :mod:`pytest_edgetpu.judge.compare` decides them. Every figure a message shows as
"before -> after" is the one the verdict compared.
"""

from __future__ import annotations

import decimal
import enum
import math
from dataclasses import dataclass
from pathlib import Path

from ..core.stats import Shift, compared_values, instance_figure
from ..engine.host_reference import HostReading

__all__ = [
    "COUNTS_FROM",
    "STRICT_FAILURES",
    "Current",
    "Policy",
    "Status",
    "Verdict",
    "compared_words",
    "decide",
    "format_bytes",
    "format_interval",
    "format_ms",
]


class Status(str, enum.Enum):
    """The outcome of a comparison."""

    PASS = "PASS"
    REGRESSION = "REGRESSION"
    IMPROVED = "IMPROVED"
    NO_BASELINE = "NO_BASELINE"
    MODEL_CHANGED = "MODEL_CHANGED"
    INCOMPARABLE = "INCOMPARABLE"
    UNSTABLE = "UNSTABLE"
    BUSY = "BUSY"


#: Outcomes that fail the test only with ``--edgetpu-strict``.
STRICT_FAILURES = frozenset({Status.NO_BASELINE, Status.INCOMPARABLE, Status.UNSTABLE, Status.BUSY})


@dataclass(frozen=True)
class Policy:
    """How to judge: the smallest slowdown that counts, the confidence level, strictness."""

    threshold: float  # fraction: 0.05 = 5%
    confidence: float = 0.95
    strict: bool = False


@dataclass(frozen=True)
class Current:
    """What a verdict needs to know about the current measurement."""

    metric: str
    value_ms: float
    instance_values_ms: tuple[float, ...]
    num_threads: int
    workers: int
    device_words: str  # e.g. "cpu (x86_64, LiteRT 2.3.0, 1 thread)"
    model_sha256: str | None = None
    #: The share of its timed loops the benchmark thread waited for a CPU (None: unknown).
    wait_share: float | None = None
    #: How many fresh processes measured it, each one of ``instance_values_ms``; 0: this one.
    processes: int = 0
    #: The host's speed around it (a reference workload's), where a stored comparison
    #: suspected a slowdown; None: not measured.
    host_reference: HostReading | None = None

    @property
    def compared_values_ms(self) -> list[float]:
        """What a verdict compares of it (:func:`~pytest_edgetpu.core.stats.compared_values`)."""
        return compared_values(self.instance_values_ms, self.processes > 0)


@dataclass(frozen=True)
class Verdict:
    """The decision for one test, with every figure its message shows."""

    status: Status
    metric: str
    current_ms: float
    device_words: str
    baseline_path: Path
    baseline_ms: float | None = None
    change: Shift | None = None
    #: The figures the change is estimated between
    #: (:func:`~pytest_edgetpu.core.stats.compared_value` of each side's instance values);
    #: ``baseline_ms`` and ``current_ms`` are pooled figures.
    compared_baseline_ms: float | None = None
    compared_current_ms: float | None = None
    model_changed: bool = False
    confirmed: bool = False
    baseline_recorded: str | None = None
    baseline_sha256: str | None = None
    reason: str = ""
    noise_note: str = ""
    #: Relative mode: the revision compared with (``origin/main (a1b2c3d)``) and how many
    #: interleaved pairs of instances were measured, or (``process_pairs``) pairs of processes.
    against: str = ""
    pairs: int = 0
    process_pairs: bool = False
    #: Against a stored baseline measured in fresh processes: how many processes measured the
    #: baseline and how many the current figure (None: each side in one process).
    processes: tuple[int, int] | None = None

    @property
    def in_processes(self) -> bool:
        """Whether the compared values are processes' (each the median of its instances')."""
        return self.process_pairs or self.processes is not None

    def fails(self, strict: bool) -> bool:
        """Whether this verdict fails its test."""
        return self.status is Status.REGRESSION or (strict and self.status in STRICT_FAILURES)

    @property
    def message(self) -> str:
        """One line: what changed, how sure, on which device, against which baseline. The
        figures before the change are the ones it was estimated between; the pooled ones follow,
        labelled."""
        head = f"{self.status.value} {self.metric}"
        if self.baseline_ms is None or self.change is None:
            text = f"{head} {format_ms(self.current_ms)} ms on {self.device_words}: {self.reason}"
        else:
            c = self.change
            if self.against:
                unit = "pairs of processes" if self.process_pairs else "interleaved pairs"
                compared_with = f" against {self.against}, measured now, {self.pairs} {unit}"
            else:
                compared_with = (
                    f"; baseline {self.baseline_path} recorded "
                    f"{(self.baseline_recorded or '?')[:10]}"
                )
                if self.processes is not None:
                    then, now = self.processes
                    compared_with += f" in {then} fresh processes, measured now in {now}"
                if self.baseline_sha256:
                    compared_with += f" from model sha256 {self.baseline_sha256[:4]}…"
            # The gated metric first, then the figures compared under their own name.
            text = (
                f"{head} (compared {instance_figure(self.metric)}) {self._compared_ms} "
                f"({c.estimate:+.1%}, {c.confidence:.0%} CI {format_interval(c.low, c.high)}) "
                f"on {self.device_words}{compared_with}; compared: "
                f"{compared_words(self.metric, bool(self.against), self.in_processes)} "
                f"(pooled {self.metric} {format_ms(self.baseline_ms)} ms -> "
                f"{format_ms(self.current_ms)} ms)"
            )
            if self.reason:
                text += f"; {self.reason}"
        if self.noise_note:
            text += f"; {self.noise_note}"
        return text

    @property
    def compared_figures(self) -> str:
        """``p5 1.31 ms -> 1.52 ms``: the compared figures under their own name (the p5 of
        instances when the metric is p50), baseline first ("" when none)."""
        if self.compared_baseline_ms is None or self.compared_current_ms is None:
            return ""
        return f"{instance_figure(self.metric)} {self._compared_ms}"

    @property
    def _compared_ms(self) -> str:
        return (
            f"{format_ms(self.compared_baseline_ms or 0.0)} ms -> "
            f"{format_ms(self.compared_current_ms or 0.0)} ms"
        )


def compared_words(metric: str, paired: bool = False, processes: bool = False) -> str:
    """What a verdict on ``metric`` compares, in words: ``the p5 of each side's fastest
    instances``; ``paired``: of each side of each interleaved pair; ``processes``: the median of
    each process's instances, pair of processes by pair, or (not ``paired``) every process of
    each side."""
    if processes and paired:
        return (
            f"the median {instance_figure(metric)} of each process's instances, pair of "
            "processes by pair (medians shown)"
        )
    if processes:
        return (
            f"the median {instance_figure(metric)} of each process's instances, every process "
            "of each side (medians shown)"
        )
    if paired:
        return f"the {instance_figure(metric)} of each side, pair by pair (medians shown)"
    return f"the {instance_figure(metric)} of each side's fastest instances"


def format_ms(value: float) -> str:
    """Three significant digits, trailing zeros kept: 1.00, 0.504, 12.3, 123.

    Rounded from the four significant digits a baseline file keeps, half up: a figure shows
    the same whether it comes from this run (0.23751) or from the file that recorded it
    (0.2375), instead of 0.238 in one place and 0.237 in the other."""
    if value <= 0 or not math.isfinite(value):
        return f"{value:g}"
    places = max(0, 2 - math.floor(math.log10(value)))
    stored = decimal.Decimal(f"{value:.4g}")
    return str(stored.quantize(decimal.Decimal(1).scaleb(-places), decimal.ROUND_HALF_UP))


def format_bytes(count: int) -> str:
    """``0 B``, ``245.19 KiB``, ``3.75 MiB``: as edgetpu_compiler prints its memory figures."""
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.2f} KiB"
    return f"{count / (1024 * 1024):.2f} MiB"


def format_interval(low: float, high: float) -> str:
    """A confidence interval of a relative change: ``+14.2..+17.9%``."""
    return f"{low * 100:+.1f}..{high * 100:+.1f}%"


#: The share of the threshold from which a measured change counts. A slowdown of exactly the
#: threshold measures on either side of it (on a shared 2-core host within about a percent, see
#: ``benchmarks/RESULTS.md``), so counting only estimates beyond the threshold would catch it
#: half the time; from four fifths on it is caught in at least 80% of runs, the usual power for a
#: smallest effect worth detecting. Unchanged code still has to look significant twice to fail.
COUNTS_FROM = 0.8


def decide(change: Shift, threshold: float) -> tuple[Status, str]:
    """The status a shift earns against ``threshold`` on its own, and why when that needs saying
    (:func:`~pytest_edgetpu.judge.compare.compare` adds what the baseline and the model say)."""
    counted = threshold * COUNTS_FROM
    if change.estimate >= counted:
        if change.estimate >= threshold:
            size = f"{change.estimate:+.1%} is beyond the {threshold:.1%} threshold"
        else:
            size = (
                f"{change.estimate:+.1%} counts against the {threshold:.1%} threshold "
                f"(slowdowns count from four fifths of it, {counted:.1%}, so that one of the "
                "threshold itself is caught)"
            )
        if not change.significant_slowdown:
            return Status.UNSTABLE, (
                f"{size} but its {change.confidence:.0%} CI includes no change: too noisy to decide"
            )
        return Status.REGRESSION, "" if change.estimate >= threshold else size
    if change.estimate <= -counted and change.significant_speedup:
        return Status.IMPROVED, "faster than the baseline: consider recording it again"
    return Status.PASS, ""
