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
from ..device.discovery import Thermal
from ..engine.against import Against, BaseSide
from ..engine.bench_result import BenchResult
from ..engine.contention import CONTENDED_SHARE
from ..engine.host_reference import HostReading, HostReference, kernel_name
from ..engine.measurement import EarlyStop
from ..engine.memory import MemoryPolicy, MemoryUse, MemoryVerdict, compare_memory
from ..engine.station import Station
from .baselines import BaselineEntry, BaselineStore, Lookup
from .compare import (
    compare,
    compare_against,
    confirm,
    recordable,
    settle_rule,
    suspect_rule,
    why_incomparable,
)
from .results import Result, SmokeResult, TimedResult
from .verdict import Current, Policy, Status, Verdict

__all__ = [
    "Gate",
    "Pending",
    "compared_entry",
    "final_verdict",
    "first_verdict",
    "judge_memory",
]


@dataclass(frozen=True)
class Pending:
    """A measurement waiting for its verdict at the end of its test."""

    key: str  # the test id; ``test_x#2`` for a test's second measurement
    result: BenchResult
    threshold: float
    remeasure: Callable[[], BenchResult]
    #: The compile structure verdict of the Edge TPU model(s) it timed, where one was gated:
    #: the latency verdict's line carries it.
    structure: str = ""


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
        host: HostReference | None = None,
    ) -> None:
        self.station = station
        self.store = store
        self.strict = strict
        self.update = update
        self.accept_unstable = accept_unstable
        self.display = display
        self.memory_policy = memory_policy or MemoryPolicy()
        # The host's speed, recorded with each entry and measured again where a slowdown is
        # suspected; None where the device is not the host's CPU.
        self.host = host

    def judge(self, pending: Pending) -> Result:
        """The verdict of ``pending``'s measurement (none when it was not timed)."""
        result = pending.result
        profile = self.station.profile
        words, workers = self.station.words(result.num_threads), self.station.workers
        if not result.timed:
            return SmokeResult.of(
                pending.key, result, device_words=words, workers=workers, profile=profile.key
            )
        policy = Policy(threshold=pending.threshold, strict=self.strict)
        lookup = None
        if result.against is None:
            found = self.store.lookup(pending.key, profile)
            lookup = replace(found, path=self.display(found.path))
        verdict, host = self._verdict(result, lookup, policy, confirmable=not self.update)
        if verdict.status is Status.REGRESSION and not self.update:
            result = pending.remeasure()
            second, host = self._verdict(result, lookup, policy)
            verdict = confirm(verdict, second)
        verdict = final_verdict(
            verdict,
            result.thermal,
            result.wait_share,
            update=self.update,
            structure=pending.structure,
        )
        recorded = self.update and recordable(verdict.status, accept_unstable=self.accept_unstable)
        return TimedResult.of(
            pending.key,
            result,
            device_words=words,
            workers=workers,
            profile=profile.key,
            verdict=verdict,
            compared_entry=compared_entry(verdict, lookup),
            baseline_entry=self._entry(result, host),
            recorded=recorded,
            structure=pending.structure,
            memory_verdict=(
                None  # an update records the figures; it judges none
                if self.update
                else judge_memory(result.memory, result.against, lookup, self.memory_policy, words)
            ),
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
        in_processes: bool = False,
    ) -> EarlyStop | None:
        """How the measurement of ``key`` may stop once its verdict is settled: against the
        base side it is measured beside (``paired``), or against the stored entry it will be
        judged against (measured ``in_processes``, fresh ones, or in this one); None where
        nothing will be compared, or in an update run, which records for every later comparison
        and measures to full precision."""
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
        rule = settle_rule(policy, processes=in_processes)
        entry = self.store.lookup(key, self.station.profile).entry
        workers = self.station.workers
        if entry is None or why_incomparable(entry, metric, num_threads, workers, in_processes):
            return None
        return EarlyStop(rule, entry.instance_values_ms, confirming)

    def reads_host_in_processes(self, key: str) -> bool:
        """Whether the fresh processes measuring ``key`` time the host's reference workload
        too (about 20 ms a process): in an update run, which records it, and in a gate against
        an entry that recorded it so, where it tells a slower host from slower code and says
        how much of a slowdown a faster host may hide."""
        if self.host is None:
            return False
        if self.update:
            return True
        entry = self.store.lookup(key, self.station.profile).entry
        recorded = entry.host_reference if entry is not None else None
        return recorded is not None and recorded.kernel == kernel_name(in_test_processes=True)

    def _verdict(
        self,
        result: BenchResult,
        lookup: Lookup | None,
        policy: Policy,
        *,
        confirmable: bool = False,
    ) -> tuple[Verdict, HostReading | None]:
        """The measurement's verdict before confirmation, and the host's reading it was judged
        beside (None: no reading was needed or taken). Against a stored entry that recorded the
        host's speed: beside the reading the measurement's processes took as it was recorded,
        except a ``confirmable`` regression, which a second measurement, with a reading of its
        own, confirms or not (a slower host that has passed by then is not ``BUSY``); a
        slowdown suspected without one is judged again beside one taken now."""
        current = self._current(result)
        verdict = first_verdict(current, result.against, lookup, policy)
        recorded = lookup.entry.host_reference if lookup and lookup.entry else None
        if recorded is None or result.against is not None:
            return verdict, None
        if result.host_reading is not None and result.host_reading.kernel == recorded.kernel:
            if confirmable and verdict.status is Status.REGRESSION:
                return verdict, None
            current = replace(current, host_reference=result.host_reading)
            return first_verdict(current, result.against, lookup, policy), result.host_reading
        if verdict.status in (Status.REGRESSION, Status.UNSTABLE):
            now = self._reading_of_its_own(recorded)
            if now is not None:
                current = replace(current, host_reference=now)
                verdict = first_verdict(current, result.against, lookup, policy)
        return verdict, current.host_reference

    def _reading_of_its_own(self, recorded: HostReading) -> HostReading | None:
        """The host's reading now in fresh interpreters of its own, where ``recorded`` was
        taken so; None elsewhere (a reading of another workload, Python or place is never
        compared)."""
        if self.host is not None and recorded.kernel == kernel_name():
            return self.host.reading()
        return None

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
            processes=result.processes,
        )

    def _entry(self, result: BenchResult, host: HostReading | None) -> BaselineEntry:
        """What an update records of ``result``, with the host's reading (an update records
        the one its processes took, else takes one; a gate run keeps the one its verdict was
        judged beside, so that ``diff`` judges the same and ``accept`` records it)."""
        if self.update:
            host = result.host_reading or (self.host.reading() if self.host else None)
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
            processes=result.processes,
            host_reference=host,
        )


def first_verdict(
    current: Current, against: BaseSide | None, lookup: Lookup | None, policy: Policy
) -> Verdict:
    """A measurement's verdict before confirmation: against the side measured beside it in
    relative mode, else against the stored entry ``lookup`` found (or did not find)."""
    if against is not None:
        return compare_against(against, current, policy)
    if lookup is None:
        raise ValueError("a stored-baseline verdict needs the lookup of its entry")
    return compare(lookup, current, policy)


def final_verdict(
    verdict: Verdict,
    thermal: Thermal | None,
    wait_share: float | None,
    *,
    update: bool,
    structure: str = "",
) -> Verdict:
    """``verdict`` with what the measurement's circumstances add: a throttled Edge TPU's note,
    the timed Edge TPU model's compile structure verdict (``structure``), and in an update run,
    ``BUSY`` for a measurement taken on a contended host."""
    notes = (thermal.note if thermal is not None else None, structure)
    if any(notes):
        verdict = replace(verdict, reason="; ".join(r for r in (verdict.reason, *notes) if r))
    if update and wait_share is not None and wait_share >= CONTENDED_SHARE:
        # A baseline serves every later run: one taken on a busy host is not kept.
        verdict = replace(
            verdict,
            status=Status.BUSY,
            reason=(
                f"the host was busy while recording: the benchmark thread waited for a CPU "
                f"{wait_share:.0%} of its timed loops; record again on a quiet host"
            ),
        )
    return verdict


def compared_entry(verdict: Verdict, lookup: Lookup | None) -> BaselineEntry | None:
    """The stored entry ``verdict`` compared with; None when it compared none."""
    return lookup.entry if lookup is not None and verdict.baseline_ms is not None else None


def judge_memory(
    memory: MemoryUse | None,
    against: BaseSide | None,
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
    if isinstance(against, Against) and against.memory_kib:
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
