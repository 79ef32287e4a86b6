"""The gate: a measurement in, a :class:`~pytest_edgetpu.judge.results.Result` out.

It looks the test's baseline up, compares, re-measures once to confirm a suspected regression,
applies the update rule (what an update run may record), and says which baseline entry it
compared with. It decides; it writes nothing (see :mod:`pytest_edgetpu.judge.collector`).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.stats import BASELINE_FIGURES
from ..device.profile import Profile
from ..engine.contention import CONTENDED_SHARE
from ..engine.memory import MemoryPolicy, MemoryUse, MemoryVerdict, compare_memory
from ..engine.session import BenchResult
from ..engine.station import Station
from ..engine.timing import EarlyStop
from .baselines import BaselineEntry, BaselineStore, Lookup
from .compare import (
    Against,
    Current,
    Policy,
    Status,
    Verdict,
    compare,
    compare_against,
    confirm,
    recordable,
    settle_rule,
    suspect_rule,
    why_incomparable,
)
from .results import Result

__all__ = ["Gate", "Pending", "judge_memory"]


@dataclass(frozen=True)
class Pending:
    """A measurement waiting for its verdict at the end of its test."""

    key: str  # the test id; ``test_x#2`` for a test's second measurement
    result: BenchResult
    threshold: float
    remeasure: Callable[[], BenchResult]


def _only_workers_differ(one: Profile, other: Profile) -> bool:
    def without(profile: Profile) -> dict[str, str]:
        return {k: v for k, v in profile.fields.items() if k != "workers"}

    return one != other and without(one) == without(other)


class Gate:
    """Judges this process's measurements against the stored baselines."""

    def __init__(
        self,
        station: Station,
        store: BaselineStore,
        *,
        strict: bool,
        update: bool,
        accept_unstable: bool,
        display: Callable[[Path], Path],
        memory_policy: MemoryPolicy | None = None,
    ) -> None:
        self.station = station
        self.store = store
        self.strict = strict
        self.update = update
        self.accept_unstable = accept_unstable
        self.display = display
        self.memory_policy = memory_policy or MemoryPolicy()

    def judge(self, pending: Pending) -> Result:
        """The verdict of ``pending``'s measurement (none when it was not timed)."""
        result = pending.result
        profile = self.station.profile
        words, workers = self.station.words(result.num_threads), self.station.workers
        if not result.timed:
            return Result.measured(
                pending.key, result, device_words=words, workers=workers, profile=profile.key
            )
        policy = Policy(threshold=pending.threshold, strict=self.strict)
        lookup = self._lookup(pending.key, profile) if result.against is None else None

        def verdict_of(measured: BenchResult) -> Verdict:
            if lookup is not None:
                return compare(lookup, self._current(measured), policy)
            assert measured.against is not None, "a relative measurement is remeasured alike"
            return compare_against(measured.against, self._current(measured), policy)

        verdict = verdict_of(result)
        if verdict.status is Status.REGRESSION and not self.update:
            result = pending.remeasure()
            verdict = confirm(verdict, verdict_of(result))
        if result.thermal is not None and result.thermal.note:
            reason = "; ".join(r for r in (verdict.reason, result.thermal.note) if r)
            verdict = replace(verdict, reason=reason)
        wait = result.wait_share
        if self.update and wait is not None and wait >= CONTENDED_SHARE:
            # A baseline serves every later run: one taken on a busy host is not kept.
            verdict = replace(
                verdict,
                status=Status.BUSY,
                reason=(
                    f"the host was busy while recording: the benchmark thread waited for a CPU "
                    f"{wait:.0%} of its timed loops; record again on a quiet host"
                ),
            )
        recorded = self.update and recordable(verdict.status, accept_unstable=self.accept_unstable)
        return Result.measured(
            pending.key,
            result,
            device_words=words,
            workers=workers,
            profile=profile.key,
            verdict=verdict,
            compared_entry=lookup.entry if lookup and verdict.baseline_ms is not None else None,
            baseline_entry=self._entry(result),
            recorded=recorded,
            memory_verdict=self._memory_verdict(result, lookup, words),
        )

    def early_stop(
        self,
        key: str,
        threshold: float,
        metric: str,
        num_threads: int,
        *,
        paired: bool,
        confirming: bool,
    ) -> EarlyStop | None:
        """How the measurement of ``key`` may stop once its verdict is settled: against the
        base side it is measured beside (``paired``), or against the stored entry it will be
        judged against; None where nothing will be compared, or in an update run, which records
        for every later comparison and measures to full precision."""
        if self.update:
            return None
        policy = Policy(threshold=threshold, strict=self.strict)
        if paired:
            # Interleaving already gives both sides the host's busy moments alike: a suspected
            # slowdown is worth more pairs, not a verdict of noise.
            return EarlyStop(
                settle_rule(policy, paired=True),
                confirming=confirming,
                suspects=suspect_rule(policy, paired=True),
            )
        rule = settle_rule(policy)
        entry = self.store.lookup(key, self.station.profile).entry
        if entry is None or why_incomparable(entry, metric, num_threads, self.station.workers):
            return None
        return EarlyStop(rule, entry.instance_values_ms, confirming)

    def _memory_verdict(
        self, result: BenchResult, lookup: Lookup | None, words: str
    ) -> MemoryVerdict | None:
        if self.update:  # an update records the figures; it judges none
            return None
        return judge_memory(result.memory, result.against, lookup, self.memory_policy, words)

    def _lookup(self, test_id: str, profile: Profile) -> Lookup:
        found = self.store.lookup(test_id, profile)
        # Name what differs, e.g. "link 'usb5000' vs 'usb480'": the usual surprise is a stick
        # that came up on USB 2.
        others = []
        for key in found.other_profiles:
            other = self.store.files.get(key)
            if other is not None and _only_workers_differ(other.profile, profile):
                recorded = other.profile.fields.get("workers", "1").split("-")[0]
                how = f"-n {recorded}" if recorded != "1" else "a serial run (no -n)"
                others.append(f"{key} (recorded with {how})")
                continue
            differences = other.profile.differences(profile) if other else []
            others.append(f"{key} ({', '.join(differences)})" if differences else key)
        return Lookup(self.display(found.path), found.entry, tuple(others))

    def _current(self, result: BenchResult) -> Current:
        return Current(
            metric=result.metric,
            value_ms=result.value_ms,
            instance_values_ms=result.instance_values_ms,
            num_threads=result.num_threads,
            workers=self.station.workers,
            device_words=self.station.words(result.num_threads),
            model_sha256=result.model_sha256,
            wait_share=result.wait_share,
        )

    def _entry(self, result: BenchResult) -> BaselineEntry:
        return BaselineEntry(
            metric=result.metric,
            instance_values_ms=result.instance_values_ms,
            summary_ms=result.summary.figures(BASELINE_FIGURES),
            load_ms=result.load_ms,
            first_inference_ms=result.first_inference_ms,
            num_threads=result.num_threads,
            workers=self.station.workers,
            recorded=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            model_sha256=result.model_sha256,
            model_path=", ".join(os.fspath(self.display(m.path)) for m in result.models) or None,
            environment={**self.station.environment, **_delegation_words(result)},
            run_queue_wait=result.wait_share,
            memory_kib=dict(result.memory.kib) if result.memory is not None else None,
        )


def judge_memory(
    memory: MemoryUse | None,
    against: Against | None,
    lookup: Lookup | None,
    policy: MemoryPolicy,
    words: str,
) -> MemoryVerdict | None:
    """The memory verdict of a measurement, in relative mode against the model file at the
    revision, else against the stored entry's figures; None when either side has none (an
    entry of an earlier version, a callable at the revision, a device the helper cannot open).
    ``words`` name the device in the message."""
    if memory is None:
        return None
    entry = lookup.entry if lookup is not None else None
    if against is not None and against.memory_kib:
        figures, what = against.memory_kib, f"against {against.revision}, measured now"
    elif entry is not None and entry.memory_kib and lookup is not None:
        figures = entry.memory_kib
        what = f"baseline {lookup.path} recorded {entry.recorded[:10]}"
    else:
        return None
    judged = compare_memory(figures, memory, policy)
    if not judged.failed:
        return judged
    return replace(judged, message=f"{judged.message}; on {words}; {what}")


def _delegation_words(result: BenchResult) -> dict[str, str]:
    """How the timed models ran on the delegate, for the baseline entry: a model whose
    delegate took fewer of its operators than when it was recorded is slower for that reason."""
    words = [d.words() for d in result.delegations if d is not None]
    return {"delegation": "; ".join(words)} if words else {}
