"""Statistics on latency samples: pure functions on numbers, no I/O, no pytest.

Two layers:

* :func:`summarize` describes one set of per-invoke samples (percentiles, spread, throughput).
* :func:`shift` compares two sets of per-instance values (one value per fresh interpreter
  instance) with the Hodges-Lehmann estimator of the log-ratio and its distribution-free
  confidence interval (Moses' method, the interval that inverts the Mann-Whitney U test).

Instance values on a shared machine are a mixture of a quiet mode and slower ones: a neighbour on
the host slows every workload on the core for a fraction of a second up to seconds, so whole
instances land 15-30% slower, and how many do changes from run to run (``benchmarks/RESULTS.md``,
``docs/measuring.md``). A verdict therefore compares the :func:`fastest` share of each side,
the instances that ran while the machine was quiet; a slowdown of the code under test moves that
share, a busier neighbour does not. The same holds inside one instance, which is why the default
metric's instance value is the instance's quiet invokes (:data:`QUIET_PERCENTILE`).

numpy is imported by the functions that compute, not by the module: the xdist controller
reads :class:`Summary` and :class:`Shift` in every result and computes nothing, and on a host
with a core per worker its imports take CPU time from the workers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

from .limits import METRICS

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "FASTEST_SHARE",
    "METRICS",
    "QUIET_PERCENTILE",
    "Shift",
    "Summary",
    "compared_value",
    "compared_values",
    "fastest",
    "instance_figure",
    "instance_value",
    "paired_shift",
    "pooled_quantiles_ms",
    "shift",
    "summarize",
]


_NS_PER_MS = 1e6

#: The figures a baseline entry keeps; a results record keeps every figure.
BASELINE_FIGURES = ("n", "min", "p50", "p90", "p99", "max", "mean")
SUMMARY_FIGURES = (*BASELINE_FIGURES, "stdev", "mad", "iqr", "cv", "throughput_per_s")
_ATTRIBUTE = {"n": "n", "cv": "cv", "throughput_per_s": "throughput_per_s"}

#: The percentile of its invokes an instance contributes for the ``p50`` metric: the middle of its
#: fastest tenth. A neighbour also slows single invokes, by about a third, in stretches shorter
#: than one instance's 50 ms, and a whole measurement can fall inside a busy spell in which no
#: instance's median is quiet while a few of its invokes still are. A slowdown of the code under
#: test moves those invokes as much as the median. Tail metrics (p90, p99), mean and min keep
#: their own figure. ``benchmarks/experiments/quiet_invokes.py`` weighs the choice.
QUIET_PERCENTILE = 5

#: The share of instance values, fastest first, that a verdict compares.
FASTEST_SHARE = 1 / 3
_FEWEST_COMPARED = 3


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of per-invoke latencies, in milliseconds."""

    n: int
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    stdev_ms: float
    mad_ms: float
    iqr_ms: float
    cv: float
    throughput_per_s: float

    def value(self, metric: str) -> float:
        """The figure of one gating metric (``p50``, ``p90``, ``p99``, ``mean``, ``min``)."""
        return float(getattr(self, f"{metric}_ms"))

    def figures(self, names: Sequence[str] = SUMMARY_FIGURES) -> dict[str, float]:
        """Named figures (``n``, ``p50``, ``cv``, ...; latencies in ms) for a JSON file."""
        return {name: float(getattr(self, _ATTRIBUTE.get(name, f"{name}_ms"))) for name in names}

    @classmethod
    def from_figures(cls, figures: Mapping[str, float]) -> Summary:
        """The summary whose :meth:`figures` are ``figures`` (every one of them)."""
        f = figures
        return cls(
            n=int(f["n"]),
            min_ms=f["min"],
            p50_ms=f["p50"],
            p90_ms=f["p90"],
            p99_ms=f["p99"],
            max_ms=f["max"],
            mean_ms=f["mean"],
            stdev_ms=f["stdev"],
            mad_ms=f["mad"],
            iqr_ms=f["iqr"],
            cv=f["cv"],
            throughput_per_s=f["throughput_per_s"],
        )


def summarize(samples_ns: Sequence[int]) -> Summary:
    """Describe per-invoke samples given in nanoseconds; raises ValueError when empty."""
    import numpy as np

    ms = _milliseconds(samples_ns)
    p25, p50, p75, p90, p99 = np.percentile(ms, [25, 50, 75, 90, 99])
    mean = float(ms.mean())
    stdev = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    return Summary(
        n=int(ms.size),
        min_ms=float(ms.min()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(ms.max()),
        mean_ms=mean,
        stdev_ms=stdev,
        mad_ms=float(np.median(np.abs(ms - p50))),
        iqr_ms=float(p75 - p25),
        cv=stdev / mean if mean > 0 else 0.0,
        throughput_per_s=1000.0 / mean if mean > 0 else 0.0,
    )


def instance_value(samples_ns: Sequence[int], metric: str) -> float:
    """One instance's figure for ``metric``, in milliseconds: its :data:`QUIET_PERCENTILE` for
    ``p50``, the metric itself otherwise."""
    import numpy as np

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if metric == "p50":
        return float(np.percentile(_milliseconds(samples_ns), QUIET_PERCENTILE))
    return summarize(samples_ns).value(metric)


def pooled_quantiles_ms(samples_ns: Sequence[int], levels: Sequence[float]) -> tuple[float, ...]:
    """The quantiles of ``samples_ns`` at ``levels`` (0 to 1), in milliseconds."""
    import numpy as np

    return tuple(float(q) for q in np.quantile(_milliseconds(samples_ns), levels))


def instance_figure(metric: str) -> str:
    """What :func:`instance_value` takes of an instance for ``metric``, e.g. ``p5`` for ``p50``."""
    return f"p{QUIET_PERCENTILE}" if metric == "p50" else metric


def _milliseconds(samples_ns: Sequence[int]) -> npt.NDArray[np.float64]:
    import numpy as np

    if len(samples_ns) == 0:
        raise ValueError("no samples to summarize")
    return np.asarray(samples_ns, dtype=np.float64) / _NS_PER_MS


def fastest(values: Sequence[float], share: float = FASTEST_SHARE) -> list[float]:
    """The fastest ``share`` of ``values``, rounded up, and never fewer than three (or all of
    them when there are fewer)."""
    count = max(math.ceil(len(values) * share), _FEWEST_COMPARED)
    return sorted(values)[:count]


def compared_values(values: Sequence[float], processes: bool = False) -> list[float]:
    """What a verdict compares of one side: its :func:`fastest` instance values, or, where each
    value is a process's (``processes``), every one of them. A slow instance is a busy moment
    of the host, left out; a slow process is a draw from how the code runs in processes, and a
    side with more processes would catch more of the rare fast ones."""
    return sorted(values) if processes else fastest(values)


def compared_value(values: Sequence[float], processes: bool = False) -> float:
    """The figure of one side that a verdict compares, in the unit of ``values``: the median of
    its :func:`compared_values` (the shift is estimated between these sets)."""
    import numpy as np

    return float(np.median(compared_values(values, processes)))


@dataclass(frozen=True)
class Shift:
    """How much ``current`` moved against ``baseline``, as a relative change.

    ``estimate``, ``low`` and ``high`` are fractions (0.05 = 5% slower). ``low..high`` is the
    ``confidence`` interval; it excludes 0 when the change is significant at that level.
    """

    estimate: float
    low: float
    high: float
    confidence: float

    @property
    def significant_slowdown(self) -> bool:
        return self.low > 0.0

    @property
    def significant_speedup(self) -> bool:
        return self.high < 0.0

    @property
    def resolution(self) -> float:
        """Half the interval's width on the log scale, as a relative change: the smallest
        change this comparison can tell from noise, whatever the size of the shift."""
        return math.expm1((math.log1p(self.high) - math.log1p(self.low)) / 2.0)


def _positive_logs(values: Sequence[float]) -> npt.NDArray[np.float64]:
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    if not (np.isfinite(array).all() and (array > 0).all()):
        raise ValueError("shift needs positive, finite values")
    return np.log(array)


def _check_confidence(confidence: float) -> float:
    """The normal quantile of a two-sided ``confidence`` interval."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def paired_shift(
    baseline: Sequence[float], current: Sequence[float], confidence: float = 0.95
) -> Shift:
    """Hodges-Lehmann estimate of the change from pairs (``baseline[i]``, ``current[i]``): the
    median of the Walsh averages of the pairs' log ratios, with the Wilcoxon signed-rank
    interval.

    Needs at least two pairs. With too few pairs for the requested confidence, the interval
    spans every Walsh average (the widest honest answer)."""
    import numpy as np

    if len(baseline) != len(current):
        raise ValueError(f"{len(baseline)} baseline values for {len(current)} current ones")
    if len(baseline) < 2:
        raise ValueError("a paired shift needs at least two pairs")
    z = _check_confidence(confidence)
    ratios = _positive_logs(current) - _positive_logs(baseline)
    n = ratios.size
    upper = np.triu_indices(n)
    walsh = np.sort(((ratios[:, None] + ratios[None, :]) / 2.0)[upper])
    averages = walsh.size  # n (n + 1) / 2
    # The k-th smallest and k-th largest Walsh averages bound the interval, where k is the
    # lower critical value of the signed-rank statistic (normal approximation, continuity
    # correction).
    k = math.floor(averages / 2.0 - z * math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0) - 0.5)
    return _between(walsh, k, confidence)


def shift(baseline: Sequence[float], current: Sequence[float], confidence: float = 0.95) -> Shift:
    """Hodges-Lehmann shift of log(current) against log(baseline) with Moses' interval.

    Needs at least two positive values on each side. With too few pairs for the requested
    confidence, the interval spans every pairwise difference (the widest honest answer).
    """
    import numpy as np

    if len(baseline) < 2 or len(current) < 2:
        raise ValueError("a shift needs at least two values on each side")
    z = _check_confidence(confidence)
    base, cur = _positive_logs(baseline), _positive_logs(current)
    diffs = np.sort(np.subtract.outer(cur, base).ravel())
    n1, n2 = cur.size, base.size
    pairs = n1 * n2
    # Moses: the k-th smallest and k-th largest pairwise differences bound the interval, where
    # k is the lower critical value of U (normal approximation with continuity correction).
    k = math.floor(pairs / 2.0 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0) - 0.5)
    return _between(diffs, k, confidence)


def _between(ordered: npt.NDArray[np.float64], k: int, confidence: float) -> Shift:
    """The change whose log is the median of ``ordered`` (sorted log changes), its interval
    from the ``k``-th smallest to the ``k``-th largest of them (counted from 0; clamped, so
    too few of them give the widest interval they have)."""
    import numpy as np

    k = min(max(k, 0), (ordered.size - 1) // 2)
    return Shift(
        estimate=math.expm1(float(np.median(ordered))),
        low=math.expm1(float(ordered[k])),
        high=math.expm1(float(ordered[ordered.size - 1 - k])),
        confidence=confidence,
    )
