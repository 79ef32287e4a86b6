"""Memory per phase of one model, measured in fresh processes, and its verdict.

What benchmark_model reports as a model's memory footprint and pyperf as a benchmark's peak:
read from ``/proc/self/status`` around each phase of a model's life in a process that has done
nothing else since the runtime was imported (a child forked by the probe helper,
:mod:`pytest_edgetpu.engine.probe`), its high-water mark reset first (``/proc/self/clear_refs``), so
no earlier model's pages or peak count. For each phase, what it adds to resident memory
(``_rss``, ``VmRSS``) and to private, anonymous memory (``_anon``, ``RssAnon``: what the
process itself allocated, without the file pages of the model and the runtime's code):

``load``
    the interpreter's construction (the model read, its kernels resolved);
``allocate``
    ``allocate_tensors``: the tensor arena, and XNNPACK's packed weights, which it makes then;
``invoke``
    the first two inferences (scratch buffers made on first use);

and ``peak_rss``, the high-water mark of resident memory over all of it, above where it started.

Only the private figures are gated (:data:`GATED_PHASES`): resident memory also counts the
file pages the phase maps (the runtime's code, the model's file), and how many a fault maps
depends on how the page cache holds those files, not on the model. The example suite's
models in a fresh clone with a fresh virtualenv read ``load_rss`` 10,784 KiB where the
checkout that recorded them read 4,792, and ``peak_rss`` +7.4 MiB, every private figure within
8 KiB. The resident figures are measured and reported all the same.

Each figure is the median over :data:`MEMORY_RUNS` processes, with its spread (largest minus
smallest), so a report can say how stable it measured. Linux only; elsewhere no memory is
measured and none is gated.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

__all__ = [
    "GATED_PHASES",
    "MEMORY_PHASES",
    "MEMORY_RUNS",
    "MemoryPolicy",
    "MemoryUse",
    "MemoryVerdict",
    "compare_memory",
    "memory_readable",
    "phase_memory",
]

#: The figures, in the order a model's life reaches them.
MEMORY_PHASES: Final = (
    "load_rss",
    "load_anon",
    "allocate_rss",
    "allocate_anon",
    "invoke_rss",
    "invoke_anon",
    "peak_rss",
)
#: The figures a memory verdict judges: private memory, which the model's own allocations make.
GATED_PHASES: Final = ("load_anon", "allocate_anon", "invoke_anon")
#: Fresh processes per model: three give a median and a spread for little time (a fork each).
MEMORY_RUNS: Final = 3
_STEPS: Final = {
    "load": "loading the model",
    "allocate": "allocate_tensors",
    "invoke": "the first inferences",
}


def _words(figure: str) -> str:
    """``allocate_anon`` → ``private memory added by allocate_tensors``."""
    if figure == "peak_rss":
        return "peak resident memory"
    step, kind = figure.rsplit("_", 1)
    return f"{'private' if kind == 'anon' else 'resident'} memory added by {_STEPS[step]}"


T = TypeVar("T")


@dataclass(frozen=True)
class MemoryUse:
    """One model's memory per phase in KiB (the median of ``runs`` processes), and the spread
    of each figure over them."""

    kib: Mapping[str, float]
    spread_kib: Mapping[str, float]
    runs: int

    @classmethod
    def of_runs(cls, runs: Sequence[Mapping[str, float]]) -> MemoryUse | None:
        """The figures of several processes' measurements; None when there are none."""
        if not runs:
            return None
        return cls(
            kib={p: float(statistics.median(r[p] for r in runs)) for p in MEMORY_PHASES},
            spread_kib={
                p: max(r[p] for r in runs) - min(r[p] for r in runs) for p in MEMORY_PHASES
            },
            runs=len(runs),
        )


@dataclass(frozen=True)
class MemoryPolicy:
    """A figure regresses when it grew by more than ``relative`` of its baseline plus
    ``absolute_kib``: the share scales with the model; the KiB cover what moves whatever the
    model does: a page or two between processes, and a few hundred KiB when the process's own
    Python heap lands differently (a change to the plugin's code moved ``invoke_rss`` by 420 KiB
    and ``load_anon`` by 56 KiB, the model unchanged)."""

    relative: float = 0.10
    absolute_kib: float = 512.0


@dataclass(frozen=True)
class MemoryVerdict:
    """The memory verdict of one benchmark: ``regressed`` names each phase that grew beyond
    the tolerance; ``message`` says by how much, against what."""

    regressed: tuple[str, ...]
    message: str

    @property
    def failed(self) -> bool:
        return bool(self.regressed)


def compare_memory(
    baseline: Mapping[str, float], current: MemoryUse, policy: MemoryPolicy
) -> MemoryVerdict:
    """Judge ``current``'s private figures against a baseline entry's (phases it lacks are
    skipped)."""
    regressed, words = [], []
    for phase in GATED_PHASES:
        old, new = baseline.get(phase), current.kib[phase]
        if old is None:
            continue
        if new > old + policy.relative * abs(old) + policy.absolute_kib:
            regressed.append(phase)
            change = f"{(new - old) / old:+.1%}" if old > 0 else "from nothing"
            words.append(
                f"{phase} ({_words(phase)}) {old:,.0f} KiB -> {new:,.0f} KiB "
                f"(+{new - old:,.0f} KiB, {change}; spread over {current.runs} processes "
                f"{current.spread_kib[phase]:,.0f} KiB)"
            )
    if not regressed:
        return MemoryVerdict((), "")
    return MemoryVerdict(
        tuple(regressed),
        "MEMORY " + "; ".join(words) + f"; tolerance {policy.relative:.0%} + "
        f"{policy.absolute_kib:,.0f} KiB",
    )


@dataclass(frozen=True)
class _Status:
    rss_kib: int
    anon_kib: int
    peak_kib: int


def _status(path: Path = Path("/proc/self/status")) -> _Status:
    fields = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "VmHWM"):
            fields[name] = int(value.split()[0])
    return _Status(fields["VmRSS"], fields["RssAnon"], fields["VmHWM"])


def memory_readable() -> bool:
    """Whether this process can read its memory and reset its high-water mark (Linux 4.0+,
    unless a sandbox hides /proc)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _status()
    except (OSError, KeyError, ValueError, IndexError):
        return False
    return True


def phase_memory(
    build: Callable[[], T], allocate: Callable[[T], object], run: Callable[[T], object]
) -> dict[str, float]:
    """The figures of one model in this process: ``build`` makes its interpreter,
    ``allocate`` allocates its tensors, ``run`` runs its first inferences. Call it in a fresh
    process: what this process allocated before stays resident and counts against nothing,
    but what it freed would be reused and hide the model's own growth."""
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts here
    start = _status()
    interpreter = build()
    loaded = _status()
    allocate(interpreter)
    allocated = _status()
    run(interpreter)
    ran = _status()
    figures = {}
    for step, before, after in (
        ("load", start, loaded),
        ("allocate", loaded, allocated),
        ("invoke", allocated, ran),
    ):
        figures[f"{step}_rss"] = float(after.rss_kib - before.rss_kib)
        figures[f"{step}_anon"] = float(after.anon_kib - before.anon_kib)
    figures["peak_rss"] = float(ran.peak_kib - start.rss_kib)
    return figures
