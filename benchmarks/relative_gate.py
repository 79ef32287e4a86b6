"""Relative mode (``--edgetpu-against``) against pytest-benchmark measuring base and head in the
same job, on a quiet host and beside memory-streaming neighbours (issue 13).

Models: the three Coral models of ``gate_accuracy.py`` and eight ms-scale real models that a
PyPI package ships: MediaPipe 0.10.14's ``mediapipe/modules/*.tflite`` (``pip download``-ed
into a cache folder, never committed). Each test times ``invoke()`` followed by injected work.

The injected slowdowns are fixed before any load starts: for each model, the loop count worth
one quiet invoke is measured on the quiet host (``calibrate``: the loop and the invoke timed
apart, in alternation, in three fresh processes), and +5%, +10% and +100% (a doubling, as a
model swap would be) are 0.05, 0.1 and 1 times it in every condition. Under memory contention
a model slows far more than the injected Python work does, so the table also says what each
injected slowdown realized there (pytest-edgetpu's measured change).

A round, in each condition (quiet; 2 or 4 neighbour processes copying a 64 MiB buffer in a
loop, ``harness.NEIGHBOURS["mem"]``), for each change of its list (A/A, and the
slowdowns worth measuring there), in a shuffled order:

- pytest-edgetpu: the scratch repository's commit has no injected work; the working tree gets
  the change; ``pytest --edgetpu-against=HEAD`` gates it (the test's own code at HEAD runs in a
  helper, instances interleaved);
- pytest-benchmark, the way its users gate a pull request in one job: run the suite at the base
  (``--benchmark-save``), then at the head with ``--benchmark-compare`` and
  ``--benchmark-compare-fail=median:5%``.

On the quiet host each round also times a stored-baseline gate of the same suite (``pytest
--edgetpu`` against baselines recorded at the round's start), for the cost of relative mode;
with ``--stored-too`` each change is also gated against those baselines, in every condition
(and with ``--also REV``, by the plugin at REV too, against the same baselines).

    .venv-bench/bin/python benchmarks/relative_gate.py --rounds 3 \\
        --out benchmarks/results/relative_gate.json
    .venv-bench/bin/python benchmarks/relative_gate.py \\
        --report benchmarks/results/relative_gate.json
    .venv-bench/bin/python benchmarks/relative_gate.py \\
        --realized benchmarks/results/relative_gate.json
    .venv-bench/bin/python benchmarks/relative_gate.py --rounds 5 --conditions quiet \\
        --changes 0 --out benchmarks/results/relative_gate_cost.json
    .venv-bench/bin/python benchmarks/relative_gate.py --rounds 3 --conditions quiet,mem2 \\
        --changes 0,0.1 --stored-too --also 7b1afef \\
        --out benchmarks/results/relative_gate_fit.json
    .venv-bench/bin/python benchmarks/relative_gate.py --rounds 3 --conditions quiet,mem2 \\
        --changes 0,0.1 --stored-only --also 5f5c4d5 \\
        --out benchmarks/results/relative_gate_host_square.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import (
    CORAL,
    CORAL_MODELS,
    bytecode_compiled,
    fetch_mediapipe_models,
    plugin_at,
    pytest_run,
    start_neighbours,
    wilson,
)
from saved import stamped

SLOWDOWNS = (0.05, 0.10, 1.0)
#: The changes gated in each condition: A/A everywhere, and what the issue asks there.
CELLS = {"quiet": (0.0, 0.05, 0.10), "mem2": (0.0, 0.10), "mem4": (0.0, 1.0)}

#: What the calibration and the realized check share: a model's interpreter, the injected loop.
TIMING = """
import json, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter


def burn(loops):  # the injected work of OURS and THEIRS
    x = 0
    for i in range(loops):
        x += i


def timed(fn, *args):
    start = time.perf_counter_ns()
    fn(*args)
    return time.perf_counter_ns() - start


def lower_quartile(values):
    return sorted(values)[len(values) // 4]


def loops_per_invoke(invoke, seconds=1.0):
    # invoke() and a burn of about its length alternate; each one's lower quartile is its quiet
    # time, and their ratio the loop count one quiet invoke is worth.
    for _ in range(5):
        invoke()
    probe = 1000
    probe = max(100, round(probe * lower_quartile([timed(invoke) for _ in range(10)])
                           / lower_quartile([timed(burn, probe) for _ in range(10)])))
    invokes, burns = [], []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(invokes) < 20:
        invokes.append(timed(invoke))
        burns.append(timed(burn, probe))
    return probe * lower_quartile(invokes) / lower_quartile(burns)


def interpreter_of(path):
    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    for d in interpreter.get_input_details():
        rng = np.random.default_rng(0)
        interpreter.set_tensor(d["index"], rng.integers(0, 255, d["shape"]).astype(d["dtype"]))
    return interpreter
"""
CALIBRATE = (
    TIMING
    + """
worth = {}
for name, path in json.loads(sys.argv[1]).items():
    worth[name] = loops_per_invoke(interpreter_of(path).invoke)
print(json.dumps(worth))
"""
)
#: For each model: the invoke alone and followed by its +10% loops, in alternation for 3 s; the
#: p5 of each (the plugin's quiet figure) and the loop count one invoke is worth now.
REALIZED = (
    TIMING
    + """
worth = json.loads(sys.argv[2])
now = {}
for name, path in json.loads(sys.argv[1]).items():
    invoke = interpreter_of(path).invoke
    loops = max(1, round(0.1 * worth[name]))
    both = lambda: (invoke(), burn(loops))
    alone, slowed = [], []
    for _ in range(5):
        both()
    deadline = time.perf_counter() + 3.0
    while time.perf_counter() < deadline:
        alone.append(timed(invoke))
        slowed.append(timed(both))
    p5 = lambda values: float(np.percentile(values, 5))
    now[name] = {"invoke_ms": p5(alone) / 1e6, "realized": p5(slowed) / p5(alone) - 1,
                 "worth_now": loops_per_invoke(invoke)}
print(json.dumps(now))
"""
)
#: Fresh processes the calibration runs in: a process's own speed state (see docs/relative-mode.md)
#: moves one process's figure by several percent, the median of a few far less.
CALIBRATIONS = 3

OURS = """
import pytest

MODELS = {models!r}
LOOPS = {loops!r}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model(name, edgetpu, tpu_bench):
    model = edgetpu.load(MODELS[name])
    model.set_inputs()
    loops = LOOPS.get(name, 0)

    def infer():
        model.interpreter.invoke()
        x = 0
        for i in range(loops):
            x += i

    tpu_bench(infer)
"""

THEIRS = """
import pytest
import numpy as np
from ai_edge_litert.interpreter import Interpreter

MODELS = {models!r}
LOOPS = {loops!r}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model(name, benchmark):
    interpreter = Interpreter(model_path=MODELS[name], num_threads=1)
    interpreter.allocate_tensors()
    for d in interpreter.get_input_details():
        rng = np.random.default_rng(0)
        interpreter.set_tensor(d["index"], rng.integers(0, 255, d["shape"]).astype(d["dtype"]))
    loops = LOOPS.get(name, 0)

    def infer():
        interpreter.invoke()
        x = 0
        for i in range(loops):
            x += i

    benchmark(infer)
"""


def calibrate(directory: Path, models: dict[str, str]) -> dict[str, float]:
    """For each model, the burn loop count worth one quiet invoke (open loop: the loop and the
    invoke timed apart, in alternation), the median over CALIBRATIONS processes; an injected
    slowdown of fraction f is then f times that, so +5% is half of +10% by construction."""
    worths = []
    for _ in range(CALIBRATIONS):
        done = subprocess.run(
            [sys.executable, "-c", CALIBRATE, json.dumps(models)],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        )
        worths.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {name: statistics.median(worth[name] for worth in worths) for name in models}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def write_suites(directory: Path, models: dict[str, str]) -> tuple[Path, Path]:
    mine, other = directory / "ours", directory / "theirs"
    for folder in (mine, other):
        folder.mkdir()
    (mine / "pytest.ini").write_text("[pytest]\n")
    (mine / "test_ours.py").write_text(OURS.format(models=models, loops={}))
    (mine / ".gitignore").write_text("baselines/\nresults.json\n")
    git(mine, "init", "-q")
    git(mine, "add", "-A")
    git(mine, "commit", "-q", "-m", "base: no injected work")
    (other / "pytest.ini").write_text("[pytest]\n")
    return mine, other


def loops_for(worth: dict[str, float], slowdown: float) -> dict[str, int]:
    if not slowdown:
        return {}
    return {name: max(1, round(slowdown * loops)) for name, loops in worth.items()}


def ours_run(
    mine: Path,
    models: dict[str, str],
    loops: dict[str, int],
    mode: str,
    earlier: tuple[str, Path] | None = None,
) -> dict[str, Any]:
    """One pytest-edgetpu gate: ``relative`` against HEAD, ``stored`` or ``record``; with
    ``earlier`` (a commit and its source tree), the plugin as it was at that commit."""
    (mine / "test_ours.py").write_text(OURS.format(models=models, loops=loops))
    out = mine / "results.json"
    out.unlink(missing_ok=True)
    args = {
        "relative": ["--edgetpu-against=HEAD"],
        "stored": ["--edgetpu"],
        "record": ["--edgetpu-update-baselines"],
    }[mode]
    code, wall, tail = pytest_run(
        mine,
        ["-p", "no:benchmark", *args, f"--edgetpu-json={out}"],
        0.0,
        earlier[1] if earlier else None,
    )
    results = json.loads(out.read_text())["results"] if out.exists() else []
    tests = {}
    for r in results:
        against = r.get("against") or {}
        tests[r["test_id"].split("[")[-1].rstrip("]")] = {
            "status": r["verdict"]["status"],
            "change": r["verdict"]["change"],
            "reason": r["verdict"]["reason"],
            "instances": r["instance_values_ms"],
            "base_instances": against.get("instance_values_ms"),
            "wait": r.get("run_queue_wait"),
        }
    tool = f"pytest-edgetpu@{earlier[0]}" if earlier else "pytest-edgetpu"
    return {"tool": tool, "mode": mode, "exit": code, "wall_s": wall,
            "tests": tests, "tail": tail if not tests else ""}  # fmt: skip


def theirs_job(other: Path, models: dict[str, str], loops: dict[str, int]) -> dict[str, Any]:
    """pytest-benchmark as a pull request's job: the base, then the head compared with it."""
    storage = other / "storage"
    subprocess.run(["rm", "-rf", str(storage)], check=True)
    common = ["-p", "no:edgetpu", "-p", "no:xdist", f"--benchmark-storage=file://{storage}"]
    sides = {}
    wall = 0.0
    seconds: dict[str, float] = {}
    for side, side_loops, extra in (
        ("base", {}, ["--benchmark-save=base"]),
        ("head", loops, ["--benchmark-compare=0001", "--benchmark-compare-fail=median:5%"]),
    ):
        (other / "test_theirs.py").write_text(THEIRS.format(models=models, loops=side_loops))
        out = other / f"{side}.json"
        out.unlink(missing_ok=True)
        _, seconds[side], _ = pytest_run(other, [*common, *extra, f"--benchmark-json={out}"], 0.0)
        wall += seconds[side]
        sides[side] = (
            {b["param"]: b["stats"]["median"] for b in json.loads(out.read_text())["benchmarks"]}
            if out.exists()
            else {}
        )
    tests = {
        name: {"base_median": base, "head_median": sides["head"][name]}
        for name, base in sides["base"].items()
        if name in sides["head"]
    }
    # head_wall_s: what a gate against a saved run (--benchmark-compare) takes.
    return {"tool": "pytest-benchmark", "mode": "same-job", "wall_s": wall,
            "head_wall_s": seconds["head"], "tests": tests}  # fmt: skip


def all_models() -> dict[str, str]:
    if not (CORAL / CORAL_MODELS["lstm"]).is_file():
        sys.exit(f"the Coral models are needed at {CORAL}")
    models = {name: str(CORAL / file) for name, file in CORAL_MODELS.items()}
    return models | fetch_mediapipe_models()


def realized_now(data: dict[str, Any]) -> str:
    """What a results file's +10% loops add to each model's invoke when timed directly now."""
    worth = data["loops_per_invoke"]
    done = subprocess.run(
        [sys.executable, "-c", REALIZED, json.dumps(all_models()), json.dumps(worth)],
        capture_output=True,
        text=True,
        check=True,
    )
    now = json.loads(done.stdout.strip().splitlines()[-1])
    lines = [
        "| model | loops worth one invoke, calibrated | now | invoke p5 now | "
        "+10% loops realize now |",
        "|---|---|---|---|---|",
    ]
    for name, figures in now.items():
        lines.append(
            f"| {name} | {worth[name]:.0f} | {figures['worth_now']:.0f} | "
            f"{figures['invoke_ms']:.3f} ms | {figures['realized']:+.1%} |"
        )
    return "\n".join(lines)


def run_rounds(args: argparse.Namespace) -> dict[str, Any]:
    models = all_models()
    bytecode_compiled()
    rng = random.Random(args.seed)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        mine, other = write_suites(Path(tmp), models)
        earlier = plugin_at(args.also, Path(tmp) / "plugin") if args.also else None
        calibrated = calibrate(mine, models)
        print(f"loops worth one quiet invoke: {calibrated}", file=sys.stderr, flush=True)
        for round_no in range(args.rounds):
            if "quiet" in args.conditions:
                record = ours_run(mine, models, {}, "record")
                costs = [record, ours_run(mine, models, {}, "stored")]
                if earlier and args.stored_too:
                    costs.append(ours_run(mine, models, {}, "stored", earlier))
                for run in costs:
                    run |= {"round": round_no, "condition": "quiet", "slowdown": 0.0}
                runs += costs
            conditions = list(args.conditions)
            rng.shuffle(conditions)
            for condition in conditions:
                neighbours = start_neighbours(condition)
                try:
                    time.sleep(1.0 if neighbours else 0.0)
                    cells = [
                        c for c in CELLS[condition] if args.changes is None or c in args.changes
                    ]
                    rng.shuffle(cells)
                    for slowdown in cells:
                        loops = loops_for(calibrated, slowdown)
                        tools = [] if args.stored_only else [
                            functools.partial(ours_run, mine, models, loops, "relative"),
                            functools.partial(theirs_job, other, models, loops),
                        ]  # fmt: skip
                        if args.stored_too or args.stored_only:
                            tools.append(functools.partial(ours_run, mine, models, loops, "stored"))
                        if earlier:
                            modes = ("relative",) if not args.stored_only else ()
                            if args.stored_too or args.stored_only:
                                modes += ("stored",)
                            for mode in modes:
                                tools.append(
                                    functools.partial(ours_run, mine, models, loops, mode, earlier)
                                )
                        rng.shuffle(tools)
                        for make in tools:
                            run = make()
                            run |= {"round": round_no, "condition": condition, "slowdown": slowdown}
                            runs.append(run)
                        git(mine, "checkout", "--", "test_ours.py")
                finally:
                    for process in neighbours:
                        process.kill()
                        process.wait()
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return stamped(
        {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "models": sorted(models),
            "loops_per_invoke": calibrated,
            "loops": {f"{f:g}": loops_for(calibrated, f) for f in SLOWDOWNS},
            "runs": runs,
        }
    )


def report(data: dict[str, Any]) -> str:
    runs = data["runs"]
    relative = [r for r in runs if r["tool"] == "pytest-edgetpu" and r["mode"] == "relative"]
    theirs = [r for r in runs if r["tool"] == "pytest-benchmark"]
    earlier = sorted({r["tool"] for r in runs if r["tool"].startswith("pytest-edgetpu@")})
    # Stored gates of a change, or in a condition other than quiet: --stored-too.
    stored_too = any(
        r["mode"] == "stored" and (r["slowdown"] or r["condition"] != "quiet") for r in runs
    )
    earlier_stored = [tool for tool in earlier if any(
        r["tool"] == tool and r["mode"] == "stored" for r in runs
    )]  # fmt: skip
    lines = [
        f"Run {data['date']} on {data['machine']}, Python {data['python']}; {len(data['models'])} "
        f"models; command: `{data['command']}`",
        "",
        "| condition | change | pytest-edgetpu --edgetpu-against flagged | "
        + "".join(f"{tool} flagged | " for tool in earlier)
        + ("pytest-edgetpu stored flagged (BUSY) | " if stored_too else "")
        + "".join(f"{tool} stored flagged (BUSY) | " for tool in earlier_stored if stored_too)
        + "pytest-benchmark same job, median:5% flagged | realized (pytest-edgetpu's measured "
        "change, median) |",
        "|---|---|---|---|---|"
        + "---|" * (len(earlier) + (1 + len(earlier_stored) if stored_too else 0)),
    ]

    def flagged(
        tool: str, condition: str, slowdown: float, mode: str = "relative"
    ) -> tuple[int, int, list[float]]:
        hits = count = 0
        changes = []
        for r in runs:
            if (r["tool"], r["mode"], r["condition"], r["slowdown"]) == (
                tool, mode, condition, slowdown
            ):  # fmt: skip
                for test in r["tests"].values():
                    count += 1
                    hits += test["status"] == "REGRESSION"
                    if test["change"] is not None:
                        changes.append(test["change"])
        return hits, count, changes

    measured = {r["condition"] for r in runs}
    for condition, cells in CELLS.items():
        if condition not in measured:
            continue
        for slowdown in cells:
            ours_hits, ours_n, changes = flagged("pytest-edgetpu", condition, slowdown)
            if not any(
                (r["condition"], r["slowdown"]) == (condition, slowdown) and r["mode"] != "record"
                for r in runs
            ):
                continue  # a change this run did not gate (--changes)
            before = "".join(
                f"{wilson(*flagged(tool, condition, slowdown)[:2])} | " for tool in earlier
            )
            their_hits = their_n = 0
            for r in theirs:
                if r["condition"] == condition and r["slowdown"] == slowdown:
                    for test in r["tests"].values():
                        their_n += 1
                        their_hits += test["head_median"] > test["base_median"] * 1.05
            change = "A/A" if slowdown == 0 else f"+{slowdown:.0%}"
            realized = f"{statistics.median(changes):+.1%}" if changes else "n/a"
            stored = ""
            for tool in ["pytest-edgetpu", *earlier_stored] if stored_too else []:
                stored_hits, stored_n, _ = flagged(tool, condition, slowdown, "stored")
                busy = sum(
                    test["status"] == "BUSY"
                    for r in runs
                    if (r["tool"], r["mode"], r["condition"], r["slowdown"])
                    == (tool, "stored", condition, slowdown)
                    for test in r["tests"].values()
                )
                stored += f"{wilson(stored_hits, stored_n)} ({busy}) | "
            lines.append(
                f"| {condition} | {change} | {wilson(ours_hits, ours_n)} | {before}{stored}"
                f"{wilson(their_hits, their_n)} | {realized} |"
            )

    def wall(mode: str, condition: str = "quiet", tool: str = "pytest-edgetpu") -> float:
        walls = [
            r["wall_s"]
            for r in runs
            if r["tool"] == tool
            and r["mode"] == mode
            and r["condition"] == condition
            and r["slowdown"] == 0.0
        ]
        return statistics.median(walls) if walls else float("nan")

    quiet_jobs = [r["wall_s"] for r in theirs if r["condition"] == "quiet" and r["slowdown"] == 0.0]
    heads = [
        r["head_wall_s"]
        for r in theirs
        if r["condition"] == "quiet" and r["slowdown"] == 0.0 and "head_wall_s" in r
    ]
    head = f" (its head run alone {statistics.median(heads):.1f} s)" if heads else ""
    if quiet_jobs:
        stored, rel = wall("stored"), wall("relative")
        lines += [
            "",
            f"Time per gate run, quiet host, A/A, median over rounds ({len(data['models'])} "
            f"tests): stored baselines {stored:.1f} s, relative mode {rel:.1f} s "
            f"({rel / stored:.2f}x), pytest-benchmark's two runs "
            f"{statistics.median(quiet_jobs):.1f} s{head}."
            + "".join(
                f" {tool} relative mode {wall('relative', tool=tool):.1f} s." for tool in earlier
            )
            + "".join(
                f" {tool} stored baselines {wall('stored', tool=tool):.1f} s."
                for tool in earlier_stored
            ),
        ]
    elif earlier_stored:  # --stored-only
        lines += [
            "",
            "Time per stored gate, quiet host, A/A, median over rounds: "
            + ", ".join(
                f"{tool} {wall('stored', tool=tool):.1f} s"
                for tool in ["pytest-edgetpu", *earlier_stored]
            )
            + ".",
        ]
    alarms = [
        f"{name} {test['change']:+.1%} ({r['condition']})"
        for r in relative
        if r["slowdown"] == 0.0
        for name, test in r["tests"].items()
        if test["status"] == "REGRESSION"
    ]
    lines += ["", "pytest-edgetpu false alarms: " + (", ".join(alarms) or "none")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path, help="print the tables of a saved results file")
    parser.add_argument(
        "--also",
        metavar="REV",
        help="also gate with pytest-edgetpu as it was at git revision REV, in the same rounds "
        "(with --stored-too, against the stored baselines too)",
    )
    parser.add_argument(
        "--conditions",
        type=lambda text: [c for c in text.split(",") if c],
        default=list(CELLS),
        metavar="LIST",
        help=f"the conditions to measure, comma-separated (default: {','.join(CELLS)})",
    )
    parser.add_argument(
        "--stored-too",
        action="store_true",
        help="also gate each change against the round's stored baselines (recorded quiet at "
        "its start), in every condition",
    )
    parser.add_argument(
        "--stored-only",
        action="store_true",
        help="gate each change against the round's stored baselines only (no relative mode, "
        "no pytest-benchmark): a stored verdict's rule, measured in a third of the time",
    )
    parser.add_argument(
        "--changes",
        type=lambda text: [float(c) for c in text.split(",") if c],
        metavar="LIST",
        help="gate only these of each condition's changes, comma-separated fractions (0 for "
        "A/A: with --conditions quiet, a round is then the cost of each way to gate)",
    )
    parser.add_argument(
        "--realized",
        type=Path,
        metavar="FILE",
        help="time each model's +10%% loops of a saved results file directly, now",
    )
    args = parser.parse_args()
    unknown = sorted(set(args.conditions) - set(CELLS))
    if unknown:
        parser.error(f"--conditions: unknown {', '.join(unknown)}; choose from {', '.join(CELLS)}")
    if args.realized:
        print(realized_now(json.loads(args.realized.read_text())))
        return
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return
    data = run_rounds(args)
    if args.out:
        args.out.write_text(json.dumps(data) + "\n")
    print(report(data))


if __name__ == "__main__":
    main()
