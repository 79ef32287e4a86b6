"""Relative mode's other side, as the engine measures it: what to start, and what came of it.

:class:`Base` is the same benchmark at a git revision, to measure in interleaved pairs with this
one; :class:`Against` is what those pairs measured of it, :class:`NotCompared` why nothing could
be measured there. Light on purpose: the xdist controller reads results that carry an
:class:`Against` without importing the measuring engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.stats import Summary
    from .measurement import MeasureSettings
    from .memory import MemoryUse
    from .timing import StartSide

__all__ = ["Against", "Base", "BaseSide", "NotCompared"]


@dataclass(frozen=True)
class Base:
    """The same benchmark at a git revision, to measure in interleaved pairs with this one
    (relative mode): ``side`` starts an instance of it under given settings."""

    revision: str  # "origin/main (a1b2c3d)"
    where: str  # "origin/main:models/a.tflite"
    side: Callable[[MeasureSettings], StartSide]
    model_sha256: str | None = None
    memory: MemoryUse | None = None
    #: Both sides of the first of process pairs ``pairs`` (the current one first), each in a
    #: process of its own of one kind, the rest of ``pairs`` started with it, for a benchmark
    #: whose processes differ (a callable: its two sides would otherwise live in this
    #: long-lived process and a fresh helper); None: the current side is measured in this
    #: process, beside ``side``.
    process_pair: Callable[[range, MeasureSettings], tuple[StartSide, StartSide]] | None = None


@dataclass(frozen=True)
class Against:
    """Relative mode's baseline: the same benchmark at a git revision, measured in this run in
    pairs interleaved with the current one (``instance_values_ms[i]`` beside its ``i``-th)."""

    revision: str  # "origin/main (a1b2c3d)"
    where: str  # "origin/main:models/a.tflite", or the test at the revision
    summary: Summary
    instance_values_ms: tuple[float, ...]
    model_sha256: str | None = None
    #: The model file's memory per phase at the revision, in KiB, where it was measured.
    memory_kib: Mapping[str, float] | None = None
    #: Whether the pairs were pairs of processes (``instance_values_ms`` each process's).
    in_processes: bool = False

    @property
    def pairs(self) -> int:
        return len(self.instance_values_ms)


@dataclass(frozen=True)
class NotCompared:
    """Why a benchmark has no side at the revision: new since it, a model outside the
    repository, a test that fails or cannot run there, a helper that stopped mid-way."""

    revision: str
    where: str
    why: str


#: What relative mode measured of a benchmark at the revision, or why nothing.
BaseSide = Against | NotCompared
