"""How fast the host runs a fixed workload now, against when a baseline was recorded.

A stored baseline is a figure from another moment, and a shared host's speed moves by several
percent over minutes, the same way for every benchmark of a run: no thread waits for a CPU (the
run-queue wait, :mod:`~pytest_edgetpu.engine.contention`, reads nothing), the host's other tenants
slow its cores, caches and memory. Over 16 minutes of rounds on a shared 2-core VM
(``benchmarks/experiments/host_reference.py``), six small callables measured in fresh processes
read more than 4% slower than an earlier round in 19-23% of pairs of rounds, all of them
together; this module's workload, in fresh processes of its own, moved with them, and a stored
comparison that divides its change by the workload's
(:func:`~pytest_edgetpu.judge.host_speed.host_explains`) read REGRESSION in 4.5% of those pairs
instead of 15.6%, catching +10% in 86.1% instead of 90.1%.

So a baseline records the host's reading beside its figures, and a stored comparison that
suspects a slowdown measures it again: a slowdown the host's own shows is not the code's
(:func:`~pytest_edgetpu.judge.compare.compare`). The workload is code that is not under test,
timed where the test is: in the fresh processes that measure it
(:func:`~pytest_edgetpu.engine.processes.measure_processes`, after each process's instances, as
:func:`reference_instance`), where the experiment's replay read 2.7% instead of 4.5% (those
processes share the host's moment and the test's own process state; 2.1% where the reading's
estimate alone may explain, as it does for such a reading); or, for a test measured in
this process, in fresh, isolated interpreters of its own (:func:`measure_host`; a process's own
speed moves with it, so several, each one value) that import nothing. A reading compares only
with one taken the same way (:func:`kernel_name`).
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

from .measurement import MeasureSettings

__all__ = [
    "HOST_PROCESSES",
    "MEASURING",
    "REFERENCE_SETTINGS",
    "WORKLOAD",
    "HostReading",
    "HostReference",
    "kernel_name",
    "measure_host",
    "reference_instance",
]

#: Fresh processes a reading takes, each one value (about 80 ms each, one after another).
HOST_PROCESSES: Final = 5
#: A reading older than this is taken again: the host's spells last tens of seconds to minutes.
FRESH_FOR_S: Final = 60.0
#: How long one process may take before the reading is given up.
_PROCESS_TIMEOUT_S: Final = 10.0
#: The reference workload's name: a reading compares only with one of the same workload and
#: Python (:attr:`HostReading.kernel`). Change the name when the workload changes.
_WORKLOAD: Final = "dict-format-1"
#: How a process times a workload: three instances of 20 ms after 5 ms of warm-up, each the
#: median of its loops' time per call, the median instance's in milliseconds.
MEASURING: Final = """
import statistics, time
def per_call_ms(workload, span_s):
    calls = 1
    while True:
        start = time.perf_counter_ns()
        for _ in range(calls):
            workload()
        if time.perf_counter_ns() - start > 500_000:
            break
        calls *= 2
    loops = []
    end = time.perf_counter() + span_s
    while time.perf_counter() < end:
        start = time.perf_counter_ns()
        for _ in range(calls):
            workload()
        loops.append((time.perf_counter_ns() - start) / calls / 1e6)
    return statistics.median(loops)
def instances_ms(workload):
    per_call_ms(workload, 0.005)
    return [per_call_ms(workload, 0.02) for _ in range(3)]
"""
#: Building a small dict of strings and formatting it (allocation, hashing, string formatting,
#: the interpreter's loop): of the workloads tried it moved most like the benchmarks did.
WORKLOAD: Final = """
def workload():
    table = {str(i): i for i in range(120)}
    return "".join(f"{k}{v:03d}" for k, v in table.items())
"""
_SOURCE: Final = MEASURING + WORKLOAD + "print(repr(statistics.median(instances_ms(workload))))\n"
#: How the workload is measured in a test's process, as the test's own instances are: one fresh
#: instance (forked from the test's process, as the test's are), its median call. One, not
#: three: forked instances share their process's offset, so more of them say little more,
#: and three cost a six-test gate whose slowdowns all needed confirming 1-2 s more than a
#: reading in processes of its own (``benchmarks/process_gate.py``, in the same rounds).
REFERENCE_SETTINGS: Final = MeasureSettings(
    warmup=3, min_runs=0, min_instances=1, max_instances=1, steady_s=0.02
)
#: What the reading taken in a test's processes adds to the kernel's name.
_IN_TEST_PROCESSES: Final = " in the test's processes"


@dataclass(frozen=True)
class HostReading:
    """The reference workload's time per call, one value per fresh process."""

    #: The workload, the Python that ran it and where (``dict-format-1 cpython-3.11.9``, and
    #: `` in the test's processes`` for a reading taken in the processes that measured a test).
    kernel: str
    values_ms: tuple[float, ...]

    @property
    def in_test_processes(self) -> bool:
        """Whether the processes that measured the test took it (:func:`reference_instance`)."""
        return self.kernel.endswith(_IN_TEST_PROCESSES)

    @property
    def words(self) -> str:
        """Where the reading was taken, for a verdict's message."""
        if self.in_test_processes:
            return f"a reference workload in the test's {len(self.values_ms)} processes"
        return f"a reference workload in {len(self.values_ms)} fresh processes"


def kernel_name(*, in_test_processes: bool = False) -> str:
    """What a reading taken here measures: the workload and the Python that runs it, and
    whether in a test's processes (:func:`reference_instance`) or in its own
    (:func:`measure_host`): the two time it differently and are never compared."""
    python = f"{platform.python_implementation().lower()}-{platform.python_version()}"
    return f"{_WORKLOAD} {python}{_IN_TEST_PROCESSES if in_test_processes else ''}"


def reference_instance() -> Callable[[], object]:
    """Starts an instance of the reference workload, to be timed in a test's process
    (:data:`REFERENCE_SETTINGS`)."""
    # The very source the isolated interpreters run, so that both readings time one workload.
    namespace: dict[str, object] = {}
    exec(WORKLOAD, namespace)
    return cast("Callable[[], object]", namespace["workload"])


def measure_host(processes: int = HOST_PROCESSES) -> HostReading | None:
    """The host's reading now; None where a process could not run it (nothing then explains a
    slowdown: the verdict stands as measured)."""
    values = []
    for _ in range(processes):
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _SOURCE],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_PROCESS_TIMEOUT_S,
                check=True,
            )
            value = json.loads(done.stdout)
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        if not isinstance(value, float) or not math.isfinite(value) or value <= 0:
            return None
        values.append(value)
    return HostReading(kernel_name(), tuple(values))


class HostReference:
    """The host's reading, taken when first asked for and again once it is older than
    :data:`FRESH_FOR_S`."""

    def __init__(
        self,
        measure: Callable[[], HostReading | None] = measure_host,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._measure = measure
        self._clock = clock
        self._reading: HostReading | None = None
        self._taken_at = -math.inf

    def reading(self) -> HostReading | None:
        now = self._clock()
        if now - self._taken_at > FRESH_FOR_S:
            self._reading, self._taken_at = self._measure(), now
        return self._reading
