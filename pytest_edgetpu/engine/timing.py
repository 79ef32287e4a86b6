"""The timing loop: fresh instances, separate phases, per-invoke samples.

One interpreter instance is one draw from a mixture of latency modes (``docs/measuring.md``): the
steady-state median of a single instance is a lottery ticket. A measurement therefore creates
several fresh instances in turn and times each of them through four phases:

1. load (interpreter creation, delegate, tensor allocation; for a callable: reloading the
   models it uses),
2. first inference (on an Edge TPU it includes moving parameters into on-chip memory),
3. warm-up invokes,
4. steady state: per-invoke ``perf_counter_ns`` samples with the garbage collector off and
   nothing but the invoke (or the user's callable) inside the timed region.

It stops adaptively, after at least ``min_instances`` instances and ``min_runs`` samples:

* against a baseline (an :class:`EarlyStop`), as soon as the verdict is settled, whichever way
  it goes, and otherwise only when ``max_time`` is spent: time goes to the comparisons that need
  it. A neighbour can only slow a measurement down, so a settled "no slowdown" cannot come from
  a busy spell; a settled slowdown can, and is re-measured (a confirmation, which may settle a
  slowdown only once it has spanned two thirds of ``max_time``, longer than such a spell).
* without one (recording a baseline), once the fastest instances' metric is known tightly
  enough, or when ``max_time`` is spent. A neighbour on a shared host can slow the core for up
  to a second or so; a measurement that stopped as soon as its values agreed could sit entirely
  inside such a burst, so it never stops before it has spanned two thirds of ``max_time``.
"""

from __future__ import annotations

import functools
import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .contention import CpuTimesReader, read_cpu_times, share_of, waited_ns
from .measurement import OVER_MAX_TIME, EarlyStop, InstanceSamples, Measurement, MeasureSettings

__all__ = [
    "PAIRED_SPAN",
    "PAIR_BLOCKS",
    "SUSPECT_SPAN",
    "Clock",
    "InstanceRunner",
    "LiveInstance",
    "PairedMeasurement",
    "StartInstance",
    "StartSide",
    "TimedInstance",
    "instance_runner",
    "measure",
    "measure_live",
    "measure_pairs",
    "time_once",
]

#: Creates one fresh instance of the thing under test and returns the callable to time.
StartInstance = Callable[[], Callable[[], object]]

# Samples each instance contributes at least, per metric: a p99 needs a hundred to mean much.
_MIN_RUNS_PER_INSTANCE = {"p50": 10, "mean": 10, "min": 10, "p90": 20, "p99": 100}
_MAX_RUNS_PER_INSTANCE = 200
FEWEST_INSTANCES = 3
#: Timed calls an instance takes at least, however slow a call is.
_FEWEST_RUNS = 3
#: A measurement this many times ``max_time`` (and a second more) long says why it overran.
_OVERRUN = 2.0
SHORTEST_SPAN = 2 / 3  # of max_time: no early stop before it
#: The turns each side of a pair takes, a block of its calls each.
PAIR_BLOCKS = 6
#: Interleaved pairs get this many times ``max_time``, both sides together.
PAIRED_SPAN = 2.0
#: ... and up to this many times their budget while a suspected slowdown is undecided.
SUSPECT_SPAN = 2.0


#: A monotonic clock in nanoseconds; tests give :func:`measure` a fake one.
Clock = Callable[[], int]

#: Measures one fresh instance: ``runs`` timed calls (None: as many as its warm-up suggests).
InstanceRunner = Callable[[int | None], InstanceSamples]


class LiveInstance(Protocol):
    """One side's instance in an interleaved pair, alive while the other side's is: made when
    started (loaded, called once, warmed up), then timed a block of calls at a time."""

    @property
    def first_ns(self) -> int: ...

    @property
    def warmup_ns(self) -> tuple[int, ...]: ...

    def block(self, runs: int) -> None: ...

    def samples(self) -> InstanceSamples: ...


#: Starts one fresh instance of one side of an interleaved pair.
StartSide = Callable[[], LiveInstance]


def time_once(fn: Callable[[], object], clock: Clock = time.perf_counter_ns) -> int:
    """Nanoseconds one call of ``fn`` takes."""
    __tracebackhide__ = True  # an exception in ``fn`` shows the user's frames only
    start = clock()
    fn()
    return clock() - start


def _timed_loop(
    fn: Callable[[], object], runs: int, clock: Clock, cpu_times: CpuTimesReader
) -> tuple[tuple[int, ...], int | None]:
    """``runs`` timed calls of ``fn``, and how long the thread waited for a CPU meanwhile (read
    just before the first call and after the last; None when unknown).

    The collector is off, not run first: a full collection of a pytest process's heap takes
    about 40 ms, as long as an instance's whole steady phase, and leaves the caches cold for the
    first timed calls."""
    __tracebackhide__ = True
    samples = [0] * runs
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        before = cpu_times()
        for i in range(runs):
            start = clock()
            fn()
            samples[i] = clock() - start
        after = cpu_times()
    finally:
        if gc_was_enabled:
            gc.enable()
    return tuple(samples), waited_ns(before, after)


def _runs_per_instance(settings: MeasureSettings, estimate_ns: int) -> int:
    """Enough timed calls for a steady phase of about ``settings.steady_s``, at least the
    metric's floor; a call too slow for the fewest instances (with their first call and warm-up)
    to fit ``max_time`` at that floor gets the calls that fit, down to :data:`_FEWEST_RUNS`."""
    estimate_ns = max(estimate_ns, 1)
    wanted = min(math.ceil(settings.steady_s * 1e9 / estimate_ns), _MAX_RUNS_PER_INSTANCE)
    fitting = settings.max_time_s * 1e9 // (FEWEST_INSTANCES * estimate_ns) - 1 - settings.warmup
    floor = _MIN_RUNS_PER_INSTANCE[settings.metric]
    return max(_FEWEST_RUNS, min(max(floor, wanted), int(fitting)))


def _runs_chosen_by(instance: LiveInstance, settings: MeasureSettings) -> int:
    """The timed calls per instance that ``instance``'s fastest warm-up call suggests."""
    return _runs_per_instance(settings, min(instance.warmup_ns, default=instance.first_ns))


def median_ci_half_width(values: Sequence[float]) -> float:
    """Relative half-width of the distribution-free 95% CI of the median of ``values``."""
    ordered = sorted(values)
    n = len(ordered)
    spread = 1.96 * math.sqrt(n) / 2.0
    low = max(math.floor(n / 2.0 - spread), 0)
    high = min(math.ceil(n / 2.0 + spread), n - 1)
    middle = float(statistics.median(ordered))
    return (ordered[high] - ordered[low]) / 2.0 / middle if middle > 0 else math.inf


class TimedInstance:
    """One fresh instance from ``start_instance``: loaded, called once and warmed up when made,
    then timed a block of calls at a time (:meth:`block`), so that the two sides of an
    interleaved pair can take turns while both stay alive."""

    def __init__(
        self,
        start_instance: StartInstance,
        settings: MeasureSettings,
        clock: Clock = time.perf_counter_ns,
        cpu_times: CpuTimesReader = read_cpu_times,
    ) -> None:
        __tracebackhide__ = True
        self._clock, self._cpu_times = clock, cpu_times
        load_start = clock()
        self._fn = start_instance()
        self.load_ns = clock() - load_start
        self.first_ns = time_once(self._fn, clock)
        self.warmup_ns = tuple(time_once(self._fn, clock) for _ in range(settings.warmup))
        self._samples: list[int] = []
        # The wait summed over the timed loops (None once unknown), against their timed calls.
        self._waited_ns: int | None = 0

    def block(self, runs: int) -> None:
        """Time ``runs`` more calls."""
        __tracebackhide__ = True
        samples, waited = _timed_loop(self._fn, runs, self._clock, self._cpu_times)
        self._samples.extend(samples)
        self._waited_ns = (
            None if waited is None or self._waited_ns is None else (self._waited_ns + waited)
        )

    def samples(self) -> InstanceSamples:
        """What the instance yielded so far; its wait share is its timed loops' wait over the
        time of their calls (None when any loop's wait is unknown)."""
        timed_ns = sum(self._samples)
        wait = None if self._waited_ns is None else share_of(self._waited_ns, timed_ns)
        return InstanceSamples(
            self.load_ns, self.first_ns, self.warmup_ns, tuple(self._samples), wait
        )


def instance_runner(
    start_instance: StartInstance,
    settings: MeasureSettings,
    clock: Clock = time.perf_counter_ns,
    cpu_times: CpuTimesReader = read_cpu_times,
) -> InstanceRunner:
    """Times one fresh instance from ``start_instance`` through its four phases per call."""

    def run(runs: int | None) -> InstanceSamples:
        __tracebackhide__ = True
        instance = TimedInstance(start_instance, settings, clock, cpu_times)
        instance.block(runs if runs is not None else _runs_chosen_by(instance, settings))
        return instance.samples()

    return run


def measure(
    start_instance: StartInstance,
    settings: MeasureSettings,
    clock: Clock = time.perf_counter_ns,
    cpu_times: CpuTimesReader = read_cpu_times,
    early: EarlyStop | None = None,
) -> Measurement:
    """Measure fresh instances from ``start_instance`` until a stop rule holds; ``clock``
    times the samples and the stop rules alike, ``cpu_times`` (read outside the timed loops)
    says how much of each loop the thread waited for a CPU, ``early`` stops it once its
    comparison with a baseline is settled."""
    __tracebackhide__ = True
    start = functools.partial(TimedInstance, start_instance, settings, clock, cpu_times)
    return measure_live(start, settings, clock, early)


def measure_live(
    start: StartSide,
    settings: MeasureSettings,
    clock: Clock = time.perf_counter_ns,
    early: EarlyStop | None = None,
    shortest_span: float = SHORTEST_SPAN,
    fewest: int = FEWEST_INSTANCES,
) -> Measurement:
    """Measure fresh instances that ``start`` makes (here, or in a helper process), one at a
    time, each timed as many calls as the first one's warm-up chose, until a stop rule holds
    (:func:`stop_reason`, no early stop before ``shortest_span`` of ``max_time``; once
    ``max_time`` is spent, after ``fewest`` instances: see :func:`_budget_spent`)."""
    __tracebackhide__ = True
    from ..core.stats import instance_value

    began = clock()
    instances: list[InstanceSamples] = []
    # Each instance's figure, taken once: the stop rules read all of them after every
    # instance, and recomputing them took a tenth of a test's time on a 40-instance run.
    values: list[float] = []
    runs: int | None = None
    while True:
        instance = start()
        if runs is None:
            runs = _runs_chosen_by(instance, settings)
        instance.block(runs)
        instances.append(instance.samples())
        values.append(instance_value(instances[-1].samples_ns, settings.metric))
        elapsed_s = (clock() - began) / 1e9
        reason = _stop_reason(instances, values, settings, elapsed_s, early, shortest_span, fewest)
        if reason:
            return Measurement(tuple(instances), settings.metric, elapsed_s, reason)


@dataclass(frozen=True)
class PairedMeasurement:
    """Two sides measured in interleaved pairs of instances, both instances of a pair alive
    together and timed in turns (:func:`measure_pairs`): neither side has the better slot on
    average, and a change of the host's speed slows both sides of a pair alike. Instance ``i``
    of each side is pair ``i``'s."""

    head: Measurement
    base: Measurement
    elapsed_s: float
    stop_reason: str

    @property
    def pairs(self) -> int:
        return len(self.head.instance_values)

    @property
    def processes(self) -> bool:
        """Whether pair ``i`` is a pair of processes (:func:`measure_process_pairs`)."""
        return bool(self.head.process_values)


def measure_pairs(
    head: StartSide,
    base: StartSide,
    settings: MeasureSettings,
    clock: Clock = time.perf_counter_ns,
    early: EarlyStop | None = None,
    fewest: int = FEWEST_INSTANCES,
    shortest_span: float = SHORTEST_SPAN,
) -> PairedMeasurement:
    """Measure pairs of head and base instances until a stop rule of the pairs holds (with
    ``early``, once the head's comparison with the base is settled; once the budget is spent,
    after ``fewest`` pairs; never early before ``shortest_span`` of the budget).

    Both instances of a pair are made first, then take turns :data:`PAIR_BLOCKS` times, a block
    of calls each, the head first in pair 0 (AB BA AB ...) and the base in pair 1 (BA AB BA
    ...): the host's speed moves both alike, whatever it does during the pair, so the pair's
    ratio is the change. Both sides take as many timed calls per instance as the head's first
    instance chose, and together they get :data:`PAIRED_SPAN` times ``max_time``: each side as
    much as a measurement against a stored baseline takes; a slowdown that ``early`` still
    suspects but cannot yet decide then measures on, up to :data:`SUSPECT_SPAN` times that
    budget."""
    __tracebackhide__ = True
    from ..core.stats import instance_value

    began = clock()
    heads: list[InstanceSamples] = []
    bases: list[InstanceSamples] = []
    head_values: list[float] = []  # taken once per instance, as in measure()
    base_values: list[float] = []
    block: int | None = None
    while True:
        head_first = len(heads) % 2 == 0
        if head_first:
            head_instance = head()
            base_instance = base()
        else:
            base_instance = base()
            head_instance = head()
        if block is None:
            block = math.ceil(_runs_chosen_by(head_instance, settings) / PAIR_BLOCKS)
        for turn in range(PAIR_BLOCKS):
            one, other = (head_instance, base_instance)
            if head_first != (turn % 2 == 0):
                one, other = other, one
            one.block(block)
            other.block(block)
        for side, values, instance in (
            (heads, head_values, head_instance),
            (bases, base_values, base_instance),
        ):
            side.append(instance.samples())
            values.append(instance_value(side[-1].samples_ns, settings.metric))
        elapsed_s = (clock() - began) / 1e9
        reason = pairs_stop_reason(
            head_values, base_values, settings, elapsed_s, early, fewest, shortest_span
        )
        if reason:
            return PairedMeasurement(
                Measurement(tuple(heads), settings.metric, elapsed_s, reason),
                Measurement(tuple(bases), settings.metric, elapsed_s, reason),
                elapsed_s,
                reason,
            )


def pairs_stop_reason(
    head_values: Sequence[float],
    base_values: Sequence[float],
    settings: MeasureSettings,
    elapsed_s: float,
    early: EarlyStop | None,
    fewest: int = FEWEST_INSTANCES,
    shortest_span: float = SHORTEST_SPAN,
) -> str | None:
    from ..core.stats import fastest

    count, budget_s = len(head_values), settings.max_time_s * PAIRED_SPAN
    if count >= settings.max_instances:
        return f"{count} pairs measured"
    if count >= fewest and _budget_spent(elapsed_s, count, budget_s):
        if elapsed_s >= max(budget_s * _OVERRUN, budget_s + 1) and count <= FEWEST_INSTANCES:
            return (
                f"{OVER_MAX_TIME} {settings.max_time_s:g} s: {elapsed_s:.1f} s measuring "
                f"({PAIRED_SPAN:g} x max_time is the pairs' budget), as one call takes about "
                f"{min(head_values):.4g} ms and the fewest pairs ({count}, each instance "
                f"loaded, called once and warmed up {settings.warmup} times) are measured "
                "whatever max_time says; raise max_time, or lower warmup"
            )
        if not slowdown_suspected(early, head_values, base_values):
            return f"{PAIRED_SPAN:g} x max_time {settings.max_time_s:g} s reached"
        if elapsed_s >= budget_s * SUSPECT_SPAN:
            return (
                f"{PAIRED_SPAN * SUSPECT_SPAN:g} x max_time {settings.max_time_s:g} s reached, "
                "a suspected slowdown still undecided"
            )
    if count < settings.min_instances:
        return None
    spanned = elapsed_s >= budget_s * shortest_span
    if early is not None:
        return early.reason(base_values, head_values, spanned)
    if spanned and all(
        median_ci_half_width(fastest(values)) <= settings.precision
        for values in (head_values, base_values)
    ):
        return (
            f"{settings.metric} of each side's fastest instances within ±{settings.precision:.0%}"
        )
    return None


def _budget_spent(elapsed_s: float, count: int, budget_s: float) -> bool:
    """Whether ``count`` instances (pairs), ``elapsed_s`` into ``budget_s``, have spent it:
    past it, or, short of :data:`FEWEST_INSTANCES` (a process's share of a measurement in
    processes, where the process is the unit counted and its instances only refine its
    value), once the next instance at the pace so far would end past it. A call whose
    instance costs most of the share (a 28 ms model: its load, first call, warm-up and
    fewest timed calls) then measures one or two, not three."""
    if elapsed_s >= budget_s:
        return True
    return count < FEWEST_INSTANCES and elapsed_s * (count + 1) / count > budget_s


def slowdown_suspected(
    early: EarlyStop | None, head_values: Sequence[float], base_values: Sequence[float]
) -> bool:
    """Whether ``early`` suspects a slowdown of the pairs so far that it cannot yet decide: the
    pairs' budget is then :data:`SUSPECT_SPAN` times longer."""
    return (
        early is not None
        and early.suspects is not None
        and early.suspects(base_values, head_values)
    )


def _overrun(
    instances: Sequence[InstanceSamples], settings: MeasureSettings, elapsed_s: float
) -> str:
    """Why the fewest instances took ``elapsed_s``, well past ``max_time``."""
    call_ms = min(min(i.samples_ns) for i in instances) / 1e6
    return (
        f"{OVER_MAX_TIME} {settings.max_time_s:g} s: {elapsed_s:.1f} s, as one call takes "
        f"{call_ms:.4g} ms and the fewest instances ({len(instances)}, each loaded, called once, "
        f"warmed up {settings.warmup} times and timed {len(instances[0].samples_ns)} times) "
        "are measured whatever max_time says; raise max_time, or lower warmup"
    )


def _stop_reason(
    instances: Sequence[InstanceSamples],
    values: Sequence[float],
    settings: MeasureSettings,
    elapsed_s: float,
    early: EarlyStop | None,
    shortest_span: float = SHORTEST_SPAN,
    fewest: int = FEWEST_INSTANCES,
) -> str | None:
    """Why a measurement of ``instances`` stops now (None: measure on); no early stop before
    ``shortest_span`` of ``max_time``."""
    count = len(instances)
    if count >= settings.max_instances:
        return f"{count} instances measured"
    if count >= fewest and _budget_spent(elapsed_s, count, settings.max_time_s):
        overran = elapsed_s >= max(settings.max_time_s * _OVERRUN, settings.max_time_s + 1)
        if overran and count == FEWEST_INSTANCES:
            return _overrun(instances, settings, elapsed_s)
        return f"max_time {settings.max_time_s:g} s reached"
    total = sum(len(inst.samples_ns) for inst in instances)
    if count < settings.min_instances or total < settings.min_runs:
        return None
    from ..core.stats import fastest

    spanned = elapsed_s >= settings.max_time_s * shortest_span
    if early is not None:
        return early.reason(early.baseline_ms, values, spanned)
    if spanned and median_ci_half_width(fastest(values)) <= settings.precision:
        return f"{settings.metric} of the fastest instances within ±{settings.precision:.0%}"
    return None
