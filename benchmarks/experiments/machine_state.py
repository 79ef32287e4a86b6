"""Are the slow latency modes the model's or the machine's?

In one process pinned to one core, fresh interpreter instances of a real Coral model alternate
with a fixed numpy workload (sorting 4096 numbers, 20 times) timed just before and just after
each instance. If an instance's slow mode came from the model or its memory layout, the
workload beside it would not care; if a neighbour on the host slows the whole core, both move
together. Reports the correlation of the instance medians with the workload's time, and the
spread of the instance medians alone and divided by the workload's time.

    python benchmarks/experiments/machine_state.py --out benchmarks/results/machine_state.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

# The shared modules (harness, saved) sit beside the standing suites, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import CORAL
from saved import save

from pytest_edgetpu.device.runtime import load_runtime, make_interpreter


def reference_ns(values: np.ndarray) -> float:
    """Median time of one fixed numpy workload, five repeats."""
    times = []
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(20):
            np.sort(values)
        times.append(time.perf_counter_ns() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v1_0.25_128_quant.tflite")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    runtime = load_runtime()
    values = np.random.default_rng(0).integers(0, 255, 4096).astype(np.float64)
    medians, references = [], []
    began = time.perf_counter()
    while time.perf_counter() - began < args.seconds:
        interpreter = make_interpreter(runtime, CORAL / args.model, num_threads=1)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        for _ in range(3):
            interpreter.invoke()
        before = reference_ns(values)
        samples = []
        for _ in range(40):
            start = time.perf_counter_ns()
            interpreter.invoke()
            samples.append(time.perf_counter_ns() - start)
        references.append((before + reference_ns(values)) / 2)
        medians.append(float(np.median(samples)))
    model, reference = np.log(medians), np.log(references)
    result = {
        "model": args.model,
        "instances": len(medians),
        "instance_median_us_p5_p50_p95": [
            round(float(np.percentile(medians, q)) / 1e3, 1) for q in (5, 50, 95)
        ],
        "correlation_with_reference": round(float(np.corrcoef(model, reference)[0, 1]), 3),
        "log_spread_alone": round(float(model.std()), 4),
        "log_spread_over_reference": round(float((model - reference).std()), 4),
    }
    save(result, args.out)


if __name__ == "__main__":
    main()
