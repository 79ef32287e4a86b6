"""How contended the host was while a measurement ran: the benchmark thread's run-queue wait.

The kernel counts, per thread, the time it ran on a CPU and the time it waited, runnable, for
one (``/proc/thread-self/schedstat``, fields 1 and 2). The share of a timed loop's wall time
spent waiting is what neighbours sharing the core take from it: a thread that waited a share
``w`` of the time ran ``1 / (1 - w)`` times slower than on a quiet core. Of the host signals
``benchmarks/experiments/contention_signals.py`` weighed it explains the slowdowns best
(correlation 0.98 with the slowdown when neighbours share the cores; CPU pressure, host-wide, 0.96;
steal and memory pressure silent). It does not see a neighbour on another core slowing the memory
system, nor the waits of an interpreter's extra threads (``num_threads`` above 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["CONTENDED_SHARE", "CpuTimes", "read_cpu_times", "share_of", "waited_ns"]

SCHEDSTAT: Final = "/proc/thread-self/schedstat"

#: From this run-queue wait share on, a measurement is contended: an update does not record it
#: (unless told to), as it does not record an UNSTABLE one.
CONTENDED_SHARE: Final = 0.10

#: A thread's time on a CPU and waiting for one, in nanoseconds; None where the kernel does not
#: say (no schedstat: another OS, or a kernel built without it).
CpuTimes = tuple[int, int] | None


def read_cpu_times() -> CpuTimes:
    """This thread's run and run-queue wait times so far."""
    try:
        with open(SCHEDSTAT, "rb") as file:
            run, wait, *_ = file.read(200).split()
        return int(run), int(wait)
    except (OSError, ValueError):
        return None


def waited_ns(before: CpuTimes, after: CpuTimes) -> int | None:
    """How long this thread waited for a CPU between two readings (None when unknown).

    The wait is counted when the thread gets a CPU back, so a loop the thread was taken off
    reads its whole wait; the time it ran is counted only at scheduler ticks (a few ms), so a
    loop of microseconds most often reads none at all. An instance's wait share is therefore
    loops' summed wait over the time of their calls (:func:`share_of`), not a loop's wait
    over its run and wait."""
    if before is None or after is None:
        return None
    ran, waited = after[0] - before[0], after[1] - before[1]
    if ran < 0 or waited < 0:
        return None
    return waited


def share_of(waited: int, timed_ns: int) -> float | None:
    """The share of ``timed_ns`` spent waiting for a CPU (None when no time passed)."""
    return min(waited / timed_ns, 1.0) if timed_ns > 0 else None


#: What :func:`~pytest_edgetpu.engine.timing.measure` reads around each timed loop; tests give it
#: a fake one.
CpuTimesReader = Callable[[], CpuTimes]
