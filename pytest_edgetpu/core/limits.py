"""Every bound on what the plugin accepts from outside, in one place, and the metric names.

Options and marker arguments, numbers read from baseline and results files, and file sizes are
checked against these before anything uses them, so that no statistic sees a value it cannot
compute with (a log ratio of 1e300 against 1e-320 overflows) and no setting can take the host
down with it (a million interpreter threads exhaust its pid limit).
"""

from __future__ import annotations

from typing import Final, TypeGuard

__all__ = [
    "MAX_DURATION_MS",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_MAX_TIME_S",
    "MAX_MEMORY_KIB",
    "MAX_MIN_RUNS",
    "MAX_MODEL_BYTES",
    "MAX_NUM_THREADS",
    "MAX_PROCESSES",
    "MAX_SAMPLE_COUNT",
    "MAX_WARMUP",
    "MAX_WORKERS",
    "METRICS",
    "MIN_LATENCY_MS",
    "THREADS_AND_WORKERS_WORDS",
    "is_count",
    "is_duration_ms",
    "is_latency_ms",
    "is_number",
]

#: The metrics a test can be gated on; each is computed per instance, then compared.
METRICS: Final = ("p50", "p90", "p99", "mean", "min")

#: A JSON file (baselines, results) larger than this is refused unread.
MAX_JSON_BYTES: Final = 16 * 1024 * 1024
MAX_JSON_DEPTH: Final = 8
#: A memory figure, in KiB, beyond what any host has (a TiB): larger is a damaged file.
MAX_MEMORY_KIB: Final = 2**30
#: A flatbuffer cannot address more than 2 GiB, so no TFLite model is larger.
MAX_MODEL_BYTES: Final = 2**31 - 1

#: Interpreter threads: more than any edge host has cores, far below a host's pid limit.
MAX_NUM_THREADS: Final = 256
#: Warm-up invokes per instance: minutes of warm-up for the slowest Coral model, not hours.
MAX_WARMUP: Final = 10_000
MAX_MIN_RUNS: Final = 1_000_000
MAX_MAX_TIME_S: Final = 3600.0
#: Parallel workers one baseline may have been recorded with.
MAX_WORKERS: Final = 4096
#: Fresh processes one baseline may have been measured in.
MAX_PROCESSES: Final = 4096
#: Samples one summary may count.
MAX_SAMPLE_COUNT: Final = 10**12

#: A latency is at least a nanosecond (the timer's unit) and at most an hour: within these,
#: every log ratio the statistics take is below 30 and every figure they derive is finite.
MIN_LATENCY_MS: Final = 1e-6
MAX_DURATION_MS: Final = 3_600_000.0
#: The bounds above in words, for the errors of every reader that applies them.
LATENCY_WORDS: Final = "a latency from 1 ns to 1 h in milliseconds"
THREADS_AND_WORKERS_WORDS: Final = (
    f"num_threads of 1..{MAX_NUM_THREADS} and workers of 1..{MAX_WORKERS}"
)


def is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number: an int or a float, never a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_latency_ms(value: object) -> TypeGuard[int | float]:
    """A per-invoke or per-instance latency a statistic can use (NaN and inf are not)."""
    return is_number(value) and MIN_LATENCY_MS <= value <= MAX_DURATION_MS


def is_duration_ms(value: object) -> TypeGuard[int | float]:
    """A phase's duration (load, first inference): zero allowed, finite, at most an hour."""
    return is_number(value) and 0 <= value <= MAX_DURATION_MS


def is_count(value: object, low: int, high: int) -> TypeGuard[int]:
    """A whole number (never a bool or a float) within ``low..high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
