"""Verdicts: compare a measurement with its baseline. Computes, never prints or raises.

The rule: the threshold is the smallest slowdown the gate is built to catch. A test regressed
when the Hodges-Lehmann shift of its fastest per-instance values (the instances that ran while
the machine was quiet, :func:`~pytest_edgetpu.core.stats.fastest`) against the baseline's counts
against the threshold (:data:`COUNTS_FROM`) AND the shift's confidence interval excludes no
change, and a second, independent measurement confirms it (:func:`confirm`). A shift that counts
but is not significant is ``UNSTABLE``: the measurement cannot tell. A slowdown that the host's
contention explains (the benchmark thread waited for a CPU,
:mod:`pytest_edgetpu.engine.contention`) is ``BUSY``: it passes, naming the evidence, unless it
lies clearly beyond what the waiting explains. Every verdict says when the threshold is finer than
what the measured noise lets this comparison resolve.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from ..core.stats import (
    Shift,
    compared_value,
    compared_values,
    paired_shift,
    shift,
)
from ..engine.against import BaseSide, NotCompared
from ..engine.measurement import Settled, SettleRule, SuspectRule
from .baselines import BaselineEntry, Lookup
from .host_speed import host_explains, host_hides
from .verdict import COUNTS_FROM, Current, Policy, Status, Verdict, decide, format_interval

__all__ = [
    "BISECT_SKIP",
    "COUNTS_FROM",
    "bisect_exit",
    "compare",
    "compare_against",
    "confirm",
    "decide",
    "recordable",
    "settle_rule",
    "suspect_rule",
    "why_incomparable",
]


#: How much more of its time the benchmark thread must have waited for a CPU than while the
#: baseline was recorded before contention can explain a slowdown: a few points come and go
#: on a quiet host.
BUSY_EXTRA_WAIT = 0.05


def compare(lookup: Lookup, current: Current, policy: Policy) -> Verdict:
    """Judge ``current`` against the baseline ``lookup`` found (or did not find)."""
    base = Verdict(
        status=Status.NO_BASELINE,
        metric=current.metric,
        current_ms=current.value_ms,
        device_words=current.device_words,
        baseline_path=lookup.path,
    )
    entry = lookup.entry
    if entry is None:
        if lookup.other_profiles:
            return replace(
                base,
                status=Status.INCOMPARABLE,
                reason=(
                    "baselines exist only for other device profiles: "
                    + ", ".join(lookup.other_profiles)
                    + f"; never compared with {lookup.path.stem}; record one for this "
                    f"device with --edgetpu-update-baselines{_workers_flag(current.workers)}"
                ),
            )
        return replace(
            base,
            reason=f"no baseline in {lookup.path}; record one with --edgetpu-update-baselines",
        )
    mismatch = why_incomparable(
        entry, current.metric, current.num_threads, current.workers, current.processes > 0
    )
    if mismatch:
        return replace(
            base,
            status=Status.INCOMPARABLE,
            baseline_recorded=entry.recorded,
            reason=(
                f"{mismatch} in {lookup.path}; record again with --edgetpu-update-baselines"
                f"{_workers_flag(current.workers)}"
            ),
        )
    change = shift(entry.compared_values_ms, current.compared_values_ms, policy.confidence)
    model_changed = _model_changed(entry.model_sha256, current.model_sha256)
    status, reason = decide(change, policy.threshold)
    # What the host's reading showed, where it explains nothing: named after the model's change.
    host_words = ""
    readings = (entry.host_reference, current.host_reference)
    timed_a_model = current.model_sha256 is not None
    if status in (Status.REGRESSION, Status.UNSTABLE):
        busy = _contention_explains(change, policy.threshold, entry, current)
        if busy:
            status, reason = Status.BUSY, busy
        else:
            explained, host_words = host_explains(
                status, change, policy, *readings, model=timed_a_model
            )
            if explained:
                status, reason, host_words = Status.BUSY, host_words, ""
    elif status in (Status.PASS, Status.IMPROVED):
        sped_up, host_words = host_hides(status, change, policy, *readings)
        if sped_up:
            status, reason = Status.PASS, ""
    if model_changed:
        old, new = entry.model_sha256 or "", current.model_sha256 or ""
        status, reason = _flag_model_change(
            status, reason, f"model changed since the baseline ({old[:8]} -> {new[:8]})"
        )
    reason = _join(reason, host_words)
    return replace(
        base,
        status=status,
        baseline_ms=entry.value_ms,
        change=change,
        compared_baseline_ms=entry.compared_ms,
        compared_current_ms=compared_value(current.instance_values_ms, current.processes > 0),
        model_changed=model_changed,
        baseline_recorded=entry.recorded,
        baseline_sha256=entry.model_sha256,
        reason=reason,
        noise_note=_noise_note(change, policy.threshold),
        processes=(entry.processes, current.processes) if current.processes else None,
    )


def compare_against(against: BaseSide, current: Current, policy: Policy) -> Verdict:
    """Judge ``current`` against the same benchmark at a revision, measured beside it.

    Pair by pair: the two instances of a pair were alive together and took turns, block by
    block, so whatever the host did during the pair (its speed moves by a quarter between
    spells of seconds on a shared VM, a neighbour streams memory) slowed both alike, and the
    change is the Hodges-Lehmann estimate of the pairs' ratios
    (:func:`~pytest_edgetpu.core.stats.paired_shift`). Unchanged code measured this way resolved a
    change about twice as finely on a quiet host, and three times beside memory-streaming
    neighbours, as the shift of each side's fastest instances did
    (``benchmarks/experiments/pair_blocks.py``: the interval's median half-width 3.3% -> 1.8%, and
    10.9% -> 3.7%). The threshold and the confidence rules are :func:`compare`'s. Interleaving
    gives both sides the same moments of the host, busy or quiet, so there is no BUSY here."""
    base = Verdict(
        status=Status.NO_BASELINE,
        metric=current.metric,
        current_ms=current.value_ms,
        device_words=current.device_words,
        baseline_path=Path(against.where),
        against=against.revision,
    )
    if isinstance(against, NotCompared):
        return replace(base, reason=against.why)
    if against.pairs != len(current.instance_values_ms):
        return replace(base, reason=f"nothing measured at {against.revision}")
    change = paired_shift(against.instance_values_ms, current.instance_values_ms, policy.confidence)
    status, reason = decide(change, policy.threshold)
    if status is Status.IMPROVED:
        reason = f"faster than at {against.revision}"
    model_changed = _model_changed(against.model_sha256, current.model_sha256)
    if model_changed:
        old, new = against.model_sha256 or "", current.model_sha256 or ""
        status, reason = _flag_model_change(
            status, reason, f"model changed since {against.revision}: {old[:8]} -> {new[:8]}"
        )
    return replace(
        base,
        status=status,
        baseline_ms=against.summary.value(current.metric),
        change=change,
        compared_baseline_ms=statistics.median(against.instance_values_ms),
        compared_current_ms=statistics.median(current.instance_values_ms),
        model_changed=model_changed,
        baseline_sha256=against.model_sha256,
        reason=reason,
        noise_note=_noise_note(change, policy.threshold),
        pairs=against.pairs,
        process_pairs=against.in_processes,
    )


def _contention_explains(
    change: Shift, threshold: float, entry: BaselineEntry, current: Current
) -> str:
    """Why the host's contention explains a slowdown ("" when it does not).

    A thread that waited for a CPU a share ``w`` of its time ran ``1 / (1 - w)`` times slower
    than it would have on a quiet core; against a baseline recorded at ``w0``, waiting explains
    a slowdown of up to ``(1 - w0) / (1 - w)``. A slowdown whose interval lies wholly beyond
    that, by more than the threshold, is not explained: it stays a regression. An entry that
    recorded no wait share counts as recorded on a quiet host."""
    now, then = current.wait_share, entry.run_queue_wait or 0.0
    if now is None or now - then < BUSY_EXTRA_WAIT:
        return ""
    explained = (1.0 - then) / (1.0 - now) if now < 1.0 else math.inf
    if 1.0 + change.low > explained * (1.0 + threshold):
        return ""
    return (
        f"the host was busy: the benchmark thread waited for a CPU {now:.0%} of its timed "
        f"loops (the baseline's {then:.0%}), which explains a slowdown of up to "
        f"{explained - 1:+.0%}; run again on a quiet host, or gate with --edgetpu-against"
    )


def why_incomparable(
    entry: BaselineEntry, metric: str, num_threads: int, workers: int, in_processes: bool
) -> str:
    """What keeps a measurement of ``metric`` with ``num_threads`` threads and ``workers``
    parallel workers, ``in_processes`` (fresh ones) or in this one, from being compared with
    ``entry`` ("" when nothing does)."""
    if entry.metric != metric:
        return f"the baseline gates {entry.metric}, the test now gates {metric}"
    if entry.num_threads != num_threads:
        return f"the baseline ran {entry.num_threads} thread(s), this run {num_threads}"
    if entry.workers != workers:
        # Parallel workers slow each other down: never compare across concurrency.
        return (
            f"the baseline was recorded with {_workers_words(entry.workers)}, this run has "
            f"{_workers_words(workers)}"
        )
    if bool(entry.processes) != in_processes:
        # A small callable's or model's speed moves with its process by several percent: a
        # figure of one process against figures of fresh ones would read that offset as a change.
        then = f"in {entry.processes} fresh processes" if entry.processes else "in one process"
        now = "in fresh processes" if in_processes else "in its own process only"
        return (
            f"the baseline was measured {then}, this run {now} (a benchmark's speed moves with "
            "the process it runs in)"
        )
    return ""


def _workers_flag(workers: int) -> str:
    return f" -n {workers}" if workers > 1 else ""


def _workers_words(workers: int) -> str:
    return f"-n {workers}" if workers > 1 else "1 worker (no -n)"


def recordable(status: Status, *, accept_unstable: bool) -> bool:
    """Whether a measurement judged ``status`` may replace its baseline entry: an UNSTABLE one
    cannot tell whether the old entry is still right, and a BUSY one was slowed by the host;
    replacing the entry would bake noise into the baseline, unless the user says so (an update
    run's --edgetpu-accept-unstable, ``accept --accept-unstable``)."""
    return status not in (Status.UNSTABLE, Status.BUSY) or accept_unstable


def settle_rule(policy: Policy, *, paired: bool = False, processes: bool = False) -> SettleRule:
    """When a comparison under ``policy`` is settled before the measurement ends: the change's
    interval lies wholly in one of the bands that :func:`decide` tells apart, at or beyond the
    point from which a slowdown counts (nothing more could clear it), within that point either
    way (unchanged), or at or below the point from which a speedup counts. An interval that
    reaches from "unchanged" into "faster" is not settled either: stopped there, unchanged code
    would be called ``IMPROVED`` more often than a whole measurement calls it (seen in relative
    mode beside memory neighbours). Replayed on recorded gate runs, stopping once settled from
    the eighth instance on decided as the whole measurements did
    (``benchmarks/experiments/replay.py``). ``paired``: the values are interleaved pairs', judged
    as :func:`compare_against` does; ``processes``: each side's values are processes', all of
    them compared, and an interval wholly below the counting point is settled too: a host now
    a few percent faster than at the recording puts unchanged code's interval across the
    speedup's, and more processes could tell only ``PASS`` from ``IMPROVED``."""
    counted = policy.threshold * COUNTS_FROM

    def settled(baseline_ms: Sequence[float], current_ms: Sequence[float]) -> Settled | None:
        change = _change_so_far(baseline_ms, current_ms, policy, paired, processes)
        if change is None:
            return None
        interval = f"settled: the change's {change.confidence:.0%} CI "
        interval += format_interval(change.low, change.high)
        if change.low >= counted:
            return Settled(f"{interval} lies beyond {counted:+.1%}", slower=True)
        if -counted < change.low and change.high < counted:
            return Settled(f"{interval} lies within ±{counted:.1%}", slower=False)
        if change.high <= -counted:
            return Settled(f"{interval} lies below {-counted:+.1%}", slower=False)
        if processes and change.high < counted:
            return Settled(f"{interval} lies below {counted:+.1%}: no slowdown", slower=False)
        return None

    return settled


def suspect_rule(policy: Policy, *, paired: bool = False) -> SuspectRule:
    """Whether a comparison under ``policy`` would be ``UNSTABLE`` if it ended now: a change
    that counts as a slowdown, in an interval that still reaches down to no change (``paired``:
    as :func:`settle_rule`)."""

    def suspects(baseline_ms: Sequence[float], current_ms: Sequence[float]) -> bool:
        change = _change_so_far(baseline_ms, current_ms, policy, paired, False)
        return change is not None and decide(change, policy.threshold)[0] is Status.UNSTABLE

    return suspects


def _change_so_far(
    baseline_ms: Sequence[float],
    current_ms: Sequence[float],
    policy: Policy,
    paired: bool,
    processes: bool,
) -> Shift | None:
    """The change a measurement shows so far, as its verdict would estimate it; None before
    either side has the two values an interval needs."""
    if len(baseline_ms) < 2 or len(current_ms) < 2:
        return None
    if paired:
        return paired_shift(baseline_ms, current_ms, policy.confidence)
    base, current = compared_values(baseline_ms, processes), compared_values(current_ms, processes)
    return shift(base, current, policy.confidence)


def _noise_note(change: Shift, threshold: float) -> str:
    resolution = change.resolution
    # An interval wholly below the counting point has resolved what the gate asks.
    if resolution <= threshold or change.high < threshold * COUNTS_FROM:
        return ""
    return (
        f"the threshold {threshold:.1%} is finer than this measurement resolves "
        f"(±{resolution:.1%}); raise it to at least {math.ceil(resolution * 100)}% or "
        "measure longer (max_time)"
    )


def confirm(first: Verdict, second: Verdict) -> Verdict:
    """Combine a suspected regression with the verdict of an independent re-measurement.

    Only a regression seen twice fails; a suspicion the second measurement contradicts passes,
    and one it can neither confirm nor refute is ``UNSTABLE``.
    """
    if first.status is not Status.REGRESSION:
        return first
    first_words = f"first measurement {_estimate(first)}"
    if second.status is Status.REGRESSION:
        return replace(
            second, confirmed=True, reason=_join(second.reason, f"{first_words}, confirmed")
        )
    return replace(
        second, reason=_join(second.reason, f"{first_words} not confirmed by a second one")
    )


def _estimate(verdict: Verdict) -> str:
    return f"{verdict.change.estimate:+.1%}" if verdict.change else "?"


def _model_changed(before: str | None, now: str | None) -> bool:
    """Whether the timed model differs from the one compared with (unknown: not changed)."""
    return bool(before and now and before != now)


def _flag_model_change(status: Status, reason: str, words: str) -> tuple[Status, str]:
    """A verdict on a changed model: an unchanged latency is ``MODEL_CHANGED``, and every
    verdict names the change (``words``)."""
    return (Status.MODEL_CHANGED if status is Status.PASS else status), _join(reason, words)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


#: ``git bisect run``'s exit status for a commit that cannot be tested.
BISECT_SKIP = 125


def bisect_exit(statuses: Collection[Status], failed: bool, completed: bool) -> int:
    """The exit status ``git bisect run`` should see for a commit judged against the good one:
    1 (bad) on a regression; 125 (skip) when the run did not complete, a test failed for
    another reason, nothing was compared, or a benchmark was undecided (``UNSTABLE``, ``BUSY``)
    or not compared (``NO_BASELINE``, ``INCOMPARABLE``); else 0 (good). A commit is called
    bad only on a confirmed regression, and good only when every benchmark was decided."""
    if Status.REGRESSION in statuses:
        return 1
    undecided = {Status.UNSTABLE, Status.BUSY, Status.NO_BASELINE, Status.INCOMPARABLE}
    if not completed or failed or not statuses or undecided & set(statuses):
        return BISECT_SKIP
    return 0
