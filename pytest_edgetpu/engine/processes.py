"""Measuring in fresh processes, where the process is the unit a verdict counts.

Two processes of the same small, pure-Python code differ by several percent, the same way in
all their instances (memory layout, allocator state, code alignment:
``benchmarks/experiments/process_offsets.py``), so an interval computed inside one process is
sure of a difference it never sampled. A callable is therefore measured in several processes of
one kind (helpers that run the test, :mod:`pytest_edgetpu.relative.helper`), each contributing
one value, the median of its instances':

* :func:`measure_process_pairs` (relative mode): the current code and the revision's, a process
  of each per pair, interleaved inside the pair;
* :func:`measure_processes` (stored baselines): the current code alone, in fresh processes, the
  way its baseline was recorded.

Processes are added, from the fewest to the most, only while the comparison is unsettled (or,
recording, while the processes' values are not yet tight): a workload whose processes agree
stops at the fewest.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from ..core.errors import HostReadingError
from ..core.stats import compared_values
from ..device.selection import usable_cores
from .host_reference import REFERENCE_SETTINGS
from .measurement import EarlyStop, Measurement, MeasureSettings
from .timing import (
    FEWEST_INSTANCES,
    PAIRED_SPAN,
    SHORTEST_SPAN,
    SUSPECT_SPAN,
    Clock,
    PairedMeasurement,
    StartSide,
    measure_live,
    measure_pairs,
    median_ci_half_width,
    pairs_stop_reason,
    slowdown_suspected,
)

__all__ = [
    "FEWEST_PROCESSES",
    "FEWEST_PROCESS_PAIRS",
    "MOST_PROCESSES",
    "MOST_PROCESS_PAIRS",
    "PROCESSES_SPAN",
    "PROCESS_STEADY_S",
    "measure_process_pairs",
    "measure_processes",
    "processes_at_once",
]

#: Process pairs a measurement in processes makes at least, and at most.
FEWEST_PROCESS_PAIRS = 4
MOST_PROCESS_PAIRS = 8
#: Processes a measurement of one side in fresh processes makes at least, and at most; the
#: fewest share ``max_time``, and more follow while unsettled, up to :data:`PROCESSES_SPAN`
#: times it.
FEWEST_PROCESSES = 4
MOST_PROCESSES = 8
PROCESSES_SPAN = 2.0
#: How long an instance's steady phase aims to be in a process (50 ms in one process): the
#: process's value, the median of its instances', need only be known well within the spread
#: between processes (three stored gates of ``benchmarks/relative_gate.py``'s 11 real models
#: at each, alternated: 9.9-11.7 s measuring at 50 ms, 6.4-8.3 s at 20 ms, every verdict PASS;
#: the false-alarm and detection rates are in RESULTS.md).
PROCESS_STEADY_S = 0.02


def _within(settings: MeasureSettings, fewest: int) -> MeasureSettings:
    """The settings of one process's instances: an even share of the budget of the fewest,
    and :data:`~pytest_edgetpu.engine.timing.FEWEST_INSTANCES` instances (pairs), no more: a
    process whose instances disagree gives a noisier value, and the interval across processes
    counts that, where more instances of it would not sample another process's offset."""
    return replace(
        settings,
        min_instances=FEWEST_INSTANCES,
        max_instances=FEWEST_INSTANCES,
        min_runs=settings.min_runs // fewest,
        max_time_s=settings.max_time_s / fewest,
        steady_s=min(settings.steady_s, PROCESS_STEADY_S),
    )


def measure_process_pairs(
    process_pair: Callable[[range], tuple[StartSide, StartSide]],
    settings: MeasureSettings,
    clock: Clock = time.perf_counter_ns,
    early: EarlyStop | None = None,
) -> PairedMeasurement:
    """Measure pairs of processes, each side of a pair in a process of its own, until a stop
    rule holds on the processes' values. ``process_pair(range(i, j))`` gives pair ``i``'s sides,
    and may start pairs up to ``j`` with it, all of them reaching the test before any is
    measured (:func:`_pairs_ahead` says how many).

    Within a pair, three interleaved pairs of instances as :func:`measure_pairs` makes them,
    fewer (down to one) where the next would not fit an even share of the budget; each
    process's value is the median of its instances'. The returned measurements' instance
    values are the processes', pair ``i``'s in place ``i``, and their instances all the
    instances measured. The stop rules are
    :func:`measure_pairs`', counted in process pairs, from :data:`FEWEST_PROCESS_PAIRS` to
    :data:`MOST_PROCESS_PAIRS`."""
    __tracebackhide__ = True
    within = _within(settings, FEWEST_PROCESS_PAIRS)
    counted = replace(
        settings, min_instances=FEWEST_PROCESS_PAIRS, max_instances=MOST_PROCESS_PAIRS
    )
    pairs: list[PairedMeasurement] = []
    head_values: list[float] = []
    base_values: list[float] = []
    elapsed_s = 0.0
    while True:
        # The process is the unit the verdict counts: a pair of processes measures three
        # pairs of instances, fewer (down to one) where the next would not fit its share of
        # the budget.
        index = len(pairs)
        ahead = _pairs_ahead(index, elapsed_s, head_values, base_values, settings, early)
        paired = measure_pairs(
            *process_pair(range(index, index + ahead)), within, clock, fewest=1, shortest_span=0.0
        )
        pairs.append(paired)
        head_values.append(statistics.median(paired.head.instance_values))
        base_values.append(statistics.median(paired.base.instance_values))
        # The budget is the measuring's: a process's start (pytest, the test's body) is not.
        elapsed_s = sum(pair.elapsed_s for pair in pairs)
        reason = pairs_stop_reason(head_values, base_values, counted, elapsed_s, early)
        if reason:
            reason = reason.replace(" pairs measured", " pairs of processes measured")
            return PairedMeasurement(
                _processes([p.head for p in pairs], head_values, elapsed_s, reason),
                _processes([p.base for p in pairs], base_values, elapsed_s, reason),
                elapsed_s,
                reason,
            )


def _pairs_ahead(
    index: int,
    elapsed_s: float,
    head_values: Sequence[float],
    base_values: Sequence[float],
    settings: MeasureSettings,
    early: EarlyStop | None,
) -> int:
    """How many pairs of processes to start with pair ``index``, ``elapsed_s`` of measuring
    into the pairs' budget: the fewest together at first; past them, as many as the budget has
    room for at the pace of the pairs so far, at least one and at most the most, and no more
    than :func:`processes_at_once` processes.

    Pairs started with no time left to measure them are starts wasted: in 8 relative gates of
    ``benchmarks/relative_gate.py``'s 11 models, 7 of the 8 tests that needed more than the
    fewest pairs ran out of budget at 5 to 7 of the 8 pairs started."""
    if index < FEWEST_PROCESS_PAIRS:
        return FEWEST_PROCESS_PAIRS - index
    budget_s = settings.max_time_s * PAIRED_SPAN
    if slowdown_suspected(early, head_values, base_values):
        budget_s *= SUSPECT_SPAN
    room = min(MOST_PROCESS_PAIRS - index, processes_at_once() // 2)
    if elapsed_s > 0:
        room = min(room, math.ceil((budget_s - elapsed_s) / (elapsed_s / index)))
    return max(1, room)


def processes_at_once() -> int:
    """How many processes to start together past the fewest: as many as this process has
    cores, up to the fewest. More would only wait for the cores, their starts no sooner done
    than one batch after another, and those a measurement then needs no more are starts wasted
    (a stored gate of six small callables, a test of which went on to a 5th process, started 4
    more helpers for it where 2 would have done on 2 cores)."""
    return max(1, min(FEWEST_PROCESSES, len(usable_cores())))


def measure_processes(
    start_process: Callable[[int], StartSide],
    settings: MeasureSettings,
    clock: Clock = time.perf_counter_ns,
    early: EarlyStop | None = None,
    reference: Callable[[int], StartSide] | None = None,
) -> Measurement:
    """Measure one side in fresh processes (``start_process(i)`` starts instances in process
    ``i``), one process after another, until a stop rule holds on the processes' values.

    Each process measures three fresh instances as :func:`~pytest_edgetpu.engine.timing.measure`
    does, fewer (down to one) where the next would not fit an even share of the fewest
    processes' budget (``max_time``); its value is the median of its instances'. From
    :data:`FEWEST_PROCESSES` on, the measurement stops once ``early`` says its comparison is
    settled (without one, once the median process's value is known within ``precision``), and
    at :data:`MOST_PROCESSES` or :data:`PROCESSES_SPAN` times ``max_time`` of measuring
    whatever they say. The returned measurement's instance values are the processes'.

    With ``reference`` (``reference(i)`` starts the host's reference workload in process ``i``),
    each process then times that workload too, right after its own instances
    (:data:`~pytest_edgetpu.engine.host_reference.REFERENCE_SETTINGS`, outside the budget): the
    measurement's ``reference_values``, none once a process could not time it
    (:class:`~pytest_edgetpu.core.errors.HostReadingError`)."""
    __tracebackhide__ = True
    within = _within(settings, FEWEST_PROCESSES)
    measured: list[Measurement] = []
    values: list[float] = []
    references: list[float] = []
    no_reference = None
    while True:
        index = len(measured)
        one = measure_live(start_process(index), within, clock, shortest_span=0.0, fewest=1)
        measured.append(one)
        values.append(statistics.median(one.instance_values))
        if reference is not None:
            try:
                timed = measure_live(reference(index), REFERENCE_SETTINGS, clock, shortest_span=0.0)
            except HostReadingError as error:
                # Measured without the host's reading, as where none was recorded: the
                # verdict stands as measured.
                reference, references, no_reference = None, [], str(error)
            else:
                references.append(statistics.median(timed.instance_values))
        elapsed_s = sum(process.elapsed_s for process in measured)
        reason = _processes_stop_reason(values, settings, elapsed_s, early)
        if reason:
            return replace(
                _processes(measured, values, elapsed_s, reason),
                reference_values=tuple(references),
                no_reference=no_reference,
            )


def _processes_stop_reason(
    values: Sequence[float], settings: MeasureSettings, elapsed_s: float, early: EarlyStop | None
) -> str | None:
    count = len(values)
    if count >= MOST_PROCESSES:
        return f"{count} processes measured"
    if count < FEWEST_PROCESSES:
        return None
    if elapsed_s >= settings.max_time_s * PROCESSES_SPAN:
        return (
            f"{PROCESSES_SPAN:g} x max_time {settings.max_time_s:g} s reached in {count} processes"
        )
    spanned = elapsed_s >= settings.max_time_s * SHORTEST_SPAN
    if early is not None:
        return early.reason(early.baseline_ms, values, spanned)
    if median_ci_half_width(compared_values(values, processes=True)) <= settings.precision:
        return f"{settings.metric} of the processes within ±{settings.precision:.0%}"
    return None


def _processes(
    measured: Sequence[Measurement], values: Sequence[float], elapsed_s: float, reason: str
) -> Measurement:
    instances = tuple(instance for one in measured for instance in one.instances)
    return Measurement(instances, measured[0].metric, elapsed_s, reason, tuple(values))
