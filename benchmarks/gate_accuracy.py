"""How good is the gate? pytest-edgetpu against pytest-benchmark on the same tests.

Each round, interleaved so machine drift hits every condition alike:

1. both tools record a fresh baseline of unchanged code;
2. in a shuffled order, both tools gate runs of the same tests with a real injected slowdown of
   0% (A/A), +5%, +10% and +20%: CPU work added inside the timed callable, calibrated in the
   same process against that process's measured latency (no sleeps).

pytest-edgetpu runs with its defaults (`pytest --edgetpu`); pytest-benchmark with its default
calibration, `--benchmark-compare` against the round's saved run and
`--benchmark-compare-fail=median:5%`; its mean and min rules are evaluated from the same saved
JSON (its check is `current > baseline * 1.05` on that statistic). Every run's raw output is kept
in the results file, so other decision rules can be replayed offline (`--replay`).

Run it on a quiet machine (nothing else running), in a venv with pytest-benchmark:

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -e ".[bench]"
    .venv-bench/bin/python benchmarks/gate_accuracy.py --rounds 20 \\
        --out benchmarks/results/gate_accuracy.json
    .venv-bench/bin/python benchmarks/gate_accuracy.py \\
        --report benchmarks/results/gate_accuracy.json
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import CORAL, CORAL_MODELS, plugin_at, pytest_run, wilson
from saved import stamped

SLOWDOWNS = (0.0, 0.05, 0.10, 0.20)
PYTEST_BENCHMARK_RULES = ("median", "mean", "min")

BURN = '''
"""Injected slowdown: pure CPU work calibrated against this process's own latency."""
import time

def _lower_quartile(values):
    return sorted(values)[len(values) // 4]

def _timed(fn):
    start = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - start

def make_burn(invoke, fraction):
    """A callable that makes invoke() `fraction` slower, and the loop count it settled on.

    Closed loop: invoke() alone and invoke() followed by the burn are timed in alternating
    pairs, and the loop count is corrected until the lower quartiles (the quiet state of the
    machine, where both tools' fastest samples come from) differ by `fraction`.
    """
    if fraction == 0:
        return (lambda: None), 0
    for _ in range(5):
        invoke()
    base = _lower_quartile([_timed(invoke) for _ in range(30)])
    rate = _lower_quartile([_timed(lambda: sum(range(20000))) for _ in range(5)]) / 20000
    loops = max(1, round(fraction * base / rate))

    def burn():
        x = 0
        for i in range(loops):
            x += i
        return x

    def both():
        invoke()
        burn()

    pairs = max(10, round(0.3e9 / base))  # about 0.3 s of invokes per correction
    for _ in range(3):
        alone, slowed = [], []
        for _ in range(pairs):
            alone.append(_timed(invoke))
            slowed.append(_timed(both))
        realized = _lower_quartile(slowed) / _lower_quartile(alone) - 1
        if realized > 0:
            loops = max(1, round(loops * fraction / realized))
    return burn, loops
'''

OURS = """
import os
import pytest
from burn import make_burn

MODELS = {models!r}

@pytest.mark.parametrize("name", sorted(MODELS))
def test_model(name, edgetpu, tpu_bench):
    model = edgetpu.load(MODELS[name])
    model.set_inputs()
    burn, _ = make_burn(model.interpreter.invoke, float(os.environ["SLOWDOWN"]))

    def infer():
        model.interpreter.invoke()
        burn()

    tpu_bench(infer)
"""

THEIRS = """
import os
import pytest
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from burn import make_burn

MODELS = {models!r}

@pytest.mark.parametrize("name", sorted(MODELS))
def test_model(name, benchmark):
    interpreter = Interpreter(model_path=MODELS[name], num_threads=1)
    interpreter.allocate_tensors()
    for d in interpreter.get_input_details():
        rng = np.random.default_rng(0)
        interpreter.set_tensor(d["index"], rng.integers(0, 255, d["shape"]).astype(d["dtype"]))
    burn, _ = make_burn(interpreter.invoke, float(os.environ["SLOWDOWN"]))

    def infer():
        interpreter.invoke()
        burn()

    benchmark(infer)
"""


def write_suite(directory: Path, metric: str) -> None:
    models = {name: str(CORAL / file) for name, file in CORAL_MODELS.items()}
    (directory / "ours").mkdir()
    (directory / "theirs").mkdir()
    for sub, template in (("ours", OURS), ("theirs", THEIRS)):
        (directory / sub / "burn.py").write_text(BURN)
        (directory / sub / f"test_{sub}.py").write_text(template.format(models=models))
        ini = "[pytest]\n" + (f"edgetpu_metric = {metric}\n" if sub == "ours" else "")
        (directory / sub / "pytest.ini").write_text(ini)


def ours(
    cwd: Path,
    slowdown: float,
    update: bool,
    extra: list[str],
    at: tuple[str, Path] | None = None,
) -> dict[str, Any]:
    """A pytest-edgetpu run; ``at``: with the plugin of that revision (name, source tree)."""
    out = cwd / "results.json"
    out.unlink(missing_ok=True)
    args = ["-p", "no:benchmark", "--edgetpu", f"--edgetpu-json={out}", *extra]
    if update:
        args.append("--edgetpu-update-baselines")
    code, wall, tail = pytest_run(cwd, args, slowdown, at[1] if at else None)
    results = json.loads(out.read_text())["results"] if out.exists() else []
    return {
        "tool": f"pytest-edgetpu@{at[0]}" if at else "pytest-edgetpu",
        "slowdown": slowdown,
        "update": update,
        "exit": code,
        "wall_s": wall,
        "tail": tail if not results else "",
        "tests": {
            r["test_id"].split("[")[-1].rstrip("]"): {
                "status": r["verdict"]["status"],
                "change": r["verdict"]["change"],
                "p50": r["summary_ms"]["p50"],
                "instances": r["instance_values_ms"],
                "reason": r["verdict"]["reason"],
            }
            for r in results
        },
    }


def theirs(cwd: Path, slowdown: float, update: bool) -> dict[str, Any]:
    storage = f"file://{cwd / 'storage'}"
    out = cwd / "bench.json"
    out.unlink(missing_ok=True)
    args = [
        "-p",
        "no:edgetpu",
        "-p",
        "no:xdist",
        f"--benchmark-storage={storage}",
        f"--benchmark-json={out}",
    ]
    if update:
        args.append("--benchmark-save=base")
    else:
        args += ["--benchmark-compare=0001", "--benchmark-compare-fail=median:5%"]
    code, wall, tail = pytest_run(cwd, args, slowdown)
    stats = {}
    if out.exists():
        for bench in json.loads(out.read_text())["benchmarks"]:
            name = bench["param"]
            s = bench["stats"]
            stats[name] = {
                "median": s["median"],
                "mean": s["mean"],
                "min": s["min"],
                "rounds": s["rounds"],
            }
    return {
        "tool": "pytest-benchmark",
        "slowdown": slowdown,
        "update": update,
        "exit": code,
        "wall_s": wall,
        "tests": stats,
        "tail": tail if not stats else "",
    }


def run_rounds(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    devices = ",".join(f"cpu:{i}" for i in range(args.workers))
    extra = ["-n", str(args.workers), f"--edgetpu-device={devices}"] if args.workers else []
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_suite(directory, args.metric)
        mine, other, earlier = directory / "ours", directory / "theirs", directory / "earlier"
        at = plugin_at(args.also, directory / "plugin") if args.also else None
        if at:
            subprocess.run(["cp", "-r", str(mine), str(earlier)], check=True)

        def runs_of(slowdown: float, update: bool, round_no: int) -> list[dict[str, Any]]:
            one = [
                functools.partial(ours, mine, slowdown, update, extra),
                functools.partial(theirs, other, slowdown, update),
            ]
            if at:
                one.append(functools.partial(ours, earlier, slowdown, update, extra, at))
            if not update:
                rng.shuffle(one)
            return [{**run(), "round": round_no} for run in one]

        for round_no in range(args.rounds):
            for path in (mine / "baselines", earlier / "baselines", other / "storage"):
                subprocess.run(["rm", "-rf", str(path)], check=True)

            runs += runs_of(0.0, True, round_no)
            order = list(SLOWDOWNS)
            rng.shuffle(order)
            for slowdown in order:
                runs += runs_of(slowdown, False, round_no)
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return stamped(
        {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "workers": args.workers or 1,
            "metric": args.metric,
            "runs": runs,
        }
    )


def report(data: dict[str, Any]) -> str:
    runs = data["runs"]
    lines = [
        f"Run {data['date']} on {data['machine']}, Python {data['python']}, "
        f"{data['workers']} worker(s), pytest-edgetpu gating {data.get('metric', 'p50')}; "
        f"command: `{data['command']}`",
        "",
        "| tool / rule | model | A/A false alarms | +5% caught | +10% caught | +20% caught |",
        "|---|---|---|---|---|---|",
    ]
    baselines: dict[tuple[int, str], dict[str, Any]] = {
        (r["round"], r["tool"]): r for r in runs if r["update"]
    }

    def alarms(rule: str, names: list[str], slowdown: float) -> str:
        """How many gate runs of ``names`` at ``slowdown`` the rule flagged, with a CI."""
        hits = n = 0
        for r in runs:
            if r["update"] or r["slowdown"] != slowdown:
                continue
            for name in names:
                if name not in r["tests"]:
                    continue
                if rule.startswith("pytest-edgetpu") and r["tool"] == rule:
                    n += 1
                    hits += r["tests"][name]["status"] == "REGRESSION"
                elif rule in PYTEST_BENCHMARK_RULES and r["tool"] == "pytest-benchmark":
                    base = baselines.get((r["round"], "pytest-benchmark"))
                    if base and name in base["tests"]:
                        n += 1
                        hits += r["tests"][name][rule] > base["tests"][name][rule] * 1.05
        return wilson(hits, n)

    ours_tools = sorted({r["tool"] for r in runs if r["tool"].startswith("pytest-edgetpu")})
    rules = {tool: f"{tool} (default)" for tool in ours_tools} | {
        stat: f"pytest-benchmark {stat}:5%" for stat in PYTEST_BENCHMARK_RULES
    }
    for name in [*CORAL_MODELS, "all"]:
        names = list(CORAL_MODELS) if name == "all" else [name]
        for rule, label in rules.items():
            cells = [alarms(rule, names, slowdown) for slowdown in SLOWDOWNS]
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Time to verdict: wall time per test of an A/A gate run plus a baseline run (the runs "
        "with an injected slowdown also spend about a second per test calibrating it, in both "
        "tools, so they are left out; they show what a confirmation costs).",
        "",
        "| tool | A/A gate wall s/test | baseline wall s/test | time to verdict s/test "
        "| gate with +10% wall s/test |",
        "|---|---|---|---|---|",
    ]
    tests = len(CORAL_MODELS)

    def mean_wall(tool: str, update: bool, slowdown: float) -> float:
        walls = [
            r["wall_s"] / tests
            for r in runs
            if r["tool"] == tool and r["update"] == update and r["slowdown"] == slowdown
        ]
        return sum(walls) / len(walls) if walls else math.nan

    verdict = {}
    for tool in (*ours_tools, "pytest-benchmark"):
        gate, base = mean_wall(tool, False, 0.0), mean_wall(tool, True, 0.0)
        verdict[tool] = gate + base
        lines.append(
            f"| {tool} | {gate:.2f} | {base:.2f} | {gate + base:.2f} "
            f"| {mean_wall(tool, False, 0.10):.2f} |"
        )
    lines.append("")
    for tool in ours_tools:
        ratio = verdict[tool] / verdict["pytest-benchmark"]
        gates = mean_wall(tool, False, 0.0) / mean_wall("pytest-benchmark", False, 0.0)
        lines.append(
            f"Time to verdict, {tool} over pytest-benchmark: {ratio:.2f}x; "
            f"A/A gate run alone: {gates:.2f}x."
        )
    lines += ["", "Realized slowdown (pytest-edgetpu's measured change, median over rounds):", ""]
    for name in CORAL_MODELS:
        parts = []
        for slowdown in SLOWDOWNS[1:]:
            changes = sorted(
                r["tests"][name]["change"]
                for r in runs
                if r["tool"] == "pytest-edgetpu"
                and not r["update"]
                and r["slowdown"] == slowdown
                and name in r["tests"]
                and r["tests"][name]["change"] is not None
            )
            if changes:
                parts.append(f"+{slowdown:.0%} → {changes[len(changes) // 2]:+.1%}")
        lines.append(f"- {name}: " + ", ".join(parts))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0, help="run pytest-edgetpu with -n N")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--metric", default="p50", help="pytest-edgetpu's gated metric")
    parser.add_argument(
        "--also",
        metavar="REV",
        help="also run pytest-edgetpu as it was at git revision REV, in the same rounds",
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path, help="print the tables of a saved results file")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return
    if not (CORAL / CORAL_MODELS["lstm"]).is_file():
        sys.exit(f"the Coral models are needed at {CORAL}")
    data = run_rounds(args)
    if args.out:
        args.out.write_text(json.dumps(data) + "\n")
    print(report(data))


if __name__ == "__main__":
    main()
