"""Does ``pytest-edgetpu history`` find the step in a series of gate runs, and only then?
(issue 33)

Series of 30 runs are made from real gate runs: the runs ``gate_accuracy.py`` recorded (every
run kept its instance values) of the three Coral models on each host, unchanged code and code
slowed by 10%. A step series takes its first k runs (k drawn from 5..25) from the unchanged
runs and the rest from the slowed ones, of the same model and host; an unchanged series takes
all 30 from the unchanged runs. Runs are drawn with replacement, so the series lose whatever
drift the host had between rounds: the benchmark measures the rule on real run-to-run noise,
not on a real month of CI.

Counted: a step series is found when a slowdown step starts within 2 runs of k; an unchanged
series is clean when no step is reported. A third series is slowed for 6 to 10 runs and then
restored (a regression reverted): both edges must be found, each within 2 runs.

    python benchmarks/history_steps.py --trials 1000 --out benchmarks/results/history_steps.json
"""

from __future__ import annotations

import json
import random
from typing import Any

from harness import wilson
from saved import ROOT, measure_or_report

from pytest_edgetpu.core.stats import compared_value
from pytest_edgetpu.judge.history import Point, find_steps
from pytest_edgetpu.judge.verdict import Status

RUNS = 30
SLOWDOWN = 0.10
THRESHOLD = 0.05
#: The draws of the saved run; another seed draws other series.
SEED = 2


def pools() -> dict[tuple[str, str], dict[float, list[float]]]:
    """Each recorded model's compared figures per run, by results file and slowdown."""
    found: dict[tuple[str, str], dict[float, list[float]]] = {}
    for path in sorted((ROOT / "benchmarks" / "results").glob("gate_accuracy*.json")):
        for run in json.loads(path.read_text())["runs"]:
            if run.get("tool") != "pytest-edgetpu":
                continue
            for model, test in run.get("tests", {}).items():
                instances = test.get("instances") or []
                if len(instances) >= 2:
                    by_slowdown = found.setdefault((path.name, model), {})
                    by_slowdown.setdefault(run["slowdown"], []).append(compared_value(instances))
    return {
        key: figures
        for key, figures in found.items()
        if len(figures.get(0.0, [])) >= 4 and len(figures.get(SLOWDOWN, [])) >= 4
    }


def series(values: list[float]) -> list[Point]:
    return [Point(f"run {i}", f"{i:03d}", v, Status.PASS) for i, v in enumerate(values)]


def run_trials(trials: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    recorded = pools()
    keys = sorted(recorded)
    found = clean = both = 0
    offsets: list[int] = []
    for _ in range(trials):
        figures = recorded[rng.choice(keys)]
        k = rng.randint(5, 25)
        values = [rng.choice(figures[0.0]) for _ in range(k)]
        values += [rng.choice(figures[SLOWDOWN]) for _ in range(RUNS - k)]
        slower = [s for s in find_steps(series(values), THRESHOLD) if s.change.estimate > 0]
        near = [s for s in slower if abs(s.index - k) <= 2]
        found += bool(near)
        if slower:
            offsets.append(min((s.index - k for s in slower), key=abs))
        unchanged = [rng.choice(figures[0.0]) for _ in range(RUNS)]
        clean += not find_steps(series(unchanged), THRESHOLD)
        # A slowdown undone later: runs [start, start + length) are the slowed ones.
        start, length = rng.randint(5, 15), rng.randint(6, 10)
        values = [
            rng.choice(figures[SLOWDOWN if start <= i < start + length else 0.0])
            for i in range(RUNS)
        ]
        steps = find_steps(series(values), THRESHOLD)
        both += any(s.change.estimate > 0 and abs(s.index - start) <= 2 for s in steps) and any(
            s.change.estimate < 0 and abs(s.index - start - length) <= 2 for s in steps
        )
    return {
        "trials": trials,
        "seed": seed,
        "models": [f"{name}:{model}" for name, model in keys],
        "step_found": found,
        "unchanged_clean": clean,
        "undone_both_found": both,
        "step_offsets": offsets,
    }


def report(data: dict[str, Any]) -> str:
    trials = data["trials"]
    return "\n".join(
        [
            f"{trials} series of {RUNS} real gate runs each way, {len(data['models'])} "
            "model-host pools",
            f"+10% step found within 2 runs: {wilson(data['step_found'], trials)}",
            f"unchanged series with no step: {wilson(data['unchanged_clean'], trials)}",
            "+10% for 6-10 runs, then undone, both steps found within 2 runs: "
            f"{wilson(data['undone_both_found'], trials)}",
        ]
    )


def main() -> None:
    measure_or_report(__doc__, "trials", 200, lambda trials: run_trials(trials, SEED), report)


if __name__ == "__main__":
    main()
