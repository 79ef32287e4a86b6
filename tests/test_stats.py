"""Unit tests of pytest_edgetpu.core.stats: summaries and the Hodges-Lehmann shift on plain
numbers."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgetpu.core.stats import (
    METRICS,
    Shift,
    Summary,
    fastest,
    instance_figure,
    instance_value,
    paired_shift,
    shift,
    summarize,
)

# ---------------------------------------------------------------------------------------------
# summarize


def test_summarize_hand_computed() -> None:
    # 1, 2, 3, 4, 10 ms. numpy's linear interpolation: p90 at rank 3.6 -> 4 + 0.6 * 6 = 7.6,
    # p99 at rank 3.96 -> 4 + 0.96 * 6 = 9.76; p25 = 2, p75 = 4.
    # Deviations from the mean 4: -3 -2 -1 0 6, squares sum to 50, / (n - 1) = 12.5.
    # |x - median 3| = 2 1 0 1 7 -> MAD 1.
    summary = summarize([1_000_000, 2_000_000, 3_000_000, 4_000_000, 10_000_000])
    assert summary.n == 5
    assert summary.min_ms == 1.0
    assert summary.p50_ms == 3.0
    assert summary.p90_ms == pytest.approx(7.6, rel=1e-12)
    assert summary.p99_ms == pytest.approx(9.76, rel=1e-12)
    assert summary.max_ms == 10.0
    assert summary.mean_ms == 4.0
    assert summary.stdev_ms == pytest.approx(math.sqrt(12.5), rel=1e-12)
    assert summary.mad_ms == 1.0
    assert summary.iqr_ms == 2.0
    assert summary.cv == pytest.approx(math.sqrt(12.5) / 4.0, rel=1e-12)
    assert summary.throughput_per_s == pytest.approx(250.0, rel=1e-12)


def test_summarize_unordered_input_gives_the_same_summary() -> None:
    ordered = summarize([1_000_000, 2_000_000, 3_000_000, 4_000_000, 10_000_000])
    shuffled = summarize([10_000_000, 3_000_000, 1_000_000, 4_000_000, 2_000_000])
    assert shuffled == ordered


def test_summarize_single_sample() -> None:
    summary = summarize([2_500_000])
    assert summary == Summary(
        n=1,
        min_ms=2.5,
        p50_ms=2.5,
        p90_ms=2.5,
        p99_ms=2.5,
        max_ms=2.5,
        mean_ms=2.5,
        stdev_ms=0.0,
        mad_ms=0.0,
        iqr_ms=0.0,
        cv=0.0,
        throughput_per_s=400.0,
    )


def test_summarize_nanosecond_resolution() -> None:
    summary = summarize([1, 3])
    assert summary.min_ms == pytest.approx(1e-6, rel=1e-12)
    assert summary.max_ms == pytest.approx(3e-6, rel=1e-12)
    assert summary.mean_ms == pytest.approx(2e-6, rel=1e-12)


@pytest.mark.parametrize(
    "empty", [[], (), np.array([], dtype=np.int64)], ids=["list", "tuple", "array"]
)
def test_summarize_empty_raises(empty: object) -> None:
    with pytest.raises(ValueError, match=r"^no samples to summarize$"):
        summarize(empty)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("metric", "expected", "instance_expected"),
    [
        ("p50", 3.0, 1.2),  # an instance contributes its 5th percentile for p50
        ("p90", 7.6, 7.6),
        ("p99", 9.76, 9.76),
        ("mean", 4.0, 4.0),
        ("min", 1.0, 1.0),
    ],
    ids=METRICS,
)
def test_summary_value_and_instance_value(
    metric: str, expected: float, instance_expected: float
) -> None:
    samples = [1_000_000, 2_000_000, 3_000_000, 4_000_000, 10_000_000]
    assert summarize(samples).value(metric) == pytest.approx(expected, rel=1e-12)
    assert instance_value(samples, metric) == pytest.approx(instance_expected, rel=1e-12)


def test_p50_instance_value_is_the_quiet_invokes() -> None:
    """An instance that a neighbour slowed by a third for all but a tenth of its invokes yields
    the quiet latency, and a slowdown of every invoke moves it by as much."""
    quiet, busy = 1_000_000, 1_340_000
    instance = [quiet + i for i in range(12)] + [busy + i for i in range(108)]
    assert instance_value(instance, "p50") == pytest.approx(1.0, rel=1e-4)
    assert summarize(instance).p50_ms == pytest.approx(1.34, rel=1e-3)
    slower = [round(s * 1.1) for s in instance]
    assert instance_value(slower, "p50") == pytest.approx(1.1, rel=1e-4)


def test_instance_value_empty_raises() -> None:
    with pytest.raises(ValueError, match=r"^no samples to summarize$"):
        instance_value([], "p50")


def test_instance_value_unknown_metric() -> None:
    with pytest.raises(
        ValueError, match=r"^unknown metric 'p95'; expected one of p50, p90, p99, mean, min$"
    ):
        instance_value([1_000_000], "p95")


# ---------------------------------------------------------------------------------------------
# shift

SPREAD = [1.00, 1.02, 0.98, 1.05, 0.97, 1.01, 1.03, 0.99, 1.04, 0.96]


def test_shift_identical_samples() -> None:
    change = shift(SPREAD, list(SPREAD))
    assert change.estimate == 0.0
    assert change.low <= 0.0 <= change.high
    assert not change.significant_slowdown
    assert not change.significant_speedup
    assert change.confidence == 0.95


def test_shift_constant_samples_give_a_zero_width_interval() -> None:
    change = shift([2.0] * 5, [2.0] * 5)
    assert change == Shift(estimate=0.0, low=0.0, high=0.0, confidence=0.95)
    assert change.resolution == 0.0


def test_shift_exact_ten_percent_slowdown() -> None:
    change = shift(SPREAD, [x * 1.10 for x in SPREAD])
    assert change.estimate == pytest.approx(0.10, abs=1e-9)
    assert change.low <= 0.10 <= change.high


def test_shift_is_robust_to_the_mix_of_modes() -> None:
    # Two modes, 1.0 and 1.3 ms, in different proportions (50/50 vs 60/40): the pairwise
    # log-ratios are 120 negative, 200 zero and 80 positive, so their median is exactly 0,
    # where the medians of the two samples (1.15 vs 1.0) would differ by 13%.
    baseline = [1.0] * 10 + [1.3] * 10
    current = [1.0] * 12 + [1.3] * 8
    assert shift(baseline, current).estimate == 0.0


def test_shift_of_a_mode_mixture_shifted_by_five_percent() -> None:
    baseline = [1.0] * 10 + [1.3] * 10
    current = [x * 1.05 for x in [1.0] * 12 + [1.3] * 8]
    change = shift(baseline, current)
    assert change.estimate == pytest.approx(0.05, abs=1e-12)
    # Half of the pairwise differences are exactly log(1.05): the interval hugs the estimate.
    assert change.low <= change.estimate <= change.high
    assert change.low == pytest.approx(0.05, abs=1e-12)
    assert change.high == pytest.approx(0.05, abs=1e-12)
    assert change.significant_slowdown


def test_shift_matches_the_mann_whitney_table_for_ten_and_ten() -> None:
    # n1 = n2 = 10, two-sided 5%: the tabulated critical U is 23, so Moses' interval runs
    # from the 24th smallest to the 24th largest of the 100 pairwise differences.
    baseline = [1.0 + 0.013 * i for i in range(10)]
    current = [1.05 + 0.017 * i**1.3 for i in range(10)]
    diffs = sorted(math.log(c) - math.log(b) for c in current for b in baseline)
    change = shift(baseline, current)
    assert change.low == pytest.approx(math.expm1(diffs[23]), rel=1e-12)
    assert change.high == pytest.approx(math.expm1(diffs[76]), rel=1e-12)
    assert change.estimate == pytest.approx(math.expm1((diffs[49] + diffs[50]) / 2), rel=1e-12)


def test_shift_with_too_few_pairs_spans_every_difference() -> None:
    change = shift([1.0, 2.0], [1.2, 2.4])
    # Differences: log 1.2 (twice), log 0.6, log 2.4.
    assert change.estimate == pytest.approx(0.2, rel=1e-12)
    assert change.low == pytest.approx(-0.4, rel=1e-12)
    assert change.high == pytest.approx(1.4, rel=1e-12)


def test_paired_shift_is_the_median_walsh_average_of_the_log_ratios() -> None:
    # Ten pairs, two-sided 5%: the signed-rank table's critical value is 8, so the exact
    # interval runs from the 9th smallest to the 9th largest of the 55 Walsh averages; the
    # normal approximation (continuity corrected) gives the 8th, one average wider.
    baseline = [1.0 + 0.1 * i for i in range(10)]
    current = [b * (1.05 + 0.01 * (i % 4) - 0.012 * (i % 3)) for i, b in enumerate(baseline)]
    logs = [math.log(c / b) for b, c in zip(baseline, current, strict=True)]
    walsh = sorted((x + y) / 2 for x, y in itertools.combinations_with_replacement(logs, 2))
    assert len(walsh) == 55
    change = paired_shift(baseline, current)
    assert change.estimate == pytest.approx(math.expm1(walsh[27]), rel=1e-12)
    assert change.low == pytest.approx(math.expm1(walsh[7]), rel=1e-12)
    assert change.high == pytest.approx(math.expm1(walsh[47]), rel=1e-12)


def test_paired_shift_with_too_few_pairs_spans_every_walsh_average() -> None:
    change = paired_shift([1.0, 2.0], [1.1, 2.6])
    assert change.low == pytest.approx(0.1, rel=1e-12)
    assert change.high == pytest.approx(0.3, rel=1e-12)


def test_paired_shift_needs_matching_pairs() -> None:
    with pytest.raises(ValueError, match="3 baseline values for 2 current ones"):
        paired_shift([1.0, 1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="at least two pairs"):
        paired_shift([1.0], [1.0])


@pytest.mark.parametrize(
    ("factor", "slowdown", "speedup"),
    [(1.5, True, False), (1 / 1.5, False, True), (1.0, False, False)],
    ids=["slower", "faster", "same"],
)
def test_shift_significance_flags(factor: float, slowdown: bool, speedup: bool) -> None:
    change = shift(SPREAD, [x * factor for x in SPREAD])
    assert change.significant_slowdown is slowdown
    assert change.significant_speedup is speedup


@pytest.mark.parametrize(
    ("low", "high", "slowdown", "speedup"),
    [
        (0.01, 0.2, True, False),
        (0.0, 0.2, False, False),
        (-0.2, -0.01, False, True),
        (-0.2, 0.0, False, False),
        (-0.1, 0.1, False, False),
    ],
    ids=["above-zero", "touches-zero-from-above", "below-zero", "touches-zero-from-below", "spans"],
)
def test_shift_flags_on_the_interval_bounds(
    low: float, high: float, slowdown: bool, speedup: bool
) -> None:
    change = Shift(estimate=(low + high) / 2, low=low, high=high, confidence=0.95)
    assert change.significant_slowdown is slowdown
    assert change.significant_speedup is speedup


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (-0.1, 0.1, math.expm1((math.log(1.1) - math.log(0.9)) / 2)),
        (1 / 1.05 - 1, 0.05, 0.05),
        (0.2, 0.2, 0.0),
        (0.0, 0.44, 0.2),  # log-scale half width: sqrt(1.44) - 1
    ],
    ids=["symmetric", "log-symmetric", "zero-width", "offset"],
)
def test_shift_resolution(low: float, high: float, expected: float) -> None:
    change = Shift(estimate=0.0, low=low, high=high, confidence=0.95)
    assert change.resolution == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_shift_resolution_does_not_depend_on_the_size_of_the_shift() -> None:
    current = [x * 1.02 for x in SPREAD]
    near = shift(SPREAD, current)
    far = shift(SPREAD, [x * 1.5 for x in current])
    assert far.resolution == pytest.approx(near.resolution, rel=1e-9)


def test_shift_interval_widens_as_confidence_rises() -> None:
    baseline = [1.0 + 0.01 * ((i * 7) % 13) for i in range(15)]
    current = [1.03 + 0.012 * ((i * 5) % 11) for i in range(15)]
    changes = [shift(baseline, current, c) for c in (0.5, 0.8, 0.9, 0.95, 0.99)]
    for narrower, wider in itertools.pairwise(changes):
        assert wider.low <= narrower.low
        assert wider.high >= narrower.high
        assert wider.estimate == narrower.estimate
    assert changes[-1].high - changes[-1].low > changes[0].high - changes[0].low
    assert [c.confidence for c in changes] == [0.5, 0.8, 0.9, 0.95, 0.99]


@pytest.mark.parametrize(
    ("baseline", "current"),
    [([1.0], [1.0, 2.0]), ([1.0, 2.0], [1.0]), ([], []), ([1.0, 2.0], [])],
    ids=["one-baseline", "one-current", "both-empty", "current-empty"],
)
def test_shift_needs_two_values_each_side(baseline: list[float], current: list[float]) -> None:
    with pytest.raises(ValueError, match=r"^a shift needs at least two values on each side$"):
        shift(baseline, current)


@pytest.mark.parametrize(
    ("baseline", "current"),
    [
        ([1.0, 0.0], [1.0, 2.0]),
        ([1.0, 2.0], [-1.0, 2.0]),
        ([1.0, math.inf], [1.0, 2.0]),
        ([1.0, 2.0], [math.nan, 2.0]),
    ],
    ids=["zero", "negative", "inf", "nan"],
)
def test_shift_rejects_non_positive_or_non_finite(
    baseline: list[float], current: list[float]
) -> None:
    with pytest.raises(ValueError, match=r"^shift needs positive, finite values$"):
        shift(baseline, current)


@pytest.mark.parametrize("bad", [0.0, -1.0], ids=["zero", "negative"])
def test_shift_rejects_non_positive_without_a_numpy_warning(bad: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^shift needs positive, finite values$"):
            shift([1.0, bad], [1.0, 2.0])


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5, 95.0, math.nan], ids=str)
def test_shift_rejects_bad_confidence(confidence: float) -> None:
    with pytest.raises(ValueError, match=r"^confidence must be between 0 and 1, got "):
        shift([1.0, 2.0], [1.0, 2.0], confidence)


def test_shift_bad_confidence_message_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"^confidence must be between 0 and 1, got 95$"):
        shift([1.0, 2.0], [1.0, 2.0], 95)


# ---------------------------------------------------------------------------------------------
# properties

_values = st.lists(
    st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False),
    min_size=2,
    max_size=15,
)


@settings(max_examples=150, deadline=None)
@given(a=_values, b=_values, k=st.floats(min_value=0.5, max_value=2.0))
def test_shift_is_scale_equivariant(a: list[float], b: list[float], k: float) -> None:
    plain = shift(a, b)
    scaled = shift(a, [x * k for x in b])
    # Compare ratios (1 + estimate), which are positive, so a relative tolerance is meaningful.
    assert math.isclose(1.0 + scaled.estimate, (1.0 + plain.estimate) * k, rel_tol=1e-9)
    assert math.isclose(1.0 + scaled.low, (1.0 + plain.low) * k, rel_tol=1e-9)
    assert math.isclose(1.0 + scaled.high, (1.0 + plain.high) * k, rel_tol=1e-9)
    for change in (plain, scaled):
        assert change.low <= change.estimate <= change.high


@settings(max_examples=100, deadline=None)
@given(a=_values, b=_values)
def test_shift_is_antisymmetric(a: list[float], b: list[float]) -> None:
    forward = shift(a, b)
    backward = shift(b, a)
    assert math.isclose(1.0 + forward.estimate, 1.0 / (1.0 + backward.estimate), rel_tol=1e-9)
    assert math.isclose(1.0 + forward.low, 1.0 / (1.0 + backward.high), rel_tol=1e-9)


@pytest.mark.parametrize(
    ("count", "kept"), [(2, 2), (3, 3), (8, 3), (9, 3), (10, 4), (21, 7), (40, 14)]
)
def test_fastest_keeps_a_third_rounded_up_and_at_least_three(count: int, kept: int) -> None:
    values = [float(v) for v in range(count, 0, -1)]
    assert fastest(values) == [float(v) for v in range(1, kept + 1)]


@pytest.mark.parametrize(
    ("metric", "figure"),
    [("p50", "p5"), ("p90", "p90"), ("p99", "p99"), ("mean", "mean"), ("min", "min")],
    ids=METRICS,
)
def test_instance_figure_names_what_instance_value_takes(metric: str, figure: str) -> None:
    samples = list(range(1_000_000, 1_101_000, 1_000))  # 1.000, 1.001, ..., 1.100 ms
    assert instance_figure(metric) == figure
    if figure.startswith("p"):
        expected = float(np.percentile(np.asarray(samples) / 1e6, int(figure[1:])))
        assert instance_value(samples, metric) == pytest.approx(expected, rel=1e-12)
