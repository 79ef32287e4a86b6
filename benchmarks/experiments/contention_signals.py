"""Which host signal explains a slowdown that neighbours cause? (issue 13, part 2: evidence
before choosing a contention-aware verdict.)

One process pinned to one core times fresh interpreter instances of real Coral models, the way
the plugin does (40 invokes per instance, the instance's 5th percentile as its value), while 0,
2 or 4 neighbour processes copy a 64 MiB numpy buffer in a loop (the memory-streaming neighbour
of noise.md; they float over every core, as another job's processes would). Around each
instance it reads the candidate signals:

* ``psi_cpu``: the share of the instance's wall time some task waited for a CPU
  (``/proc/pressure/cpu``, ``some total``);
* ``psi_memory``: the same for memory stalls (``/proc/pressure/memory``);
* ``steal``: the share of all CPU time the hypervisor gave to other guests (``/proc/stat``);
* ``runqueue``: this thread's run-queue wait per wall second (``/proc/thread-self/schedstat``,
  reported as unavailable where the kernel leaves it at zero);
* ``ref_copy`` and ``ref_sort``: a memory-bound (8 MiB copy) and a compute-bound (sort of 4096
  numbers) reference workload timed just before and just after the instance, as a ratio to
  their quiet medians.

Reports, per model and condition, the instance value's median as a ratio to the quiet one, each
signal's median, and, pooled over conditions, the correlation of log(instance value) with each
signal: a signal fit to tell "the host was busy" from "the code got slower" must move with the
neighbours' slowdown.

    python benchmarks/experiments/contention_signals.py \\
        --out benchmarks/results/contention_signals.json
    python benchmarks/experiments/contention_signals.py --other-cores \\
        --out benchmarks/results/contention_signals_other_cores.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# The shared modules (harness, saved) sit beside the standing suites, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import CORAL
from saved import save

from pytest_edgetpu.core.stats import QUIET_PERCENTILE
from pytest_edgetpu.device.runtime import load_runtime, make_interpreter
from pytest_edgetpu.engine.inputs import fill_inputs, random_inputs_for

NEIGHBOUR = (
    "import numpy as np\n"
    "a = np.ones(64 * 1024 * 1024 // 8); b = np.empty_like(a)\n"
    "while True:\n"
    "    np.copyto(b, a)\n"
)
SIGNALS = ("psi_cpu", "psi_memory", "steal", "runqueue", "ref_copy", "ref_sort")


def psi_total_us(kind: str) -> int:
    for line in Path(f"/proc/pressure/{kind}").read_text().splitlines():
        if line.startswith("some "):
            return int(line.rsplit("total=", 1)[1])
    return 0


def cpu_ticks() -> tuple[int, int]:
    """(steal, all) jiffies of the whole host as this guest sees it."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[7], sum(fields)


def runqueue_ns() -> int:
    return int(Path("/proc/thread-self/schedstat").read_text().split()[1])


class References:
    """The two reference workloads, each timed as the median of three repeats."""

    def __init__(self) -> None:
        self.source = np.ones(8 * 1024 * 1024 // 8)
        self.target = np.empty_like(self.source)
        self.values = np.random.default_rng(0).integers(0, 255, 4096).astype(np.float64)

    def copy_ns(self) -> float:
        return self._median(lambda: np.copyto(self.target, self.source))

    def sort_ns(self) -> float:
        return self._median(lambda: [np.sort(self.values) for _ in range(20)])

    @staticmethod
    def _median(work: Any) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter_ns()
            work()
            times.append(time.perf_counter_ns() - start)
        return float(np.median(times))


def instances(model: Path, seconds: float, refs: References) -> list[dict[str, float]]:
    """Fresh instances of ``model`` for ``seconds``, each with its value and raw signals."""
    runtime = load_runtime()
    rows = []
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        interpreter = make_interpreter(runtime, model, num_threads=1)
        details = interpreter.get_input_details()
        fill_inputs(interpreter, details, random_inputs_for(details))
        for _ in range(3):
            interpreter.invoke()
        copy_before, sort_before = refs.copy_ns(), refs.sort_ns()
        psi_cpu, psi_memory, (steal, ticks) = (
            psi_total_us("cpu"),
            psi_total_us("memory"),
            cpu_ticks(),
        )
        runqueue, wall = runqueue_ns(), time.perf_counter_ns()
        samples = []
        for _ in range(40):
            start = time.perf_counter_ns()
            interpreter.invoke()
            samples.append(time.perf_counter_ns() - start)
        wall = time.perf_counter_ns() - wall
        steal_after, ticks_after = cpu_ticks()
        rows.append(
            {
                "value_ms": float(np.percentile(samples, QUIET_PERCENTILE)) / 1e6,
                "psi_cpu": (psi_total_us("cpu") - psi_cpu) * 1e3 / wall,
                "psi_memory": (psi_total_us("memory") - psi_memory) * 1e3 / wall,
                "steal": (steal_after - steal) / max(ticks_after - ticks, 1),
                "runqueue": (runqueue_ns() - runqueue) / wall,
                "ref_copy": (copy_before + refs.copy_ns()) / 2,
                "ref_sort": (sort_before + refs.sort_ns()) / 2,
            }
        )
    return rows


def start_neighbours(count: int, cores: set[int] | None) -> list[subprocess.Popen[bytes]]:
    """``count`` streaming neighbours, on ``cores`` when given (else wherever the kernel puts
    them)."""
    neighbours = []
    for _ in range(count):
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
        if cores:
            os.sched_setaffinity(neighbour.pid, cores)
        neighbours.append(neighbour)
    time.sleep(1.0)  # their buffers allocated and streaming
    return neighbours


def correlation(x: list[float], y: list[float]) -> float | None:
    if np.std(x) == 0 or np.std(y) == 0:
        return None
    return round(float(np.corrcoef(x, y)[0, 1]), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["mobilenet_v1_0.25_128_quant.tflite", "mobilenet_v2_1.0_224_quant.tflite"],
    )
    parser.add_argument("--neighbours", nargs="+", type=int, default=[0, 2, 4])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--other-cores",
        action="store_true",
        help="pin the neighbours to the cores the benchmark does not use: memory bandwidth and "
        "caches shared, no CPU time taken from the benchmark's core",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    others = set(range(os.cpu_count() or 1)) - {core}
    neighbour_cores = others if args.other_cores else None
    refs = References()
    results: dict[str, Any] = {}
    for name in args.models:
        by_condition: dict[int, list[dict[str, float]]] = {}
        for count in args.neighbours:
            neighbours = start_neighbours(count, neighbour_cores)
            try:
                by_condition[count] = instances(CORAL / name, args.seconds, refs)
            finally:
                for neighbour in neighbours:
                    neighbour.kill()
                    neighbour.wait()
        quiet = by_condition[min(by_condition)]
        quiet_value = float(np.median([r["value_ms"] for r in quiet]))
        quiet_ref = {k: float(np.median([r[k] for r in quiet])) for k in ("ref_copy", "ref_sort")}
        pooled = [r for rows in by_condition.values() for r in rows]
        for row in pooled:
            for key, base in quiet_ref.items():
                row[key] /= base
        log_values = [float(np.log(r["value_ms"])) for r in pooled]
        results[name] = {
            "conditions": {
                str(count): {
                    "instances": len(rows),
                    "value_ratio_to_quiet": round(
                        float(np.median([r["value_ms"] for r in rows])) / quiet_value, 3
                    ),
                    **{
                        signal: round(float(np.median([r[signal] for r in rows])), 4)
                        for signal in SIGNALS
                    },
                }
                for count, rows in by_condition.items()
            },
            "quiet_value_ms": round(quiet_value, 4),
            "correlation_of_log_value_with": {
                signal: correlation(log_values, [r[signal] for r in pooled]) for signal in SIGNALS
            },
        }
    placement = "other cores" if args.other_cores else "any core"
    save(
        {"seconds_per_condition": args.seconds, "neighbours_on": placement, "models": results},
        args.out,
    )


if __name__ == "__main__":
    main()
