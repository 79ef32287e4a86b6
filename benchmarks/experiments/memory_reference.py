"""Does the host's reference workload slow as the models do beside memory-streaming neighbours?
(issue 32)

``relative_gate.py --stored-too`` beside 2 memory-streaming neighbours, baselines recorded quiet:
the 11 real models read +6..+40% on unchanged code, most beside a reading of the plugin's
reference workload (``dict-format-1``, pure Python) of +15..+22%, so the stored gate called
REGRESSION what the neighbours did. Here, phase after phase (quiet, then beside 1 or 2
neighbours, alternating), fresh processes each time a few of those models' ``invoke()``, two of
``process_gate.py``'s small callables, the plugin's reference and candidate references that
stream memory (a copy of 1 MiB and of 16 MiB with numpy), interleaved, three instances of 20 ms
each, as the plugin times its reference in a test's process. Per workload: the median over a
phase's processes, and its ratio beside the neighbours to quiet, set beside each reference's
ratio: a reference that explains the models' slowdown must not explain away a callable's.

    .venv-bench/bin/python benchmarks/experiments/memory_reference.py --rounds 2 \\
        --out benchmarks/results/memory_reference.json
    .venv-bench/bin/python benchmarks/experiments/memory_reference.py \\
        --report benchmarks/results/memory_reference.json
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import CORAL, CORAL_MODELS, beside, fetch_mediapipe_models
from saved import measure_or_report

from pytest_edgetpu.engine.host_reference import MEASURING, WORKLOAD

#: Models of ``relative_gate.py``'s 11: from 0.27 ms to 28 ms a call.
MODELS = ("face_detection_short_range", "hand_landmark_lite", "selfie_segmentation")
CORAL_ONES = ("lstm", "mnv2")
CALLABLES = {
    "arithmetic": "lambda: sum(range(1000))",
    "dict_comprehension": "lambda: {i: i * i for i in range(300)}",
}
REFERENCES = ("ref_mix", "ref_copy_1mib", "ref_copy_16mib")
PROCESSES = 4
#: Each neighbours' phase follows a quiet one. One neighbour leaves a core to the measuring
#: process (memory contention alone); two make three runnable processes on a 2-core host,
#: which time-slices them too.
PHASES = ("quiet", "mem1", "quiet", "mem2")

KERNELS = (
    MEASURING
    + WORKLOAD.replace("def workload", "def ref_mix")
    + """
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

_small = np.ones(1024 * 1024 // 8); _small_out = np.empty_like(_small)
_large = np.ones(16 * 1024 * 1024 // 8); _large_out = np.empty_like(_large)
def ref_copy_1mib():
    np.copyto(_small_out, _small)
def ref_copy_16mib():
    np.copyto(_large_out, _large)

def model(path):
    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in interpreter.get_input_details():
        interpreter.set_tensor(d["index"], rng.integers(0, 255, d["shape"]).astype(d["dtype"]))
    return interpreter.invoke

def measure(fns):
    for fn in fns.values():
        per_call_ms(fn, 0.005)
    instances = {n: [] for n in fns}
    for _ in range(3):
        for name, fn in fns.items():
            instances[name].append(per_call_ms(fn, 0.02))
    return {n: statistics.median(v) for n, v in instances.items()}
"""
)


def workloads() -> dict[str, str]:
    """Each workload's expression in a measuring process."""
    mediapipe = fetch_mediapipe_models()
    paths = {name: mediapipe[name] for name in MODELS}
    paths |= {name: str(CORAL / CORAL_MODELS[name]) for name in CORAL_ONES}
    return (
        {name: f"model({path!r})" for name, path in paths.items()}
        | CALLABLES
        | {name: name for name in REFERENCES}
    )


def one_process(expressions: dict[str, str]) -> dict[str, float]:
    fns = "{" + ", ".join(f"{name!r}: {code}" for name, code in expressions.items()) + "}"
    code = KERNELS + f"\nprint(json.dumps(measure({fns})))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out))


def run(rounds: int) -> dict[str, Any]:
    expressions = workloads()
    phases = []
    for _ in range(rounds):
        for phase in PHASES:
            with beside(phase):
                time.sleep(1.0 if phase != "quiet" else 0.0)
                values: dict[str, list[float]] = {}
                for _ in range(PROCESSES):
                    for name, value in one_process(expressions).items():
                        values.setdefault(name, []).append(value)
            phases.append({"phase": phase, "values_ms": values})
            print(phase, len(phases), flush=True)
    return {"processes": PROCESSES, "phases": phases}


def report(data: dict[str, Any]) -> str:
    phases = data["phases"]
    names = list(phases[0]["values_ms"])
    lines = [
        f"Run {data['date']}; command: `{data['command']}`",
        "",
        "Each workload's median over a phase's processes, beside 1 or 2 memory-streaming "
        "neighbours against the quiet phase before it (median over rounds), and what remains "
        "of that beyond each reference's own ratio:",
        "",
        "| neighbours | workload | beside them / quiet | "
        + " | ".join(f"beyond {ref}" for ref in REFERENCES)
        + " |",
        "|---|---|---|" + "---|" * len(REFERENCES),
    ]

    def ratio(name: str, pair: tuple[dict[str, list[float]], dict[str, list[float]]]) -> float:
        quiet, busy = pair
        return statistics.median(busy[name]) / statistics.median(quiet[name])

    for condition in PHASES[1::2]:
        pairs = [
            (quiet["values_ms"], busy["values_ms"])
            for quiet, busy in zip(phases[::2], phases[1::2], strict=True)
            if busy["phase"] == condition
        ]
        for name in names:
            moved = statistics.median(ratio(name, pair) for pair in pairs)
            beyond = [
                statistics.median(ratio(name, pair) / ratio(ref, pair) for pair in pairs)
                for ref in REFERENCES
            ]
            lines.append(
                f"| {condition} | {name} | {moved - 1:+.1%} | "
                + " | ".join(f"{b - 1:+.1%}" for b in beyond)
                + " |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    measure_or_report(__doc__ or "", "rounds", 3, run, report)
