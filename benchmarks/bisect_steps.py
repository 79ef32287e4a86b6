"""Bisect over long histories: does ``pytest-edgetpu bisect`` find the commit that made a real
model +15% slower, in how many steps, and what asv's ``find`` rule would have found on the same
measurements (issue 33).

Each trial builds a scratch repository of GOOD plus N commits (N = 16 or 64), one of which, at
random, makes the benchmark about 15% slower; every other commit changes a file the benchmark
does not read. Two kinds of step:

- ``model``: a model file swap. ``models/m.tflite`` is MediaPipe's ``face_landmark`` (from
  its PyPI wheel) before the step and the Coral ``mobilenet_v1_0.5_160_quant`` from it (about
  +17% on one x86 core); the gate is ``pytest --edgetpu models/m.tflite``.
- ``callable``: pre-processing work. A test times the Coral ``mobilenet_v1_0.25_128_quant``'s
  invoke plus a pure-Python loop; the step adds loops worth 15% of one quiet invoke (calibrated
  open loop in fresh processes, as in ``relative_gate.py``). Relative mode measures callables
  in pairs of processes.

Then ``pytest-edgetpu bisect --json GOOD BAD -- ARGS`` runs as a user would, quiet or beside 2
processes streaming memory (``harness.beside``). A trial is right when the culprit it names
(confirmed against its parent) is the step's commit; its steps are the pytest runs it made
(BAD's, the search's, retries, the confirmation). asv's rule, replayed: the same binary search
by commit order, but at each step it follows the half whose ends differ more (no intervals),
reading the change against GOOD that the bisection measured at a commit, and measuring the
commits the bisection did not visit with one relative run each (the same command).

    .venv-bench/bin/python benchmarks/bisect_steps.py --trials 10 \\
        --out benchmarks/results/bisect_steps.json
    .venv-bench/bin/python benchmarks/bisect_steps.py --report benchmarks/results/bisect_steps.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import CORAL, beside, fetch_mediapipe_models, wilson
from relative_gate import OURS, calibrate, git, loops_for
from saved import save

SIZES = (16, 64)
KINDS = ("model", "callable")
CONDITIONS = ("quiet", "mem2")
STEP = 0.15
FAST_MODEL = "face_landmark"  # MediaPipe
SLOW_MODEL = "mobilenet_v1_0.5_160_quant.tflite"  # Coral
CALLABLE_MODEL = {"mnv1_025": str(CORAL / "mobilenet_v1_0.25_128_quant.tflite")}
ARGS = {"model": ["--edgetpu", "models/m.tflite"], "callable": ["test_ours.py"]}


def commit(repository: Path, message: str) -> str:
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", message)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repository, capture_output=True, text=True, check=True
    ).stdout.strip()


def build_history(
    repository: Path, kind: str, size: int, culprit: int, loops: dict[str, int]
) -> list[str]:
    """GOOD (commit 0) and ``size`` commits after it; from commit ``culprit`` on the benchmark
    is slower. The commits, oldest first."""
    repository.mkdir()
    git(repository, "init", "-q")
    (repository / "pytest.ini").write_text("[pytest]\n")
    models = repository / "models"
    models.mkdir()
    commits = []
    for index in range(size + 1):
        slower = index >= culprit
        if kind == "model":
            source = CORAL / SLOW_MODEL if slower else Path(fetch_mediapipe_models()[FAST_MODEL])
            shutil.copyfile(source, models / "m.tflite")
        else:
            injected = loops if slower else {}
            (repository / "test_ours.py").write_text(
                OURS.format(models=CALLABLE_MODEL, loops=injected)
            )
        (repository / "CHANGES.txt").write_text(f"commit {index}\n")
        commits.append(
            commit(repository, f"commit {index}" + (" (slower)" if index == culprit else ""))
        )
    return commits


def relative_change(repository: Path, sha: str, good: str, args: list[str]) -> float | None:
    """One relative run at ``sha`` against GOOD: the benchmark's change, for asv's rule."""
    git(repository, "checkout", "-q", "--detach", sha)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        against = [f"--edgetpu-against={good}", f"--edgetpu-json={out}"]
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, *against],
            cwd=repository,
            capture_output=True,
            check=False,
        )
        if not out.exists():
            return None
        results = json.loads(out.read_text())["results"]
    changes = [r["verdict"]["change"] for r in results if r.get("verdict")]
    return changes[0] if changes and changes[0] is not None else None


def asv_find(size: int, change_at: Callable[[int], float | None]) -> tuple[int, int]:
    """asv's ``find`` rule over commits 0..size (0 GOOD, ``size`` BAD): bisect, following the
    half whose ends differ more; an unmeasurable commit counts as its lower neighbour's value
    (asv skips failed builds by scanning). The first bad commit it names, and its steps."""
    values: dict[int, float] = {0: 0.0}
    steps = 0

    def value(index: int) -> float:
        nonlocal steps
        if index not in values:
            steps += 1
            measured = change_at(index)
            values[index] = measured if measured is not None else value(index - 1)
        return values[index]

    low, high = 0, size
    value(high)
    while high - low > 1:
        middle = (low + high) // 2
        if abs(value(middle) - value(low)) > abs(value(high) - value(middle)):
            high = middle
        else:
            low = middle
    return high, steps


def one_trial(
    kind: str, size: int, condition: str, loops: dict[str, int], seed: str
) -> dict[str, Any]:
    culprit = random.Random(seed).randint(1, size)
    with tempfile.TemporaryDirectory() as tmp:
        repository = Path(tmp) / "repo"
        commits = build_history(repository, kind, size, culprit, loops)
        out = Path(tmp) / "bisect.json"
        ends = [commits[0], commits[-1], "--", *ARGS[kind]]
        with beside(condition):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "pytest_edgetpu", "bisect", "--json", str(out), *ends],
                cwd=repository,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - start
            report = json.loads(out.read_text()) if out.exists() else {}
            measured = {
                commits.index(step["commit"]): next(iter(step["changes"].values()))["change"]
                for step in report.get("steps", [])
                if step["changes"]
            }
            regressed = report.get("regressed", {})
            if regressed:
                measured[size] = next(iter(regressed.values()))["change"]
            extra = []

            def change_at(index: int) -> float | None:
                if index in measured:
                    return measured[index]
                extra.append(index)
                return relative_change(repository, commits[index], commits[0], ARGS[kind])

            asv_culprit, asv_steps = asv_find(size, change_at)
    named = report.get("culprit") or {}
    found = commits.index(named["commit"]) if named else None
    runs = 1 + sum(step["runs"] for step in report.get("steps", [])) + (1 if named else 0)
    return {
        "kind": kind,
        "size": size,
        "condition": condition,
        "culprit": culprit,
        "found": found,
        "confirmed": bool(named.get("confirmed")),
        "exit": done.returncode,
        "runs": runs,
        "wall_s": round(wall, 1),
        "bad_change": measured.get(size),
        "decisions": [
            [commits.index(s["commit"]), s["decision"], s["runs"]] for s in report.get("steps", [])
        ],
        "asv_found": asv_culprit,
        "asv_steps": asv_steps,
        "asv_extra_runs": len(extra),
        "tail": "" if named else (done.stdout + done.stderr)[-1500:],
    }


def run(trials: int, kinds: list[str], sizes: list[int], conditions: list[str]) -> dict[str, Any]:
    loops: dict[str, int] = {}
    if "callable" in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            worth = calibrate(Path(tmp), CALLABLE_MODEL)
        loops = loops_for(worth, STEP)
    found = []
    for trial in range(trials):
        for kind in kinds:
            for size in sizes:
                for condition in conditions:
                    seed = f"{trial}-{kind}-{size}-{condition}"
                    found.append(one_trial(kind, size, condition, loops, seed))
                    last = found[-1]
                    print(
                        f"trial {trial + 1}/{trials} {kind} N={size} {condition}: culprit "
                        f"{last['culprit']} found {last['found']} in {last['runs']} runs "
                        f"({last['wall_s']} s); asv {last['asv_found']}",
                        file=sys.stderr,
                        flush=True,
                    )
    return {"step": STEP, "loops": loops, "trials": found}


def report(data: dict[str, Any]) -> str:
    lines = [
        "| kind | N | condition | trials | right (95% CI) | confirmed | runs: median, max "
        "(bound log2(N)+3) | wall s (median) | asv find's rule: right |",
        "|:---|---:|:---|---:|:---|---:|:---|---:|:---|",
    ]
    cells: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for trial in data["trials"]:
        cells.setdefault((trial["kind"], trial["size"], trial["condition"]), []).append(trial)
    for (kind, size, condition), trials in sorted(cells.items()):
        right = sum(t["found"] == t["culprit"] for t in trials)
        asv = sum(t["asv_found"] == t["culprit"] for t in trials)
        runs = sorted(t["runs"] for t in trials)
        walls = sorted(t["wall_s"] for t in trials)
        bound = math.log2(size) + 3
        lines.append(
            f"| {kind} | {size} | {condition} | {len(trials)} | {wilson(right, len(trials))} | "
            f"{sum(t['confirmed'] for t in trials)} | "
            f"{runs[len(runs) // 2]}, {runs[-1]} ({bound:.0f}) | {walls[len(walls) // 2]} | "
            f"{asv}/{len(trials)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path, help="print the table of a saved results file")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    save(run(args.trials, args.kinds, args.sizes, args.conditions), args.out)


if __name__ == "__main__":
    main()
