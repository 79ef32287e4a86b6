"""One ``tpu_bench`` call measured: what it times, its side at the revision, and the same
measurement again when a suspected regression needs confirming.

The fixture (:class:`~pytest_edgetpu.fixtures.TpuBench`) finds what to time and turns errors
into test outcomes; this module, free of pytest, measures. Stored-baseline mode measures the
call alone, stopping early once the gate's verdict is settled; relative mode measures it in
interleaved pairs with its side at the revision (the model file there, or the test's own code
run by the helper), or alone when there is no such side, saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .core.errors import FailedAtRevisionError
from .engine.against import Base, NotCompared
from .model.inspection import ModelInfo

if TYPE_CHECKING:
    from .config import TestSettings
    from .engine.bench_result import BenchResult
    from .engine.measurement import EarlyStop, MeasureSettings
    from .engine.session import DeviceSession, FreshProcess, LoadedModel
    from .engine.timing import StartInstance
    from .run import BenchRun

__all__ = ["BenchCall"]

#: What a call times: a model (by its inspected file) or the user's callable.
Timed = ModelInfo | Callable[[], object]


@dataclass(frozen=True)
class BenchCall:
    """Call number ``call`` of test ``node_id`` (its measurement ``key``), timing ``timed``
    on ``session``; a callable's ``models`` are the ones the test loaded before it."""

    run: BenchRun
    session: DeviceSession
    settings: TestSettings
    node_id: str
    call: int
    key: str
    timed: Timed
    models: Sequence[LoadedModel]

    @property
    def measure_settings(self) -> MeasureSettings | None:
        """How to measure; None for the untimed smoke run (no ``--edgetpu``, or a relative-mode
        helper, whose calls the other side measures on command)."""
        if not self.run.settings.enabled or self.run.serving is not None:
            return None
        return self.settings.measure

    def measure(self, confirming: bool = False) -> BenchResult:
        """Measure the call (a ``confirming`` measurement re-measures a suspected regression);
        in relative mode, in pairs with its side at the revision."""
        __tracebackhide__ = True  # an exception in the user's callable shows their frames
        base = self._base()
        if isinstance(base, NotCompared):
            return replace(self._timed(None, None), against=base)
        if base is None:
            return self._alone(confirming)
        try:
            return self._timed(base, self._early_stop(paired=True, confirming=confirming))
        except FailedAtRevisionError as error:
            # The test's own code failed at the revision mid-way, as it may before: measured
            # alone. The machinery failing instead (a RevisionError) fails the test.
            return replace(
                self._timed(None, None),
                against=NotCompared(base.revision, base.where, str(error)),
            )

    def _alone(self, confirming: bool) -> BenchResult:
        """Measured against a stored baseline, or recording one: in fresh processes that run its
        test (a model's speed, like a callable's, moves with its process: a microsecond model
        recorded in one and gated in another read +30%, ``benchmarks/process_stored.py``), so
        both sides count processes."""
        __tracebackhide__ = True
        fresh = self._fresh_processes()
        if fresh is not None:
            early = self._early_stop(paired=False, confirming=confirming, in_processes=True)
            try:
                return self._timed(None, early, fresh)
            except FailedAtRevisionError as error:
                why = f"measured in this process, not in fresh ones: {error}"
            # The test's own code did not run there as here: measured here instead, saying why
            # (a baseline measured in fresh processes is then not compared, and the test's own
            # error, if that was it, shows here, unchained). A helper that dies (a
            # RevisionError) is the machinery's failure: the test fails.
            alone = self._timed(None, self._early_stop(paired=False, confirming=confirming))
            return replace(alone, not_in_processes=why)
        return self._timed(None, self._early_stop(paired=False, confirming=confirming))

    def _fresh_processes(self) -> FreshProcess | None:
        """Fresh processes for the call, where a second process can open its device (an Edge
        TPU, an external delegate's accelerator or a GPU is open in one process at a time)
        and the run did not ask for this one (``--edgetpu-processes=one``), timing the host's
        reference workload too where the gate will need it; None: measured in this process."""
        if (
            self.measure_settings is None
            or self.session.device.exclusive
            or not self.run.settings.fresh_processes
        ):
            return None
        reference = self.run.gate.reads_host_in_processes(self.key)
        return self.run.fresh.call(self.node_id, self.call, reference=reference)

    def instances(self) -> StartInstance:
        """Makes fresh instances of what the call times (a relative-mode helper serves them)."""
        if isinstance(self.timed, ModelInfo):
            return self.session.model_instances(self.timed)
        return self.session.callable_instances(self.timed, self.models)

    def _base(self) -> Base | NotCompared | None:
        relative = self.run.relative if self.measure_settings is not None else None
        if relative is None:
            return None
        if isinstance(self.timed, ModelInfo):
            return relative.model(self.session, self.timed, self.node_id, self.call)
        return relative.test_call(self.session, self.node_id, self.call)

    def _timed(
        self, base: Base | None, early: EarlyStop | None, fresh: FreshProcess | None = None
    ) -> BenchResult:
        __tracebackhide__ = True
        settings = self.measure_settings
        if isinstance(self.timed, ModelInfo):
            return self.session.bench_model(self.timed, settings, base, early, fresh)
        return self.session.bench_callable(self.timed, self.models, settings, base, early, fresh)

    def _early_stop(
        self, *, paired: bool, confirming: bool, in_processes: bool = False
    ) -> EarlyStop | None:
        settings = self.measure_settings
        if settings is None:
            return None
        return self.run.gate.early_stop(
            self.key,
            self.settings.threshold.value,
            settings.metric,
            self.settings.num_threads,
            paired=paired,
            confirming=confirming,
            in_processes=in_processes,
        )
