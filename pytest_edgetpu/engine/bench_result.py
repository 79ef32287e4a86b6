"""What one ``tpu_bench`` call measured, as the engine hands it to the judge.

A :class:`BenchResult` is the engine's side of a result: the figures, the phases, the models
it timed and how they map to the device. The judge turns it into a
:class:`~pytest_edgetpu.judge.results.Result` with a verdict.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

from ..core.stats import Summary
from ..device.delegation import Delegation
from ..device.discovery import Thermal
from ..model.inspection import EDGETPU_CUSTOM_OP, ModelInfo
from .against import BaseSide
from .host_reference import HostReading
from .measurement import Measurement
from .memory import MemoryUse

__all__ = ["BenchResult", "mapping_note"]


def mapping_note(info: ModelInfo) -> str | None:
    """The flag for a model the Edge TPU compiler mapped only in part; None otherwise."""
    if not info.partially_mapped:
        return None
    counts = Counter(op for op in info.operators if op != EDGETPU_CUSTOM_OP)
    names = ", ".join(f"{n} {op}" for op, n in sorted(counts.items()))
    return (
        f"{info.path.name} is only partly mapped to the Edge TPU: {info.edgetpu_ops} TPU "
        f"subgraph(s), {info.cpu_ops} op(s) left on the CPU ({names}); those run on the host "
        "between TPU calls, so host load and num_threads change this latency (the "
        "edgetpu_compiler log says why each op was not mapped)"
    )


@dataclass(frozen=True)
class BenchResult:
    """What one ``tpu_bench`` call measured.

    ``timed`` is False for the untimed smoke run without ``--edgetpu``: the figures are then
    one steady inference (n = 1), enough for a sanity budget, never gated.
    """

    target: str  # the model path, or the callable's name
    device_id: str
    metric: str
    num_threads: int
    timed: bool
    summary: Summary
    load_ms: float
    first_inference_ms: float
    warmup_ms: float
    instance_values_ms: tuple[float, ...]
    model: ModelInfo | None
    measurement: Measurement | None
    delegate_load_ms: float | None = None
    """How long opening the Edge TPU delegate took, once per session, outside every phase."""
    thermal: Thermal | None = None
    callable_models: tuple[ModelInfo, ...] = ()
    """The models a timed callable runs (those loaded with ``edgetpu.load`` before it)."""
    against: BaseSide | None = None
    """Relative mode: the same benchmark at the revision, measured in pairs with this one."""
    delegations: tuple[Delegation | None, ...] = ()
    """For each of :attr:`models`, which of its operators the device's delegate ran (None
    where the runtime does not say)."""
    memory: MemoryUse | None = None
    """A model's memory per phase (not a callable's), measured in fresh processes."""
    processes: int = 0
    """How many fresh processes measured it, each one of :attr:`instance_values_ms` (a callable
    against stored baselines); 0: measured in this process."""
    not_in_processes: str | None = None
    """Why a callable was measured in this process instead of fresh ones."""
    host_reading: HostReading | None = None
    """The host's reference workload timed in the processes that measured it, where it was
    asked for (an update run, the confirmation of a suspected regression)."""

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        """Every model this result timed: the model, or the callable's models."""
        return (self.model,) if self.model is not None else self.callable_models

    @property
    def model_sha256(self) -> str | None:
        """What identifies the timed models, so that swapping one is a MODEL_CHANGED: the
        model's digest, or for a callable of several models the digest of theirs, sorted."""
        digests = sorted(model.sha256 for model in self.models)
        if len(digests) <= 1:
            return digests[0] if digests else None
        return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()

    @property
    def n(self) -> int:
        return self.summary.n

    @property
    def p50_ms(self) -> float:
        return self.summary.p50_ms

    @property
    def p90_ms(self) -> float:
        return self.summary.p90_ms

    @property
    def p99_ms(self) -> float:
        return self.summary.p99_ms

    @property
    def mean_ms(self) -> float:
        return self.summary.mean_ms

    @property
    def min_ms(self) -> float:
        return self.summary.min_ms

    @property
    def max_ms(self) -> float:
        return self.summary.max_ms

    @property
    def stdev_ms(self) -> float:
        return self.summary.stdev_ms

    @property
    def throughput_per_s(self) -> float:
        return self.summary.throughput_per_s

    @property
    def wait_share(self) -> float | None:
        """How contended the host was: the share of its timed loops the benchmark thread
        waited for a CPU (:mod:`pytest_edgetpu.engine.contention`); None when untimed or unknown."""
        return self.measurement.wait_share if self.measurement is not None else None

    @property
    def value_ms(self) -> float:
        """The gating metric's figure."""
        return self.summary.value(self.metric)

    @property
    def notes(self) -> tuple[str, ...]:
        """What a reader of the report must know about this result: a partly mapped model,
        a throttled chip, a callable measured in this process instead of fresh ones, a host
        reading its processes could not take."""
        no_reference = self.measurement.no_reference if self.measurement is not None else None
        notes = (
            mapping_note(self.model) if self.model is not None else None,
            self.thermal.note if self.thermal is not None else None,
            self.not_in_processes,
            no_reference,
        )
        return tuple(note for note in notes if note)
