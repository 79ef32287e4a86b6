"""Unit tests of pytest_edgetpu.engine.timing: phases, samples per instance and the stop rules."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from doubles import FakeClock

from pytest_edgetpu.engine.contention import SCHEDSTAT, read_cpu_times, share_of, waited_ns
from pytest_edgetpu.engine.cores import pinned
from pytest_edgetpu.engine.measurement import EarlyStop, MeasureSettings, Settled
from pytest_edgetpu.engine.timing import TimedInstance, measure


def counting_instances() -> tuple[Callable[[], Callable[[], object]], list[int]]:
    """An instance factory whose instances count their calls, one counter per instance."""
    calls: list[int] = []

    def start_instance() -> Callable[[], object]:
        calls.append(0)
        index = len(calls) - 1

        def call() -> None:
            calls[index] += 1

        return call

    return start_instance, calls


def test_each_instance_runs_first_warmup_and_steady_phases() -> None:
    start_instance, calls = counting_instances()
    settings = MeasureSettings(warmup=2, min_runs=1, max_time_s=10.0, max_instances=4)
    measurement = measure(start_instance, settings)
    assert len(measurement.instances) == 4 == len(calls)
    for instance, count in zip(measurement.instances, calls, strict=True):
        assert len(instance.warmup_ns) == 2
        assert count == 1 + 2 + len(instance.samples_ns)
        assert len(instance.samples_ns) >= 10  # the p50 floor per instance
    assert measurement.stop_reason == "4 instances measured"


def test_a_tight_measurement_still_spans_two_thirds_of_max_time() -> None:
    # Values that agree at once must not end the measurement early: a burst of a busy
    # neighbour on the host can last that long, and every instance would sit inside it.
    start_instance, _ = counting_instances()
    settings = MeasureSettings(
        warmup=0, min_runs=1, max_time_s=0.3, min_instances=1, max_instances=1_000_000
    )
    measurement = measure(start_instance, settings)
    assert measurement.elapsed_s >= 0.2
    assert measurement.stop_reason in (
        "p50 of the fastest instances within ±1%",
        "max_time 0.3 s reached",
    )


def test_max_time_ends_a_measurement_after_at_least_three_instances() -> None:
    start_instance, calls = counting_instances()
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=0.0, min_instances=8)
    measurement = measure(start_instance, settings)
    assert len(calls) == 3
    assert measurement.stop_reason == "max_time 0 s reached"


def test_an_exception_in_the_callable_propagates_unchanged() -> None:
    def start_instance() -> Callable[[], object]:
        def call() -> None:
            raise ZeroDivisionError("the user's bug")

        return call

    with pytest.raises(ZeroDivisionError, match="the user's bug"):
        measure(start_instance, MeasureSettings())


def test_the_stop_rules_on_a_fake_clock_without_sleeping() -> None:
    start_instance, _ = counting_instances()
    clock = FakeClock()
    settings = MeasureSettings(warmup=1, min_runs=1, max_time_s=0.3, max_instances=1_000_000)
    measurement = measure(start_instance, settings, clock)
    # Every sample is one step, so the interval is tight at once; the measurement still runs
    # on to two thirds of max_time and to min_instances, and stops right after.
    assert measurement.stop_reason == "p50 of the fastest instances within ±1%"
    assert 0.2 <= measurement.elapsed_s < 0.21  # an instance is about 4 ms of fake time
    assert len(measurement.instances) >= settings.min_instances
    assert {s for inst in measurement.instances for s in inst.samples_ns} == {clock.step_ns}
    assert measurement.elapsed_s == (clock.now - clock.step_ns) / 1e9  # from its first read


def test_max_time_on_a_fake_clock_ends_a_noisy_measurement() -> None:
    start_instance, _ = counting_instances()
    clock = FakeClock()
    wobble = iter(range(10**9))

    def noisy() -> int:
        # Every instance's samples are one to three steps: no interval ever gets to ±1%.
        return clock() + (next(wobble) % 3) * 2 * clock.step_ns

    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=0.5, max_instances=1_000_000)
    measurement = measure(start_instance, settings, noisy)
    assert measurement.stop_reason == "max_time 0.5 s reached"
    assert measurement.elapsed_s >= 0.5


def test_a_call_slower_than_max_time_allows_gets_fewer_timed_calls_and_says_why() -> None:
    """A call of 300 ms with max_time 1 s: three instances of 10 timed calls (the p50 floor)
    and 3 warm-ups each took 13 s; the timed calls shrink to what fits, down to 3 each, and the
    stop reason says why the measurement still ran past max_time."""
    clock = FakeClock(step_ns=1)
    calls: list[int] = []

    def start_instance() -> Callable[[], object]:
        def call() -> None:
            calls.append(1)
            clock.now += 300_000_000

        return call

    settings = MeasureSettings(warmup=3, max_time_s=1.0)
    measurement = measure(start_instance, settings, clock)
    assert [len(i.samples_ns) for i in measurement.instances] == [3, 3, 3]
    assert len(calls) == 3 * (1 + 3 + 3)
    assert measurement.stop_reason == (
        "over max_time 1 s: 6.3 s, as one call takes 300 ms and the fewest instances (3, each "
        "loaded, called once, warmed up 3 times and timed 3 times) are measured whatever "
        "max_time says; raise max_time, or lower warmup"
    )
    # A call that fits keeps the metric's floor.
    calls.clear()
    fitting = measure(start_instance, replace(settings, max_time_s=30.0), FakeClock())
    assert all(len(i.samples_ns) >= 10 for i in fitting.instances)


def test_the_instance_cap_on_a_fake_clock() -> None:
    start_instance, calls = counting_instances()
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=3600.0, max_instances=5)
    measurement = measure(start_instance, settings, FakeClock())
    assert measurement.stop_reason == "5 instances measured" and len(calls) == 5


def test_loops_too_short_to_read_run_time_still_read_their_wait() -> None:
    """The wait is read around each timed loop (never inside it). The kernel counts a thread's
    run time at scheduler ticks but its wait when it gets its CPU back: loops of microseconds
    mostly read no run time, yet a core shared with a neighbour shows in their summed wait
    over their timed calls (2 us per loop, two loops of five 10-us calls)."""
    start_instance, _ = counting_instances()
    reads = iter(range(10**6))

    def cpu_times() -> tuple[int, int]:
        return 0, (next(reads) + 1) // 2 * 2_000  # the run counter never moves

    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=3600.0)
    instance = TimedInstance(start_instance, settings, FakeClock(), cpu_times)
    instance.block(5)
    instance.block(5)
    assert instance.samples().wait_share == pytest.approx(4_000 / 100_000)


def test_without_schedstat_the_wait_is_unknown() -> None:
    start_instance, _ = counting_instances()
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=3600.0, max_instances=3)
    measurement = measure(start_instance, settings, FakeClock(), lambda: None)
    assert measurement.wait_share is None


def test_the_threads_own_schedstat_is_read_on_linux() -> None:
    if not Path(SCHEDSTAT).exists():
        pytest.skip(f"{SCHEDSTAT} is absent: the kernel keeps no scheduler statistics here")
    before = read_cpu_times()
    sum(i * i for i in range(200_000))  # run for a while
    waited = waited_ns(before, read_cpu_times())
    assert waited is not None and waited >= 0


@pytest.mark.parametrize(
    ("before", "after", "waited"),
    [
        ((0, 0), (750, 250), 250),
        ((100, 100), (100, 100), 0),  # no time counted: the loop was shorter than a tick
        ((100, 100), (50, 100), None),  # a counter went back: not this thread's readings
        (None, (1, 1), None),
    ],
)
def test_waited_ns(
    before: tuple[int, int] | None, after: tuple[int, int] | None, waited: int | None
) -> None:
    assert waited_ns(before, after) == waited


def test_a_share_of_no_time_is_unknown_and_never_above_one() -> None:
    assert share_of(0, 0) is None
    assert share_of(300, 100) == 1.0
    assert share_of(25, 100) == 0.25


# --- verdict-aware stopping ---------------------------------------------------------------


def fixed_rule(settled: Settled | None, seen: list[tuple[int, int]]) -> EarlyStop:
    """An early stop whose rule always answers ``settled`` and records how many baseline and
    current values it was shown."""

    def rule(baseline_ms: Sequence[float], current_ms: Sequence[float]) -> Settled | None:
        seen.append((len(baseline_ms), len(current_ms)))
        return settled

    return EarlyStop(rule, baseline_ms=(1.0, 1.0, 1.0))


EARLY_SETTINGS = MeasureSettings(warmup=0, min_runs=1, max_time_s=0.3, max_instances=10**6)


def test_a_settled_verdict_stops_at_min_instances_long_before_max_time() -> None:
    start_instance, _ = counting_instances()
    seen: list[tuple[int, int]] = []
    early = fixed_rule(Settled("settled: below", slower=False), seen)
    measurement = measure(start_instance, EARLY_SETTINGS, FakeClock(), early=early)
    assert measurement.stop_reason == "settled: below"
    assert len(measurement.instances) == EARLY_SETTINGS.min_instances
    assert measurement.elapsed_s < EARLY_SETTINGS.max_time_s * 2 / 3
    # Asked once, when min_instances were in, with the stored baseline's values.
    assert seen == [(3, EARLY_SETTINGS.min_instances)]


def test_an_unsettled_verdict_measures_on_to_max_time_however_tight() -> None:
    # Without a baseline this tight measurement would stop at two thirds of max_time (see
    # test_the_stop_rules_on_a_fake_clock_without_sleeping); undecided, it takes all of it.
    start_instance, _ = counting_instances()
    early = fixed_rule(None, [])
    measurement = measure(start_instance, EARLY_SETTINGS, FakeClock(), early=early)
    assert measurement.stop_reason == "max_time 0.3 s reached"
    assert measurement.elapsed_s >= EARLY_SETTINGS.max_time_s


def test_a_confirmation_settles_a_slowdown_only_after_two_thirds_of_max_time() -> None:
    start_instance, _ = counting_instances()
    slower = Settled("settled: beyond", slower=True)
    first = measure(start_instance, EARLY_SETTINGS, FakeClock(), early=fixed_rule(slower, []))
    assert len(first.instances) == EARLY_SETTINGS.min_instances
    confirming = replace(fixed_rule(slower, []), confirming=True)
    second = measure(start_instance, EARLY_SETTINGS, FakeClock(), early=confirming)
    assert second.stop_reason == "settled: beyond"
    assert 0.2 <= second.elapsed_s < 0.21
    # A confirmation that finds no slowdown may stop as early as any measurement.
    cleared = replace(fixed_rule(Settled("settled: below", slower=False), []), confirming=True)
    third = measure(start_instance, EARLY_SETTINGS, FakeClock(), early=cleared)
    assert len(third.instances) == EARLY_SETTINGS.min_instances


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="this OS cannot pin threads")
def test_pinned_holds_this_thread_on_the_cores_for_the_block_only() -> None:
    before = os.sched_getaffinity(0)
    core = min(before)
    with pinned((core,)):
        assert os.sched_getaffinity(0) == {core}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ZeroDivisionError), pinned((core,)):
        1 / 0  # noqa: B018
    assert os.sched_getaffinity(0) == before
    # Nothing to pin to, or cores this process may not use: it measures where it was.
    for cores in ((), (max(before) + 4096,)):
        with pinned(cores):
            assert os.sched_getaffinity(0) == before
