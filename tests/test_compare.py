"""Unit tests of pytest_edgetpu.judge.compare: every verdict, its message, strictness,
confirmation."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_edgetpu.core.stats import Shift, fastest, shift
from pytest_edgetpu.engine.host_reference import HostReading, kernel_name
from pytest_edgetpu.judge.baselines import BaselineEntry, Lookup
from pytest_edgetpu.judge.compare import (
    COUNTS_FROM,
    compare,
    confirm,
    decide,
    recordable,
    settle_rule,
    suspect_rule,
)
from pytest_edgetpu.judge.host_speed import host_explains, host_hides
from pytest_edgetpu.judge.verdict import Current, Policy, Status, Verdict

PATH = Path("baselines/cpu-x.json")
DEVICE = "cpu (x86_64, LiteRT 2.3.0, 1 thread)"
OLD_SHA = "cb27" + "a1" * 30
NEW_SHA = "ffee" + "b2" * 30
RECORDED = "2026-11-20T09:15:00Z"
#: Ten instance values within 1%, whose compared figure (the median of the fastest four) is 1.
TIGHT = tuple(0.9985 + 0.001 * i for i in range(10))
POLICY = Policy(threshold=0.05)


def make_entry(
    values: tuple[float, ...] = TIGHT,
    *,
    value_ms: float = 1.0,
    metric: str = "p50",
    num_threads: int = 1,
    workers: int = 1,
    sha: str | None = OLD_SHA,
) -> BaselineEntry:
    return BaselineEntry(
        metric=metric,
        instance_values_ms=values,
        summary_ms={"n": 1000, metric: value_ms},
        load_ms=12.0,
        first_inference_ms=3.0,
        num_threads=num_threads,
        workers=workers,
        recorded=RECORDED,
        model_sha256=sha,
    )


def make_current(
    values: tuple[float, ...] = TIGHT,
    *,
    value_ms: float = 1.0,
    metric: str = "p50",
    num_threads: int = 1,
    workers: int = 1,
    sha: str | None = OLD_SHA,
) -> Current:
    return Current(
        metric=metric,
        value_ms=value_ms,
        instance_values_ms=values,
        num_threads=num_threads,
        workers=workers,
        device_words=DEVICE,
        model_sha256=sha,
    )


def scaled(values: tuple[float, ...], factor: float) -> tuple[float, ...]:
    return tuple(v * factor for v in values)


def found(entry: BaselineEntry, others: tuple[str, ...] = ()) -> Lookup:
    return Lookup(PATH, entry, others)


def regression_verdict() -> Verdict:
    return compare(found(make_entry()), make_current(scaled(TIGHT, 1.2), value_ms=1.2), POLICY)


# ---------------------------------------------------------------------------------------------
# NO_BASELINE and INCOMPARABLE


def test_no_baseline() -> None:
    verdict = compare(Lookup(PATH, None, ()), make_current(value_ms=1.23), POLICY)
    assert verdict.status is Status.NO_BASELINE
    assert verdict.baseline_path == PATH
    assert verdict.change is None
    assert verdict.baseline_ms is None
    assert verdict.message == (
        f"NO_BASELINE p50 1.23 ms on {DEVICE}: no baseline in baselines/cpu-x.json; "
        "record one with --edgetpu-update-baselines"
    )


def test_incomparable_when_only_other_profiles_hold_the_test() -> None:
    lookup = Lookup(PATH, None, ("usb-edgetpu-std", "pci-edgetpu-max"))
    verdict = compare(lookup, make_current(value_ms=1.23), POLICY)
    assert verdict.status is Status.INCOMPARABLE
    assert verdict.change is None
    assert verdict.message == (
        f"INCOMPARABLE p50 1.23 ms on {DEVICE}: baselines exist only for other device "
        "profiles: usb-edgetpu-std, pci-edgetpu-max; never compared with cpu-x; record one "
        "for this device with --edgetpu-update-baselines"
    )


@pytest.mark.parametrize(
    ("entry_kwargs", "current_kwargs", "words"),
    [
        ({"metric": "p90"}, {}, "the baseline gates p90, the test now gates p50"),
        ({"num_threads": 4}, {}, "the baseline ran 4 thread(s), this run 1"),
        (
            {"workers": 4},
            {},
            "the baseline was recorded with -n 4, this run has 1 worker (no -n)",
        ),
        ({}, {"workers": 2}, "the baseline was recorded with 1 worker (no -n), this run has -n 2"),
    ],
    ids=["metric", "num_threads", "workers-baseline", "workers-current"],
)
def test_incomparable_when_conditions_differ(
    entry_kwargs: dict[str, object], current_kwargs: dict[str, object], words: str
) -> None:
    entry = make_entry(**entry_kwargs)  # type: ignore[arg-type]
    current = make_current(scaled(TIGHT, 1.5), value_ms=1.23, **current_kwargs)  # type: ignore[arg-type]
    verdict = compare(found(entry, ("other-profile",)), current, POLICY)
    assert verdict.status is Status.INCOMPARABLE
    assert verdict.change is None  # never compared, even though it is 50% slower
    assert verdict.baseline_recorded == RECORDED
    assert verdict.message == (
        f"INCOMPARABLE p50 1.23 ms on {DEVICE}: {words} in baselines/cpu-x.json; "
        "record again with --edgetpu-update-baselines"
        + (" -n 2" if current_kwargs.get("workers") == 2 else "")
    )


# ---------------------------------------------------------------------------------------------
# PASS, REGRESSION, IMPROVED, UNSTABLE


def test_pass_on_identical_values() -> None:
    verdict = compare(found(make_entry()), make_current(), POLICY)
    assert verdict.status is Status.PASS
    assert verdict.change is not None
    assert verdict.change.estimate == 0.0
    assert verdict.reason == ""
    assert verdict.noise_note == ""
    assert not verdict.model_changed
    assert not verdict.confirmed


def test_pass_on_a_significant_slowdown_short_of_four_fifths_of_the_threshold() -> None:
    verdict = compare(found(make_entry()), make_current(scaled(TIGHT, 1.035)), POLICY)
    assert verdict.change is not None
    assert verdict.change.significant_slowdown
    assert verdict.status is Status.PASS


def test_a_significant_slowdown_from_four_fifths_of_the_threshold_counts() -> None:
    # A slowdown of exactly the threshold measures on either side of it: from 4% on it counts.
    verdict = compare(found(make_entry()), make_current(scaled(TIGHT, 1.045)), POLICY)
    assert verdict.change is not None
    assert verdict.change.estimate < POLICY.threshold
    assert verdict.status is Status.REGRESSION
    assert verdict.reason == (
        "+4.5% counts against the 5.0% threshold (slowdowns count from four fifths of it, "
        "4.0%, so that one of the threshold itself is caught)"
    )


def test_an_insignificant_slowdown_that_counts_is_unstable() -> None:
    entry = make_entry((1.0, 1.1, 1.2))
    verdict = compare(found(entry), make_current((1.04, 1.145, 1.25)), POLICY)
    assert verdict.change is not None
    assert COUNTS_FROM * POLICY.threshold <= verdict.change.estimate < POLICY.threshold
    assert verdict.status is Status.UNSTABLE
    assert verdict.reason.startswith("+4.1% counts against the 5.0% threshold")
    assert verdict.reason.endswith("but its 95% CI includes no change: too noisy to decide")


def test_regression() -> None:
    verdict = regression_verdict()
    assert verdict.status is Status.REGRESSION
    assert verdict.change is not None
    assert verdict.change.estimate == pytest.approx(0.2, abs=1e-9)
    assert verdict.change.significant_slowdown
    assert verdict.baseline_ms == 1.0
    assert verdict.current_ms == 1.2
    assert verdict.baseline_recorded == RECORDED
    assert verdict.baseline_sha256 == OLD_SHA
    assert not verdict.model_changed
    assert verdict.reason == ""
    assert verdict.noise_note == ""
    assert verdict.fails(strict=False)


def test_regression_message_parts() -> None:
    message = regression_verdict().message
    assert re.search(r" \(\+20\.0%, 95% CI \+\d+\.\d\.\.\+\d+\.\d%\) on ", message), message
    assert message.endswith(
        f"on {DEVICE}; baseline baselines/cpu-x.json recorded 2026-11-20 from model sha256 cb27…"
        "; compared: the p5 of each side's fastest instances (pooled p50 1.00 ms -> 1.20 ms)"
    )


def test_the_message_shows_the_compared_figures_and_labels_the_pooled_ones() -> None:
    # Pooled p50s of 3.17 and 7.51 ms (a busy spell in this run's pooled invokes) around
    # instances whose quiet figures moved 12%: the figures shown are the compared ones.
    entry = make_entry(scaled(TIGHT, 3.0), value_ms=3.17)
    current = make_current(scaled(TIGHT, 3.36), value_ms=7.51)
    verdict = compare(found(entry), current, POLICY)
    assert (verdict.compared_baseline_ms, verdict.compared_current_ms) == pytest.approx((3.0, 3.36))
    assert verdict.message.startswith(
        "REGRESSION p50 (compared p5) 3.00 ms -> 3.36 ms (+12.0%, 95% CI "
    )
    assert (
        "; compared: the p5 of each side's fastest instances (pooled p50 3.17 ms -> 7.51 ms)"
        in (verdict.message)
    )


def test_regression_message_of_the_product_spec_example() -> None:
    entry = make_entry(scaled(TIGHT, 1.31), value_ms=1.31)
    current = make_current(scaled(TIGHT, 1.52), value_ms=1.52)
    message = compare(found(entry), current, POLICY).message
    assert message.startswith("REGRESSION p50 (compared p5) 1.31 ms -> 1.52 ms (+16.0%, 95% CI "), (
        message
    )


def test_regression_message_keeps_three_significant_digits() -> None:
    message = regression_verdict().message
    assert message.startswith("REGRESSION p50 (compared p5) 1.00 ms -> 1.20 ms (+20.0%, 95% CI "), (
        message
    )
    assert (
        f"on {DEVICE}; baseline baselines/cpu-x.json recorded 2026-11-20 from model sha256 cb27…"
        in message
    )


def test_message_without_recorded_date_or_sha() -> None:
    entry = replace(make_entry(sha=None), recorded="")
    current = make_current(scaled(TIGHT, 1.2), value_ms=1.2, sha=None)
    verdict = compare(found(entry), current, POLICY)
    assert verdict.status is Status.REGRESSION
    assert f"on {DEVICE}; baseline baselines/cpu-x.json recorded ?; compared: " in verdict.message


def test_improved() -> None:
    current = make_current(scaled(TIGHT, 0.8), value_ms=0.8)
    verdict = compare(found(make_entry()), current, POLICY)
    assert verdict.status is Status.IMPROVED
    assert verdict.change is not None
    assert verdict.change.estimate == pytest.approx(-0.2, abs=1e-9)
    assert verdict.reason == "faster than the baseline: consider recording it again"
    assert verdict.message.endswith("; faster than the baseline: consider recording it again")
    assert not verdict.fails(strict=True)


def test_a_significant_speedup_from_four_fifths_of_the_threshold_is_improved() -> None:
    verdict = compare(found(make_entry()), make_current(scaled(TIGHT, 0.955)), POLICY)
    assert verdict.status is Status.IMPROVED
    short = compare(found(make_entry()), make_current(scaled(TIGHT, 0.965)), POLICY)
    assert short.status is Status.PASS


def test_insignificant_speedup_beyond_the_threshold_passes() -> None:
    verdict = compare(
        found(make_entry((1.0, 2.0))), make_current((0.8, 1.6)), POLICY
    )  # -20%, CI spans every difference: -60%..+60%
    assert verdict.change is not None
    assert verdict.change.estimate == pytest.approx(-0.2, abs=1e-9)
    assert not verdict.change.significant_speedup
    assert verdict.status is Status.PASS


def test_unstable() -> None:
    # Two values a side: the interval spans every pairwise ratio, 0.6 .. 2.4.
    verdict = compare(found(make_entry((1.0, 2.0))), make_current((1.2, 2.4)), POLICY)
    assert verdict.status is Status.UNSTABLE
    assert verdict.change is not None
    assert verdict.change.estimate == pytest.approx(0.2, abs=1e-9)
    assert verdict.change.low < 0.0 < verdict.change.high
    assert verdict.reason == (
        "+20.0% is beyond the 5.0% threshold but its 95% CI includes no change: too noisy to decide"
    )
    assert not verdict.fails(strict=False)
    assert verdict.fails(strict=True)


def test_policy_confidence_reaches_the_interval() -> None:
    entry = make_entry()
    current = make_current(scaled(TIGHT, 1.2), value_ms=1.2)
    verdict = compare(found(entry), current, Policy(threshold=0.05, confidence=0.9))
    assert verdict.change is not None
    assert verdict.change.confidence == 0.9
    assert ", 90% CI " in verdict.message


# ---------------------------------------------------------------------------------------------
# MODEL_CHANGED


def test_model_changed_without_slowdown() -> None:
    verdict = compare(found(make_entry()), make_current(sha=NEW_SHA), POLICY)
    assert verdict.status is Status.MODEL_CHANGED
    assert verdict.model_changed
    assert verdict.reason == "model changed since the baseline (cb27a1a1 -> ffeeb2b2)"
    assert verdict.message.endswith(
        "from model sha256 cb27…; compared: the p5 of each side's fastest instances (pooled p50 "
        "1.00 ms -> 1.00 ms); model changed since the baseline (cb27a1a1 -> ffeeb2b2)"
    )
    assert not verdict.fails(strict=True)


def test_model_changed_with_slowdown_is_a_regression() -> None:
    current = make_current(scaled(TIGHT, 1.2), value_ms=1.2, sha=NEW_SHA)
    verdict = compare(found(make_entry()), current, POLICY)
    assert verdict.status is Status.REGRESSION
    assert verdict.model_changed
    assert verdict.reason == "model changed since the baseline (cb27a1a1 -> ffeeb2b2)"
    assert verdict.fails(strict=False)


def test_model_changed_and_unstable_keeps_both_reasons() -> None:
    entry = make_entry((1.0, 2.0))
    verdict = compare(found(entry), make_current((1.2, 2.4), sha=NEW_SHA), POLICY)
    assert verdict.status is Status.UNSTABLE
    assert verdict.model_changed
    assert verdict.reason.endswith(
        "too noisy to decide; model changed since the baseline (cb27a1a1 -> ffeeb2b2)"
    )


@pytest.mark.parametrize(
    ("baseline_sha", "current_sha"),
    [(None, NEW_SHA), (OLD_SHA, None), (None, None), (OLD_SHA, OLD_SHA)],
    ids=["baseline-unknown", "current-unknown", "both-unknown", "same"],
)
def test_model_not_changed(baseline_sha: str | None, current_sha: str | None) -> None:
    verdict = compare(found(make_entry(sha=baseline_sha)), make_current(sha=current_sha), POLICY)
    assert verdict.status is Status.PASS
    assert not verdict.model_changed
    assert "model changed" not in verdict.message


# ---------------------------------------------------------------------------------------------
# Verdict.fails


@pytest.mark.parametrize(
    ("status", "lenient", "strict"),
    [
        (Status.PASS, False, False),
        (Status.REGRESSION, True, True),
        (Status.IMPROVED, False, False),
        (Status.NO_BASELINE, False, True),
        (Status.MODEL_CHANGED, False, False),
        (Status.INCOMPARABLE, False, True),
        (Status.UNSTABLE, False, True),
    ],
    ids=lambda v: v.value if isinstance(v, Status) else None,
)
def test_fails(status: Status, lenient: bool, strict: bool) -> None:
    verdict = Verdict(status, "p50", 1.0, DEVICE, PATH)
    assert verdict.fails(strict=False) is lenient
    assert verdict.fails(strict=True) is strict


def test_fails_covers_every_status() -> None:
    assert {s.value for s in Status} == {
        "PASS",
        "REGRESSION",
        "IMPROVED",
        "NO_BASELINE",
        "MODEL_CHANGED",
        "INCOMPARABLE",
        "UNSTABLE",
        "BUSY",
    }


# ---------------------------------------------------------------------------------------------
# contention: BUSY


def test_a_slowdown_the_hosts_waiting_explains_is_busy() -> None:
    # Recorded by benchmarks/experiments/contention_signals.py (mobilenet_v2_1.0_224_quant, four
    # neighbours on the two cores): the instances ran 5.016x their quiet figure while the benchmark
    # thread waited for a CPU 80.08% of its timed loops, which explains 1 / (1 - 0.8008) = 5.02x.
    entry = replace(make_entry(scaled(TIGHT, 14.14), value_ms=14.14), run_queue_wait=0.0)
    current = replace(make_current(scaled(TIGHT, 14.14 * 5.016), value_ms=70.9), wait_share=0.8008)
    verdict = compare(found(entry), current, POLICY)
    assert verdict.status is Status.BUSY
    assert not verdict.fails(strict=False) and verdict.fails(strict=True)
    assert verdict.reason == (
        "the host was busy: the benchmark thread waited for a CPU 80% of its timed loops (the "
        "baseline's 0%), which explains a slowdown of up to +402%; run again on a quiet host, or "
        "gate with --edgetpu-against"
    )


def test_a_slowdown_clearly_beyond_what_the_waiting_explains_stays_a_regression() -> None:
    # Waiting a third of the time explains 1.5x; a model swap that made it 3x slower is not
    # the host's doing.
    entry = make_entry()
    current = replace(make_current(scaled(TIGHT, 3.0), value_ms=3.0), wait_share=1 / 3)
    assert compare(found(entry), current, POLICY).status is Status.REGRESSION


def test_waiting_no_more_than_while_recording_explains_nothing() -> None:
    entry = replace(make_entry(), run_queue_wait=0.30)
    current = replace(make_current(scaled(TIGHT, 1.2), value_ms=1.2), wait_share=0.33)
    assert compare(found(entry), current, POLICY).status is Status.REGRESSION
    unknown = replace(make_current(scaled(TIGHT, 1.2), value_ms=1.2), wait_share=None)
    assert compare(found(entry), unknown, POLICY).status is Status.REGRESSION


def test_contention_never_turns_a_pass_into_busy() -> None:
    current = replace(make_current(), wait_share=0.9)
    assert compare(found(make_entry()), current, POLICY).status is Status.PASS


def test_a_busy_measurement_is_recorded_only_when_told() -> None:
    assert not recordable(Status.BUSY, accept_unstable=False)
    assert recordable(Status.BUSY, accept_unstable=True)


# the host's speed: BUSY

#: A reading of the host's reference workload in five fresh processes, ms per call.
HOST_THEN = HostReading("dict-format-1 cpython-3.11.7", (0.0312, 0.0315, 0.0318, 0.0320, 0.0323))


def host_now(factor: float, kernel: str = HOST_THEN.kernel) -> HostReading:
    return HostReading(kernel, scaled(HOST_THEN.values_ms, factor))


def judged_beside_the_host(change: float, host: HostReading | None) -> Verdict:
    entry = replace(make_entry(), host_reference=HOST_THEN)
    current = make_current(scaled(TIGHT, 1 + change), value_ms=1 + change)
    return compare(found(entry), replace(current, host_reference=host), POLICY)


def test_a_slowdown_the_hosts_own_explains_is_busy() -> None:
    verdict = judged_beside_the_host(0.07, host_now(1.06))
    assert verdict.status is Status.BUSY
    assert verdict.reason == (
        "the host ran 6.0% slower than while recording (95% CI +3.4..+8.7%; a reference "
        "workload in 5 fresh processes), which explains a slowdown of the model of up to "
        "+12.4% (a model streams its weights through memory and may slow by the host's ratio "
        "squared): beyond that the change is -4.8% (95% CI -5.1..-4.5%); run again on a quiet "
        "host, or gate with --edgetpu-against"
    )
    # The figures compared are still the measurement's own.
    assert verdict.change is not None and verdict.change.estimate == pytest.approx(0.07)


def test_a_model_may_slow_by_the_hosts_ratio_squared_a_callable_by_its_ratio() -> None:
    # Beside memory-streaming neighbours a model slows more than the reference workload: +13%
    # beside a host 6% slower is +6.6% beyond the host's ratio, but nothing beyond its square.
    assert judged_beside_the_host(0.13, host_now(1.06)).status is Status.BUSY
    # A callable that runs no model moves with the reference: +6.6% beyond it is a regression.
    entry = replace(make_entry(), host_reference=HOST_THEN)
    current = make_current(scaled(TIGHT, 1.13), value_ms=1.13, sha=None)
    callable_verdict = compare(
        found(entry), replace(current, host_reference=host_now(1.06)), POLICY
    )
    assert callable_verdict.status is Status.REGRESSION, callable_verdict.message
    # And one the host's ratio explains says so without the model's words.
    current = make_current(scaled(TIGHT, 1.07), value_ms=1.07, sha=None)
    explained = compare(found(entry), replace(current, host_reference=host_now(1.06)), POLICY)
    assert explained.status is Status.BUSY
    assert explained.reason.startswith(
        "the host ran 6.0% slower than while recording (95% CI +3.4..+8.7%; a reference "
        "workload in 5 fresh processes): beyond that the change is +0.9% (95% CI "
    ), explained.reason


def test_a_slowdown_clearly_beyond_the_hosts_stays_a_regression() -> None:
    verdict = judged_beside_the_host(0.20, host_now(1.06))
    assert verdict.status is Status.REGRESSION
    assert verdict.reason == (
        "the host ran +6.0% against the recording (95% CI +3.4..+8.7%; a reference workload in 5 "
        "fresh processes), which does not explain it"
    )


@pytest.mark.parametrize(
    "host",
    [
        None,  # not measured (a device that is not the CPU, a reading that failed)
        host_now(1.0),  # the host as fast as while recording
        host_now(0.9),  # faster: never counted against a slowdown
        host_now(1.06, kernel="dict-format-1 cpython-3.12.1"),  # another Python's reading
        HostReading(HOST_THEN.kernel, (0.0300, 0.0330, 0.0318, 0.0350, 0.0310)),  # not surely
    ],
)
def test_a_host_not_shown_slower_explains_nothing(host: HostReading | None) -> None:
    verdict = judged_beside_the_host(0.07, host)
    assert verdict.status is Status.REGRESSION
    # A reading that was compared says what it showed; one that could not be says nothing.
    compared = host is not None and host.kernel == HOST_THEN.kernel
    assert verdict.reason.startswith("the host ran ") is compared, verdict.reason


def test_a_reading_in_the_test_s_processes_explains_by_a_counting_estimate_not_sure() -> None:
    # A drift that reached 4 of the 5 processes: +15.6% in an interval down to no change.
    in_the_test = kernel_name(in_test_processes=True)
    then = HostReading(in_the_test, HOST_THEN.values_ms)
    drifted = HostReading(in_the_test, (0.0312, 0.0366, 0.0368, 0.0370, 0.0372))
    host = shift(then.values_ms, drifted.values_ms)
    assert host.estimate > POLICY.threshold and not host.significant_slowdown
    change = Shift(estimate=0.15, low=0.14, high=0.16, confidence=0.95)
    explained, why = host_explains(Status.REGRESSION, change, POLICY, then, drifted, model=False)
    assert explained
    assert why.startswith("the host ran 15.6% slower than while recording (95% CI -1.9..+18.1%;")
    # Beyond that host a +30% change is still a regression.
    beyond = Shift(estimate=0.30, low=0.29, high=0.31, confidence=0.95)
    assert not host_explains(Status.REGRESSION, beyond, POLICY, then, drifted, model=False)[0]
    # An estimate short of the counting point explains nothing that is not sure.
    short = HostReading(in_the_test, (0.0300, 0.0310, 0.0330, 0.0335, 0.0340))
    assert 0 < shift(then.values_ms, short.values_ms).estimate < POLICY.threshold * 0.8
    assert not host_explains(Status.REGRESSION, change, POLICY, then, short, model=False)[0]
    # A reading in processes of its own has to be sure: the same figures explain nothing.
    bare_then = HostReading(kernel_name(), then.values_ms)
    bare = HostReading(kernel_name(), drifted.values_ms)
    assert not host_explains(Status.REGRESSION, change, POLICY, bare_then, bare, model=False)[0]


def test_a_change_is_judged_beyond_the_interval_of_a_reading_in_its_processes() -> None:
    in_the_test = kernel_name(in_test_processes=True)
    then = HostReading(in_the_test, HOST_THEN.values_ms)
    # One of the five processes in the host's slow moments: +0.3% in an interval up to +17.0%.
    mixed = HostReading(in_the_test, (0.0312, 0.0316, 0.0319, 0.0322, 0.0372))
    change = Shift(estimate=0.06, low=0.04, high=0.08, confidence=0.95)
    explained, why = host_explains(Status.REGRESSION, change, POLICY, then, mixed, model=True)
    assert explained, why
    assert why.startswith(
        "the host ran 0.3% slower than while recording (95% CI -2.2..+17.0%; a reference workload "
        "in the test's 5 processes), which explains a slowdown of the model of up to +36.8% (a "
        "model streams its weights through memory and may slow by the host's ratio squared); "
        "the test's processes may have run at the slow end of the reading: beyond that the "
        "change is +5.3% (95% CI -24.0..+12.8%)"
    ), why
    # A callable's too, beyond the reading's upper end itself.
    explained, why = host_explains(Status.REGRESSION, change, POLICY, then, mixed, model=False)
    assert explained, why
    assert why.startswith(
        "the host ran 0.3% slower than while recording (95% CI -2.2..+17.0%; a reference workload "
        "in the test's 5 processes); the test's processes may have run at the slow end of the "
        "reading: beyond that the change is +5.7% (95% CI -11.1..+10.4%)"
    ), why
    # A reading in processes of its own has to be sure: the same figures explain nothing.
    bare_then, bare = (
        HostReading(kernel_name(), then.values_ms),
        replace(mixed, kernel=kernel_name()),
    )
    assert not host_explains(Status.REGRESSION, change, POLICY, bare_then, bare, model=True)[0]
    # Beside a reading whose processes agree, the slowdown stays a regression.
    steady = HostReading(in_the_test, (0.0313, 0.0316, 0.0319, 0.0321, 0.0324))
    assert not host_explains(Status.REGRESSION, change, POLICY, then, steady, model=True)[0]
    assert not host_explains(Status.REGRESSION, change, POLICY, then, steady, model=False)[0]
    # Where the reading's estimate alone explains the change, its interval is not invoked.
    slower = HostReading(in_the_test, scaled(HOST_THEN.values_ms, 1.2))
    as_slow = Shift(estimate=0.2, low=0.18, high=0.22, confidence=0.95)
    explained, why = host_explains(Status.REGRESSION, as_slow, POLICY, then, slower, model=True)
    assert explained, why
    assert "explains a slowdown of the model of up to +44.0% (" in why, why
    assert "slow end" not in why, why


def test_an_entry_without_the_hosts_reading_is_judged_as_measured() -> None:
    current = replace(make_current(scaled(TIGHT, 1.07), value_ms=1.07), host_reference=host_now(2))
    assert compare(found(make_entry()), current, POLICY).status is Status.REGRESSION


def test_an_improvement_the_hosts_own_speed_up_explains_passes() -> None:
    # -6% on a host 6% faster: beyond the host's, nothing changed. IMPROVED would ask to record
    # the host's fast moment as the baseline.
    verdict = judged_beside_the_host(-0.06, host_now(0.94))
    assert verdict.status is Status.PASS
    assert verdict.reason.startswith("the host ran 6.0% faster than while recording (95% CI ")
    assert "beyond the host's speed-up the change is +0.0%" in verdict.reason, verdict.reason
    # Faster beyond the host's too: still IMPROVED, saying what the host's speed-up may hide.
    faster = judged_beside_the_host(-0.15, host_now(0.94))
    assert faster.status is Status.IMPROVED
    assert "a slowdown of up to +10.6% reads as less than +4.0% here" in faster.reason
    # A host as fast as while recording says nothing.
    assert judged_beside_the_host(-0.06, host_now(1.0)).status is Status.IMPROVED
    unchanged = Shift(0.0, -0.01, 0.01, 0.95)
    assert host_hides(Status.PASS, unchanged, POLICY, HOST_THEN, None) == (False, "")


def test_a_faster_host_never_fails_the_code_it_says_what_it_may_hide() -> None:
    # -1.5% on a host 12% faster: +11.9% beyond the speed-up, but a workload need not speed up
    # as the reference does (unchanged code that waits on a sleep would read the same), so the
    # callable's and the model's pass, saying so.
    entry = replace(make_entry(), host_reference=HOST_THEN)
    current = make_current(scaled(TIGHT, 0.985), value_ms=0.985, sha=None)
    for sha in (None, OLD_SHA):
        beside = replace(current, host_reference=host_now(0.88), model_sha256=sha)
        verdict = compare(found(entry), beside, POLICY)
        assert verdict.status is Status.PASS, verdict.message
        assert verdict.reason.startswith(
            "the host ran 12.0% faster than while recording (95% CI -14.2..-9.8%; a reference "
            "workload in 5 fresh processes): a slowdown of up to +18.2% reads as less than "
            "+4.0% here, and beyond the host's speed-up the change is +11.9% (95% CI "
            "+11.6..+12.3%); gate with --edgetpu-against to tell"
        ), verdict.reason


def test_an_unstable_slowdown_the_host_explains_is_busy() -> None:
    change = Shift(estimate=0.07, low=-0.01, high=0.15, confidence=0.95)
    assert decide(change, POLICY.threshold)[0] is Status.UNSTABLE
    explained, why = host_explains(
        Status.UNSTABLE, change, POLICY, HOST_THEN, host_now(1.06), model=False
    )
    assert explained and why.startswith("the host ran 6.0% slower than while recording")
    # Still undecided beyond the host's: nothing to explain.
    wider = Shift(estimate=0.12, low=-0.01, high=0.25, confidence=0.95)
    assert not host_explains(
        Status.UNSTABLE, wider, POLICY, HOST_THEN, host_now(1.06), model=False
    )[0]


# ---------------------------------------------------------------------------------------------
# confirm


def test_confirm_regression_twice() -> None:
    first = regression_verdict()
    second = compare(found(make_entry()), make_current(scaled(TIGHT, 1.25), value_ms=1.25), POLICY)
    verdict = confirm(first, second)
    assert verdict.status is Status.REGRESSION
    assert verdict.confirmed
    assert verdict.current_ms == 1.25  # the second measurement's figures
    assert verdict.reason == "first measurement +20.0%, confirmed"
    assert verdict.message.endswith("; first measurement +20.0%, confirmed")
    assert verdict.fails(strict=False)


def test_confirm_regression_then_pass() -> None:
    second = compare(found(make_entry()), make_current(), POLICY)
    verdict = confirm(regression_verdict(), second)
    assert verdict.status is Status.PASS
    assert not verdict.confirmed
    assert verdict.reason == "first measurement +20.0% not confirmed by a second one"
    assert "not confirmed" in verdict.message
    assert not verdict.fails(strict=True)


def test_confirm_regression_then_unstable() -> None:
    second = compare(found(make_entry((1.0, 2.0))), make_current((1.2, 2.4)), POLICY)
    verdict = confirm(regression_verdict(), second)
    assert verdict.status is Status.UNSTABLE
    assert not verdict.confirmed
    assert verdict.reason.endswith(
        "too noisy to decide; first measurement +20.0% not confirmed by a second one"
    )
    assert not verdict.fails(strict=False)
    assert verdict.fails(strict=True)


@pytest.mark.parametrize(
    "first_status",
    [s for s in Status if s is not Status.REGRESSION],
    ids=lambda s: s.value,
)
def test_confirm_returns_a_non_regression_unchanged(first_status: Status) -> None:
    first = Verdict(first_status, "p50", 1.0, DEVICE, PATH, reason="first")
    second = regression_verdict()
    assert confirm(first, second) is first


# ---------------------------------------------------------------------------------------------
# noise note


def test_noise_note_when_the_interval_is_wider_than_the_threshold() -> None:
    # Baseline 1.0, 1.0 and current 1.0, 1.3: the interval is 0 .. +30%, half of it on the log
    # scale is sqrt(1.3) - 1 = 14.02%.
    verdict = compare(found(make_entry((1.0, 1.0))), make_current((1.0, 1.3)), POLICY)
    assert verdict.change is not None
    assert verdict.change.resolution == pytest.approx(1.3**0.5 - 1, rel=1e-12)
    assert verdict.noise_note == (
        "the threshold 5.0% is finer than this measurement resolves (±14.0%); raise it to at "
        "least 15% or measure longer (max_time)"
    )
    assert verdict.message.endswith("; " + verdict.noise_note)


def test_noise_note_absent_when_the_interval_is_tight() -> None:
    verdict = compare(found(make_entry()), make_current(scaled(TIGHT, 1.01)), POLICY)
    assert verdict.change is not None
    assert verdict.change.resolution < POLICY.threshold
    assert verdict.noise_note == ""
    assert "finer than this measurement" not in verdict.message


def test_noise_note_absent_when_the_interval_rules_a_slowdown_out() -> None:
    # The interval -30..-5%: wider than the threshold, but no slowdown could hide in it.
    verdict = compare(found(make_entry((1.0, 1.0))), make_current((0.7, 0.95)), POLICY)
    assert verdict.change is not None
    assert verdict.change.resolution > POLICY.threshold
    assert verdict.change.high < POLICY.threshold * COUNTS_FROM
    assert verdict.noise_note == ""


def test_noise_note_follows_the_threshold() -> None:
    entry, current = make_entry((1.0, 1.0)), make_current((1.0, 1.3))
    assert compare(found(entry), current, Policy(threshold=0.14)).noise_note != ""
    assert compare(found(entry), current, Policy(threshold=0.15)).noise_note == ""


def test_no_noise_note_without_a_comparison() -> None:
    verdict = compare(Lookup(PATH, None, ()), make_current(), POLICY)
    assert verdict.noise_note == ""


# ---------------------------------------------------------------------------------------------
# A busy neighbour on the host: whole instances 25% slower, in a share that changes per run

QUIET_AND_BUSY = TIGHT + scaled(TIGHT, 1.25)[:5]


def test_a_run_mostly_slowed_by_a_neighbour_passes() -> None:
    current = TIGHT[:4] + scaled(TIGHT, 1.25)
    verdict = compare(found(make_entry(QUIET_AND_BUSY)), make_current(current), POLICY)
    assert verdict.status is Status.PASS
    assert verdict.change is not None
    assert abs(verdict.change.estimate) < 0.01


def test_a_slowdown_of_the_quiet_instances_is_a_regression_whatever_the_busy_share() -> None:
    current = scaled(TIGHT[:4], 1.10) + scaled(TIGHT, 1.25 * 1.10)
    verdict = compare(found(make_entry(QUIET_AND_BUSY)), make_current(current), POLICY)
    assert verdict.status is Status.REGRESSION
    assert verdict.change is not None
    assert verdict.change.estimate == pytest.approx(0.10, abs=0.01)


# --- verdict-aware stopping ---------------------------------------------------------------

#: A real baseline (mobilenet_v1_0.25_128_quant on the CPU, gate_accuracy.py round 3): two
#: latency modes, as instances on a shared host draw them.
RECORDED_BASELINE_MS = (
    *(0.5211, 0.5213, 0.4349, 0.5116, 0.5086, 0.4294, 0.4301, 0.4298, 0.4309),
    *(0.4295, 0.4295, 0.4298, 0.4308, 0.4295, 0.4299, 0.4296, 0.4299, 0.5173),
)
#: The first 8 instances of that round's gate runs, unchanged and with +5% injected.
RECORDED_UNCHANGED_MS = (0.4297, 0.4298, 0.43, 0.4294, 0.4304, 0.4301, 0.4295, 0.4295)
RECORDED_FIVE_PERCENT_MS = (0.4513, 0.4528, 0.4523, 0.4508, 0.4522, 0.4509, 0.4515, 0.4513)


def test_an_unchanged_measurement_settles_as_no_slowdown() -> None:
    settled = settle_rule(Policy(threshold=0.05))(RECORDED_BASELINE_MS, RECORDED_UNCHANGED_MS)
    assert settled is not None and not settled.slower
    assert settled.reason == "settled: the change's 95% CI -0.1..+0.0% lies within ±4.0%"


def test_a_five_percent_slowdown_settles_as_a_slowdown() -> None:
    rule = settle_rule(Policy(threshold=0.05))
    settled = rule(RECORDED_BASELINE_MS, RECORDED_FIVE_PERCENT_MS)
    assert settled is not None and settled.slower
    assert settled.reason == "settled: the change's 95% CI +4.9..+5.1% lies beyond +4.0%"
    # Against a 10% threshold the same +5% is settled the other way: it cannot count.
    wide = settle_rule(Policy(threshold=0.10))(RECORDED_BASELINE_MS, RECORDED_FIVE_PERCENT_MS)
    assert wide is not None and not wide.slower


def test_a_speedup_settles_only_once_it_is_clearly_one() -> None:
    rule = settle_rule(Policy(threshold=0.05))
    faster = tuple(v * 0.9 for v in RECORDED_UNCHANGED_MS)
    settled = rule(RECORDED_BASELINE_MS, faster)
    assert settled is not None and not settled.slower
    assert settled.reason.endswith("lies below -4.0%")
    # Reaching from "unchanged" into "faster": stopped here, unchanged code would too often be
    # called IMPROVED, so it measures on.
    between = (0.4040, 0.5200, 0.4170, 0.5100, 0.5200, 0.4250, 0.5150, 0.5100)
    change = shift(fastest(RECORDED_BASELINE_MS), fastest(between))
    assert change.low < -0.04 < change.high < 0.04
    assert rule(RECORDED_BASELINE_MS, between) is None


def test_one_value_has_no_interval_and_settles_nothing() -> None:
    rule = settle_rule(Policy(threshold=0.05))
    assert rule(RECORDED_BASELINE_MS, RECORDED_UNCHANGED_MS[:1]) is None
    assert rule(RECORDED_BASELINE_MS[:1], RECORDED_UNCHANGED_MS) is None


def test_an_interval_across_the_counting_point_is_not_settled() -> None:
    # Its fastest third 1-7% slower than the baseline's: the interval straddles +4%.
    mixed = (0.4340, 0.4480, 0.4600, 0.4390, 0.5200, 0.4560, 0.4520, 0.5100)
    assert settle_rule(Policy(threshold=0.05))(RECORDED_BASELINE_MS, mixed) is None


def test_only_a_slowdown_the_interval_cannot_yet_tell_from_no_change_is_suspected() -> None:
    suspects = suspect_rule(Policy(threshold=0.05))
    # +10% on the fastest third of a wide spread: counts, but the interval reaches below 0.
    wide = (0.4730, 0.6000, 0.4250, 0.6100, 0.4750, 0.5900, 0.4735, 0.6050)
    change = shift(fastest(RECORDED_BASELINE_MS), fastest(wide))
    assert change.estimate >= 0.04 and change.low <= 0.0
    assert suspects(RECORDED_BASELINE_MS, wide)
    assert not suspects(RECORDED_BASELINE_MS, RECORDED_FIVE_PERCENT_MS)  # a significant one
    assert not suspects(RECORDED_BASELINE_MS, RECORDED_UNCHANGED_MS)
    assert not suspects(RECORDED_BASELINE_MS, wide[:1])
