"""Which figure should one interpreter instance contribute to a p50 verdict?

A neighbour on the host slows single invokes by about a third, in spells from a few invokes to
seconds. This script records, per Coral model, a time series of fresh instances with the
plugin's own timing loop and inputs (3 warm-up invokes, then about 50 ms of timed invokes; 10 at
least, 200 at most), then replays the plugin's verdict rule (fastest third of the instance
values, Hodges-Lehmann shift, counted from 4%, confirmed by a second gate run) on windows of
consecutive instances: a baseline window and two gate windows at random places in the series,
with the gate windows' invokes scaled by 1.05 or 1.10 for a slowdown. Each candidate instance
figure (the instance's median, its 25th, 10th, 5th percentile, its fastest invoke) is replayed
on the same windows. "busy baselines" are the windows in which most instances' medians were more
than 15% above the quiet level (the 5th percentile of every instance median in the series).

Window sizes are the median instance counts of a baseline and of a gate run in
``results/gate_accuracy.json``. Scaled invokes are a replay, not a measured slowdown:
``gate_accuracy.py`` is the measurement that decides the defaults.

    python benchmarks/experiments/quiet_invokes.py --seconds 60 \\
        --out benchmarks/results/quiet_invokes.json
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

# The shared modules (harness, saved) sit beside the standing suites, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import CORAL
from saved import save

from pytest_edgetpu.core.stats import fastest, shift
from pytest_edgetpu.device.runtime import load_runtime, make_interpreter
from pytest_edgetpu.engine.inputs import fill_inputs, random_inputs_for
from pytest_edgetpu.engine.measurement import MeasureSettings
from pytest_edgetpu.engine.timing import measure
from pytest_edgetpu.judge.compare import decide
from pytest_edgetpu.judge.verdict import Status

#: model -> (instances in a baseline, instances in a gate run), from gate_accuracy.json
WINDOWS = {
    "keras_lstm_mnist_ptq.tflite": (27, 15),
    "mobilenet_v1_0.25_128_quant.tflite": (17, 12),
    "mobilenet_v2_1.0_224_quant.tflite": (11, 10),
}
FIGURES: dict[str, Callable[[np.ndarray], float]] = {
    "median": lambda s: float(np.median(s)),
    "p25": lambda s: float(np.percentile(s, 25)),
    "p10": lambda s: float(np.percentile(s, 10)),
    "p5": lambda s: float(np.percentile(s, 5)),
    "min": lambda s: float(s.min()),
}
SLOWDOWNS = (0.0, 0.05, 0.10)


def record(model: Path, seconds: float) -> list[np.ndarray]:
    """Per-invoke milliseconds of each fresh instance, in time order, timed by the plugin's own
    loop (:func:`~pytest_edgetpu.engine.timing.measure`) for ``seconds`` without an early stop."""
    runtime = load_runtime()

    def start_instance() -> Callable[[], object]:
        interpreter = make_interpreter(runtime, model, num_threads=1)
        details = interpreter.get_input_details()
        fill_inputs(interpreter, details, random_inputs_for(details))
        return interpreter.invoke

    settings = MeasureSettings(max_time_s=seconds, max_instances=1_000_000, precision=0.0)
    result = measure(start_instance, settings)
    return [np.asarray(inst.samples_ns) / 1e6 for inst in result.instances]


def busy_instances(instances: list[np.ndarray]) -> np.ndarray:
    """Which instances' medians are more than 15% above the quiet level (the 5th percentile of
    every instance median)."""
    medians = np.array([np.median(s) for s in instances])
    return medians > 1.15 * np.percentile(medians, 5)


def _regressed(
    values: np.ndarray, base: int, base_size: int, gate: int, gate_size: int, slowdown: float
) -> bool:
    before = values[base : base + base_size]
    after = values[gate : gate + gate_size] * (1 + slowdown)
    return decide(shift(fastest(before), fastest(after)), 0.05)[0] is Status.REGRESSION


def replay(
    instances: list[np.ndarray], base_size: int, gate_size: int, draws: int
) -> dict[str, dict[str, str]]:
    busy = busy_instances(instances)
    rng = random.Random(1)
    windows = [
        (
            rng.randrange(len(instances) - base_size),
            *rng.sample(range(len(instances) - gate_size), 2),
        )
        for _ in range(draws)
    ]
    table = {}
    for name, figure in FIGURES.items():
        values = np.array([figure(s) for s in instances])
        row = {}
        for slowdown in SLOWDOWNS:
            hits = busy_hits = busy_draws = 0
            for base, first, second in windows:
                caught = all(
                    _regressed(values, base, base_size, gate, gate_size, slowdown)
                    for gate in (first, second)
                )
                hits += caught
                if busy[base : base + base_size].mean() > 0.5:
                    busy_draws += 1
                    busy_hits += caught
            row[f"+{slowdown:.0%}"] = (
                f"{hits / draws:.1%} (busy baselines {busy_hits}/{busy_draws})"
            )
        table[name] = row
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="recording time per model")
    parser.add_argument("--draws", type=int, default=3000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    models = {}
    for model, (base_size, gate_size) in WINDOWS.items():
        instances = record(CORAL / model, args.seconds)
        models[model] = {
            "instances": len(instances),
            "busy_instance_share": round(float(busy_instances(instances).mean()), 3),
            "windows": {"baseline": base_size, "gate": gate_size},
            "regression_rate": replay(instances, base_size, gate_size, args.draws),
        }
    save({"models": models}, args.out)


if __name__ == "__main__":
    main()
