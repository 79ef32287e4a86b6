"""What a measurement is: its settings, each fresh instance's samples, and the rule that may
stop it early once its verdict is settled. Values only; :mod:`pytest_edgetpu.engine.timing`
takes them.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.stats import Summary

__all__ = [
    "OVER_MAX_TIME",
    "EarlyStop",
    "InstanceSamples",
    "MeasureSettings",
    "Measurement",
    "SettleRule",
    "Settled",
    "SuspectRule",
]


#: How the stop reason of a measurement that ran well past its ``max_time`` begins (the fewest
#: instances of a slow call); the summary says it under the table.
OVER_MAX_TIME = "over max_time"


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how hard to measure; defaults are the plugin's documented defaults."""

    metric: str = "p50"
    warmup: int = 3
    min_runs: int = 100
    max_time_s: float = 1.5
    min_instances: int = 8
    max_instances: int = 40
    precision: float = 0.01  # target half-width of the metric's 95% CI, relative
    #: How long each instance's steady phase aims to be: short models get more samples per
    #: instance, and long ones still fit several instances into ``max_time``.
    steady_s: float = 0.05


@dataclass(frozen=True)
class InstanceSamples:
    """What one fresh instance yielded, in nanoseconds."""

    load_ns: int
    first_ns: int
    warmup_ns: tuple[int, ...]
    samples_ns: tuple[int, ...]
    #: The share of the timed loop the thread waited for a CPU (None: unknown).
    wait_share: float | None = None


@dataclass(frozen=True)
class Measurement:
    """All instances of one measurement and why it stopped."""

    instances: tuple[InstanceSamples, ...]
    metric: str
    elapsed_s: float
    stop_reason: str
    #: In a measurement in processes, each process's figure (the median of its instances').
    process_values: tuple[float, ...] = ()
    #: Where the host's reference workload was timed in those processes too, its figure in
    #: each, in the same order (:mod:`pytest_edgetpu.engine.host_reference`).
    reference_values: tuple[float, ...] = ()
    #: Why a process could not time the reference workload, where one could not.
    no_reference: str | None = None

    @functools.cached_property
    def summary(self) -> Summary:
        """Statistics of every steady-state sample pooled."""
        from ..core.stats import summarize  # numpy: imported when something is measured

        return summarize([s for inst in self.instances for s in inst.samples_ns])

    @functools.cached_property
    def instance_values(self) -> tuple[float, ...]:
        """Each instance's figure for the gating metric (ms): what verdicts compare; in a
        measurement in processes, each process's."""
        from ..core.stats import instance_value

        if self.process_values:
            return self.process_values
        return tuple(instance_value(inst.samples_ns, self.metric) for inst in self.instances)

    @property
    def wait_share(self) -> float | None:
        """The median instance's run-queue wait share (None when any is unknown)."""
        shares = [inst.wait_share for inst in self.instances]
        known = [share for share in shares if share is not None]
        return float(statistics.median(known)) if known and len(known) == len(shares) else None

    @property
    def load_ms(self) -> float:
        """Load time of the first (cold) instance."""
        return self.instances[0].load_ns / 1e6

    @property
    def first_inference_ms(self) -> float:
        """First inference of the first (cold) instance."""
        return self.instances[0].first_ns / 1e6

    @property
    def warmup_ms(self) -> float:
        """Mean warm-up invoke, over every instance (0 without warm-up)."""
        warm = [w for inst in self.instances for w in inst.warmup_ns]
        return statistics.fmean(warm) / 1e6 if warm else 0.0


@dataclass(frozen=True)
class Settled:
    """Why a comparison is already decided, and whether it decided on a slowdown."""

    reason: str
    slower: bool


#: Whether a comparison is settled, from the baseline's and the current instance values (ms).
SettleRule = Callable[[Sequence[float], Sequence[float]], Settled | None]


#: Whether a comparison, from the same values, suspects a slowdown its interval cannot yet tell
#: from no change (the verdict would be ``UNSTABLE``).
SuspectRule = Callable[[Sequence[float], Sequence[float]], bool]


@dataclass(frozen=True)
class EarlyStop:
    """Verdict-aware stopping: measure until ``rule`` says the comparison is settled.

    ``baseline_ms`` are a stored baseline's instance values; a paired measurement compares with
    its base side instead. In a ``confirming`` measurement (the re-measurement of a suspected
    regression) a settled slowdown stops only after two thirds of ``max_time``."""

    rule: SettleRule
    baseline_ms: tuple[float, ...] = ()
    confirming: bool = False
    #: In a paired measurement, a suspected slowdown still undecided when the budget is spent
    #: measures on, up to :data:`SUSPECT_SPAN` times it.
    suspects: SuspectRule | None = None

    def reason(
        self, baseline_ms: Sequence[float], current_ms: Sequence[float], spanned: bool
    ) -> str | None:
        """Why to stop now (None: measure on); ``spanned``: two thirds of the budget passed."""
        settled = self.rule(baseline_ms, current_ms)
        if settled is None or (settled.slower and self.confirming and not spanned):
            return None
        return settled.reason
