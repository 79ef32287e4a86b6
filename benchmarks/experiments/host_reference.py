"""Does a fixed reference workload see what a drifting host does to the benchmarks? (issue 32)

A stored baseline is a figure from another moment: on a shared VM the host's speed moves by
several percent over minutes, the same way for every test of a run, and a stored gate reads that
as a change. Here, round after round under changing conditions (quiet, beside memory-streaming or
CPU-bound neighbours), fresh processes measure the six small callables of ``process_gate.py``
beside candidate reference workloads (code that is not under test), interleaved, three instances
of 20 ms each a process, the median of each round's processes kept; the candidates are also
measured in bare processes (no numpy import: cheaper to start). For every pair of rounds (the
first as the recording, the second as the gate), the workloads' change is set beside each
candidate's: how much of it does the candidate explain, and between processes how far does the
candidate itself move?

    .venv/bin/python benchmarks/experiments/host_reference.py --minutes 16 \\
        --out benchmarks/results/host_reference.json
    .venv/bin/python benchmarks/experiments/host_reference.py \\
        --report benchmarks/results/host_reference.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import NEIGHBOURS, start_neighbours
from process_gate import TESTS
from saved import stamped

from pytest_edgetpu.engine.host_reference import MEASURING, WORKLOAD

#: The candidate references: a pure-Python loop, the plugin's own workload (``ref_mix``), and,
#: where numpy is imported, a sort of 4096 floats.
REFERENCE_KERNELS = (
    MEASURING
    + WORKLOAD.replace("def workload", "def ref_mix")
    + """
def ref_loop():
    total = 0
    for i in range(1500):
        total += i * i % 7
    return total

def measure(names):
    fns = [globals()[n] for n in names]
    for fn in fns:
        per_call_ms(fn, 0.005)
    instances = {n: [] for n in names}
    for _ in range(3):
        for name, fn in zip(names, fns):
            instances[name].append(per_call_ms(fn, 0.02))
    return {n: statistics.median(v) for n, v in instances.items()}
"""
)
#: process_gate.py's six tests at their unchanged size, each callable kept under its name.
NUMPY_KERNELS = (
    TESTS.format(scale=1.0)
    + """
def _keep(name):
    return lambda workload: globals().__setitem__(name, workload)
for _name in ("arithmetic", "dict_comprehension", "list_comprehension", "string_format",
              "numpy_small", "nms_python"):
    globals()["test_" + _name](_keep(_name))
_a = np.random.default_rng(0).random((64, 64))
def ref_numpy():
    return np.sort(_a, axis=None)
"""
)

WORKLOADS = [
    "arithmetic",
    "dict_comprehension",
    "list_comprehension",
    "string_format",
    "numpy_small",
    "nms_python",
]
REFERENCES = ["ref_loop", "ref_mix", "ref_numpy"]
BARE = ["ref_loop", "ref_mix"]
PROCESSES = 4
PHASES = ["quiet", "mem1", "quiet", "mem2", "quiet", "cpu1", "quiet", "mem1"]


def one_process(names: list[str], with_numpy: bool) -> dict[str, float]:
    source = (NUMPY_KERNELS if with_numpy else "") + REFERENCE_KERNELS
    code = source + f"\nimport json; print(json.dumps(measure({names!r})))\n"
    flags = [] if with_numpy else ["-S"]
    out = subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def one_round() -> dict[str, Any]:
    full: dict[str, list[float]] = {}
    bare: dict[str, list[float]] = {}
    for _ in range(PROCESSES):
        for name, value in one_process(WORKLOADS + REFERENCES, True).items():
            full.setdefault(name, []).append(value)
        for name, value in one_process(BARE, False).items():
            bare.setdefault(name, []).append(value)
    return {"numpy_process": full, "bare_process": {f"bare_{k}": v for k, v in bare.items()}}


def neighbours(phase: str) -> list[subprocess.Popen[bytes]]:
    if phase.startswith("cpu"):
        return [
            subprocess.Popen([sys.executable, "-c", NEIGHBOURS["cpu"]])
            for _ in range(int(phase[3:]))
        ]
    return start_neighbours(phase)


def run(minutes: float) -> list[dict[str, Any]]:
    rounds: list[dict[str, Any]] = []
    phase_s = minutes * 60 / len(PHASES)
    for phase in PHASES:
        started = neighbours(phase)
        try:
            end = time.monotonic() + phase_s
            while time.monotonic() < end:
                rounds.append({"phase": phase, "t": time.time(), **one_round()})
                print(phase, len(rounds), flush=True)
        finally:
            for process in started:
                process.kill()
    return rounds


def round_values(entry: dict[str, Any]) -> dict[str, list[float]]:
    return {**entry["numpy_process"], **entry["bare_process"]}


def report(data: dict[str, Any]) -> None:
    rounds = [round_values(r) for r in data["rounds"]]
    medians = [{name: statistics.median(v) for name, v in r.items()} for r in rounds]
    references = REFERENCES + [f"bare_{b}" for b in BARE]
    print(f"{len(rounds)} rounds, {data['minutes']} min, phases {PHASES}")
    print("between-process spread (sd of log values within a round, median over rounds):")
    for name in WORKLOADS + references:
        spread = statistics.median(statistics.stdev(map(math.log, r[name])) for r in rounds)
        print(f"  {name:20s} {spread:.1%}")
    pairs = list(itertools.combinations(range(len(rounds)), 2))
    print(f"\n{len(pairs)} (recording, gate) pairs of rounds: the workloads' drift (sd of the log")
    print("ratio of the rounds' medians, share beyond +4%), raw and divided by each reference's")
    print(f"  {'workload':20s} {'raw':>13s}" + "".join(f" {r[:13]:>13s}" for r in references))
    beyond = math.log(1.04)
    for name in WORKLOADS:
        cells = []
        for ref in (None, *references):
            drift = [
                math.log(medians[j][name] / medians[i][name])
                - (math.log(medians[j][ref] / medians[i][ref]) if ref else 0.0)
                for i, j in pairs
            ]
            share = sum(d > beyond for d in drift) / len(drift)
            cells.append(f"{statistics.stdev(drift):5.1%} {share:6.1%}")
        print(f"  {name:20s} " + " ".join(f"{c:>13s}" for c in cells))
    simulated_gate(rounds, pairs, references)


def simulated_gate(
    rounds: list[dict[str, list[float]]], pairs: list[tuple[int, int]], references: list[str]
) -> None:
    """Each pair of rounds as a stored comparison of each workload (the first round's process
    values as the baseline, the second's as the measurement, one measurement, no
    confirmation), the plugin's own rule judging it with each reference as the host's."""
    from pytest_edgetpu.core.stats import shift
    from pytest_edgetpu.engine.host_reference import HostReading, kernel_name
    from pytest_edgetpu.judge.host_speed import host_explains
    from pytest_edgetpu.judge.verdict import Policy, Status, decide

    policy = Policy(threshold=0.05)
    sample = random.Random(0).sample(pairs, min(len(pairs), 1500))
    print(f"\nsimulated stored comparisons, {len(sample) * len(WORKLOADS)} (5% threshold):")
    print("REGRESSION before confirmation, on unchanged code and on +10% of time")
    for ref in references:
        row = []
        # A reference timed in the benchmark's processes is read as one in the test's processes.
        kernel = kernel_name(in_test_processes=not ref.startswith("bare_"))
        for factor in (1.0, 1.1):
            raw = kept = 0
            for i, j in sample:
                then = HostReading(kernel, tuple(rounds[i][ref]))
                now = HostReading(kernel, tuple(rounds[j][ref]))
                for name in WORKLOADS:
                    change = shift(rounds[i][name], [v * factor for v in rounds[j][name]])
                    status = decide(change, policy.threshold)[0]
                    if status is Status.REGRESSION:
                        raw += 1
                        kept += not host_explains(status, change, policy, then, now, model=False)[0]
            total = len(sample) * len(WORKLOADS)
            row.append(f"x{factor}: {raw / total:5.1%} -> {kept / total:5.1%}")
        print(f"  {ref:14s} " + "   ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=16.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    if args.report:
        report(json.loads(args.report.read_text()))
        return
    data = stamped({"minutes": args.minutes, "rounds": run(args.minutes)})
    if args.out:
        args.out.write_text(json.dumps(data, indent=1) + "\n")
    report(data)


if __name__ == "__main__":
    main()
