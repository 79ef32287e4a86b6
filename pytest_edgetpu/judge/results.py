"""The result of one measured test: frozen, typed objects from the judge to every output.

Two kinds, so that which one a function handles is its signature, not an assertion:

* :class:`SmokeResult`: a ``tpu_bench`` call run untimed (no ``--edgetpu``): the model loaded
  and ran, once; nothing is judged.
* :class:`TimedResult`: a measurement and its :class:`~pytest_edgetpu.judge.verdict.Verdict`,
  with the baseline entry it was compared with and the one an update writes.

The gate (:mod:`pytest_edgetpu.judge.gate`) makes them; the terminal table, the Markdown
report, JUnit properties, plots and the CLI read them; :mod:`pytest_edgetpu.judge.results_file`
turns them into JSON and back at the boundaries (the ``--edgetpu-json`` file, an xdist
worker's payload).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypedDict

from ..core.stats import Summary, pooled_quantiles_ms
from ..device.delegation import Delegation
from ..device.discovery import Thermal
from ..engine.against import BaseSide
from ..engine.memory import MemoryUse, MemoryVerdict
from .baselines import BaselineEntry
from .verdict import Current, Verdict

if TYPE_CHECKING:
    from ..engine.bench_result import BenchResult

__all__ = [
    "QUANTILE_LEVELS",
    "ModelFacts",
    "ModelRef",
    "Phases",
    "Result",
    "ResultFields",
    "SmokeResult",
    "TimedResult",
    "current_of",
]

#: The levels of a result's ``quantiles_ms``: 0%, 5%, ..., 100% of the pooled per-invoke
#: samples, enough to draw the distribution (``--edgetpu-plot``) without keeping every sample.
QUANTILE_LEVELS = tuple(i / 20 for i in range(21))


@dataclass(frozen=True)
class Phases:
    """How long each phase before the timed invokes took, in milliseconds."""

    load_ms: float
    first_inference_ms: float
    warmup_mean_ms: float
    #: Once per session, before the first test: never part of the phases above.
    delegate_load_ms: float | None = None


@dataclass(frozen=True)
class ModelRef:
    """One model a timed callable runs, by path and digest."""

    path: str
    sha256: str


@dataclass(frozen=True)
class ModelFacts:
    """The timed model (or a callable's models together): where, which, and how it maps."""

    path: str  # the paths, comma-separated, for a callable of several models
    sha256: str | None
    #: One edgetpu-custom-op node per TPU subgraph: the compiler fuses the ops it maps.
    tpu_subgraphs: int
    cpu_ops: int
    partially_mapped: bool
    #: A callable's models, each by name and digest; None for a model timed on its own.
    models: tuple[ModelRef, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class Result:
    """What every result says: which test, what ran, on which device, and its figures."""

    #: Whether the test was measured (a :class:`TimedResult`) or only run (a :class:`SmokeResult`).
    timed: ClassVar[bool]

    test_id: str
    target: str  # the model path, or the callable's name
    device: str  # its id: "cpu:0", "usb:0"
    device_words: str  # "cpu (x86_64, LiteRT 2.3.0, 1 thread)"
    workers: int
    profile: str  # the device profile's key
    metric: str
    num_threads: int
    summary: Summary
    phases: Phases
    instance_values_ms: tuple[float, ...]
    notes: tuple[str, ...] = ()
    model: ModelFacts | None = None
    thermal: Thermal | None = None
    #: For each timed model the runtime could tell it of: which operators its delegate ran.
    delegations: tuple[Delegation, ...] = ()
    #: A model's memory per phase, measured in fresh processes; None where not measured.
    memory: MemoryUse | None = None

    @property
    def value_ms(self) -> float:
        """This run's figure of the gated metric."""
        return self.summary.value(self.metric)

    @property
    def status_words(self) -> str:
        """The verdict's status, ``RECORDED`` when an update recorded it, or ``untimed``."""
        return "untimed"


@dataclass(frozen=True, kw_only=True)
class SmokeResult(Result):
    """A ``tpu_bench`` call run without ``--edgetpu``: loaded and run once, never judged."""

    timed: ClassVar[bool] = False

    @classmethod
    def of(
        cls, test_id: str, result: BenchResult, *, device_words: str, workers: int, profile: str
    ) -> SmokeResult:
        return cls(**_common(test_id, result, device_words, workers, profile))


@dataclass(frozen=True, kw_only=True)
class TimedResult(Result):
    """One measurement, its verdict, and what an update records of it."""

    timed: ClassVar[bool] = True

    verdict: Verdict
    #: What an update writes for this test.
    baseline_entry: BaselineEntry
    #: The baseline entry the verdict compared with; None when nothing was compared.
    compared_entry: BaselineEntry | None = None
    recorded: bool = False
    #: Why a recordable entry was not written after all (its baseline file could not be).
    record_error: str | None = None
    #: Why the measurement stopped, how long it took, its pooled quantiles.
    stop_reason: str | None = None
    elapsed_s: float | None = None
    quantiles_ms: tuple[float, ...] | None = None
    #: How contended the host was: the share of the timed loops the benchmark thread waited
    #: for a CPU (:mod:`pytest_edgetpu.engine.contention`); None when unknown.
    run_queue_wait: float | None = None
    #: Relative mode: the same benchmark at the revision, measured in pairs with this one.
    against: BaseSide | None = None
    #: The memory verdict against the baseline entry's figures; None where none was made.
    memory_verdict: MemoryVerdict | None = None
    #: The compile structure verdict of the Edge TPU model(s) it timed ("" where none).
    structure: str = ""

    @property
    def status_words(self) -> str:
        return "RECORDED" if self.recorded else self.verdict.status.value

    @classmethod
    def of(
        cls,
        test_id: str,
        result: BenchResult,
        *,
        device_words: str,
        workers: int,
        profile: str,
        verdict: Verdict,
        baseline_entry: BaselineEntry,
        compared_entry: BaselineEntry | None,
        recorded: bool,
        memory_verdict: MemoryVerdict | None,
        structure: str = "",
    ) -> TimedResult:
        """The result of one timed ``tpu_bench`` measurement and what the gate made of it."""
        measurement = result.measurement
        quantiles = None
        if measurement is not None:
            pooled = [s for inst in measurement.instances for s in inst.samples_ns]
            quantiles = pooled_quantiles_ms(pooled, QUANTILE_LEVELS)
        return cls(
            **_common(test_id, result, device_words, workers, profile),
            verdict=verdict,
            baseline_entry=baseline_entry,
            compared_entry=compared_entry,
            recorded=recorded,
            stop_reason=measurement.stop_reason if measurement is not None else None,
            elapsed_s=measurement.elapsed_s if measurement is not None else None,
            quantiles_ms=quantiles,
            run_queue_wait=result.wait_share,
            against=result.against,
            memory_verdict=memory_verdict,
            structure=structure,
        )


class ResultFields(TypedDict):
    """The fields every kind of result has, to build one from (its measurement, its JSON)."""

    test_id: str
    target: str
    device: str
    device_words: str
    workers: int
    profile: str
    metric: str
    num_threads: int
    summary: Summary
    phases: Phases
    instance_values_ms: tuple[float, ...]
    notes: tuple[str, ...]
    model: ModelFacts | None
    thermal: Thermal | None
    delegations: tuple[Delegation, ...]
    memory: MemoryUse | None


def _common(
    test_id: str, result: BenchResult, device_words: str, workers: int, profile: str
) -> ResultFields:
    """The fields every result takes from its measurement."""
    return ResultFields(
        test_id=test_id,
        target=result.target,
        device=result.device_id,
        device_words=device_words,
        workers=workers,
        profile=profile,
        metric=result.metric,
        num_threads=result.num_threads,
        summary=result.summary,
        phases=Phases(
            load_ms=result.load_ms,
            first_inference_ms=result.first_inference_ms,
            warmup_mean_ms=result.warmup_ms,
            delegate_load_ms=result.delegate_load_ms,
        ),
        instance_values_ms=result.instance_values_ms,
        notes=result.notes,
        model=_model_facts(result),
        thermal=result.thermal,
        delegations=tuple(d for d in result.delegations if d is not None),
        memory=result.memory,
    )


def _model_facts(result: BenchResult) -> ModelFacts | None:
    models = result.models
    if not models:
        return None
    return ModelFacts(
        path=", ".join(os.fspath(m.path) for m in models),
        sha256=result.model_sha256,
        tpu_subgraphs=sum(m.edgetpu_ops for m in models),
        cpu_ops=sum(m.cpu_ops for m in models),
        partially_mapped=any(m.partially_mapped for m in models),
        models=(
            tuple(ModelRef(os.fspath(m.path), m.sha256) for m in models)
            if result.model is None
            else None
        ),
    )


def current_of(result: TimedResult) -> Current:
    """What a verdict needs, from a timed result (its reader checked the figures)."""
    return Current(
        metric=result.metric,
        value_ms=result.value_ms,
        instance_values_ms=result.instance_values_ms,
        num_threads=result.num_threads,
        workers=result.workers,
        device_words=result.device_words,
        model_sha256=result.model.sha256 if result.model is not None else None,
        wait_share=result.run_queue_wait,
        processes=result.baseline_entry.processes,
        # The host's reading the gate judged it beside, where it took one.
        host_reference=result.baseline_entry.host_reference,
    )
