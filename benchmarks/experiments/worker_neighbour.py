"""How much a neighbouring xdist worker moves a pinned measurement (issue 31): can a baseline
recorded serially gate a ``-n`` run?

The same suite of real models (the example suite's two and the Coral CPU models, each benchmarked
by two tests so that both workers measure at once) runs serially (``-p no:xdist``, on cpu:0)
and under ``-n 2`` (``--edgetpu-device=cpu:0,cpu:1``: each worker pinned to its own core),
alternating, with no baselines: each test's figure is what the gate compares, the median of
its fastest instances' p5. Per model, per round: the shift of the ``-n 2`` run from the serial
run beside it, against the shift between two serial runs in a row (the noise a serial gate
sees anyway). A serial entry could gate a ``-n`` run only if the first is as small as the
second, or with a tolerance as wide as the first's spread.

    .venv/bin/python benchmarks/experiments/worker_neighbour.py --rounds 6 \\
        --out benchmarks/results/worker_neighbour.json
    .venv/bin/python benchmarks/experiments/worker_neighbour.py \\
        --report benchmarks/results/worker_neighbour.json
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from harness import CORAL, CORAL_MODELS, pytest_run
from saved import measure_or_report

from pytest_edgetpu.core.stats import fastest
from pytest_edgetpu.model.examples import write_example_models

ARRANGEMENTS = {
    "serial": ["-p", "no:xdist", "--edgetpu-device=cpu:0"],
    "n2": ["-n", "2", "--edgetpu-device=cpu:0,cpu:1"],
}


def write_suite(directory: Path) -> list[str]:
    models = {p.stem: p for p in write_example_models(directory / "models")}
    models.update(
        {name: CORAL / file for name, file in CORAL_MODELS.items() if (CORAL / file).is_file()}
    )
    tests = ["import pytest\n"]
    for name, path in models.items():
        for copy in (1, 2):
            tests.append(
                f"@pytest.mark.tpu_bench(model={str(path)!r})\n"
                f"def test_{name}_{copy}(tpu_bench):\n    tpu_bench()\n"
            )
    (directory / "test_suite.py").write_text("\n".join(tests))
    (directory / "pytest.ini").write_text("[pytest]\n")
    return list(models)


def figures(results: Path) -> dict[str, float]:
    """Each model's figure in a run: the geometric mean of its two tests' compared values."""
    by_model: dict[str, list[float]] = {}
    for result in json.loads(results.read_text())["results"]:
        name = result["test_id"].split("::test_", 1)[1].rsplit("_", 1)[0]
        value = statistics.median(fastest(result["instance_values_ms"]))
        by_model.setdefault(name, []).append(math.log(value))
    return {name: math.exp(statistics.fmean(logs)) for name, logs in by_model.items()}


def measure(rounds: int) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        suite = Path(scratch)
        models = write_suite(suite)
        for round_number in range(rounds):
            # A B in even rounds, B A in odd ones: neither arrangement always runs first.
            order = list(ARRANGEMENTS) if round_number % 2 == 0 else list(ARRANGEMENTS)[::-1]
            for arrangement in order:
                out = suite / f"{arrangement}-{round_number}.json"
                _code, wall_s, tail = pytest_run(
                    suite, ["--edgetpu", f"--edgetpu-json={out}", *ARRANGEMENTS[arrangement]], 1.0
                )
                if not out.is_file():
                    sys.exit(f"{arrangement} run {round_number} wrote no results:\n{tail}")
                runs.append(
                    {
                        "round": round_number,
                        "arrangement": arrangement,
                        "wall_s": round(wall_s, 2),
                        "figures_ms": figures(out),
                    }
                )
                print(runs[-1], file=sys.stderr)
    return {"models": models, "rounds": rounds, "runs": runs}


def _percent(log_ratio: float) -> str:
    return f"{math.expm1(log_ratio):+.1%}"


def report(result: dict[str, Any]) -> str:
    runs = result["runs"]
    serial = [r for r in runs if r["arrangement"] == "serial"]
    lines = [
        f"{result['rounds']} rounds, serial and -n 2 alternating ({result['date']}, "
        f"{result['cpu_model']}); per model, the -n 2 run's figure against the serial run of "
        "its round, and one serial run against the next:",
        "",
        "| model | -n 2 vs serial: median (range) | serial vs serial: median (range) |",
        "|:---|---:|---:|",
    ]
    all_parallel: list[float] = []
    all_serial: list[float] = []
    for model in result["models"]:
        parallel_shifts = [
            math.log(p["figures_ms"][model] / s["figures_ms"][model])
            for p in runs
            if p["arrangement"] == "n2"
            for s in serial
            if s["round"] == p["round"]
        ]
        serial_shifts = [
            math.log(b["figures_ms"][model] / a["figures_ms"][model])
            for a, b in itertools.pairwise(serial)
        ]
        all_parallel += parallel_shifts
        all_serial += serial_shifts
        lines.append(
            f"| {model} | {_percent(statistics.median(parallel_shifts))} "
            f"({_percent(min(parallel_shifts))}..{_percent(max(parallel_shifts))}) | "
            f"{_percent(statistics.median(serial_shifts))} "
            f"({_percent(min(serial_shifts))}..{_percent(max(serial_shifts))}) |"
        )
    walls = {
        name: statistics.median(r["wall_s"] for r in runs if r["arrangement"] == name)
        for name in ARRANGEMENTS
    }
    lines += [
        "",
        f"All models: -n 2 vs serial median {_percent(statistics.median(all_parallel))}, "
        f"sd {statistics.stdev(all_parallel):.1%}; serial vs serial median "
        f"{_percent(statistics.median(all_serial))}, sd {statistics.stdev(all_serial):.1%}. "
        f"Median wall: serial {walls['serial']:.1f} s, -n 2 {walls['n2']:.1f} s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    measure_or_report(__doc__, "rounds", 6, measure, report)
