"""Creep: ten commits that each add 2.5% of the original latency pass every per-pull-request
gate, and what sees them (issue 33).

In a scratch repository, commit 0 benchmarks the three Coral models (``invoke()``); commit i
adds injected work worth ``0.025 * i`` of one quiet invoke (calibrated open loop, as in
``relative_gate.py``), so each commit is about 2.5% slower than its parent and commit 10 is
+25% on commit 0. Measured, in a round, on a quiet host and beside 2 processes streaming
memory:

- the per-pull-request gate: at each commit i, ``pytest --edgetpu-against=HEAD~1`` (relative
  mode, the ``relative`` job of the example workflow); expected to pass, +2.5% being under the
  5% threshold;
- the gate against the release: at commit 10, ``pytest --edgetpu-against=<commit 0>`` (the
  ``creep`` job); expected to fail every model;
- ``pytest-edgetpu history`` over the ten per-pull-request runs' results files (each the
  checked-out commit's figures): expected to report a slowdown step and exit 1.

    python benchmarks/creep.py --rounds 3 --out benchmarks/results/creep.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import CORAL, CORAL_MODELS, pytest_run, start_neighbours
from relative_gate import OURS, calibrate, git, loops_for, write_suites
from saved import measure_or_report

COMMITS = 10
STEP = 0.025
#: A quiet host, and 2 neighbour processes streaming memory (the calibration runs beside them
#: too: the injected work is worth 2.5% of an invoke as measured there).
CONDITIONS = ("quiet", "mem2")


def gate(mine: Path, against: str, out: Path) -> dict[str, Any]:
    """One relative gate of the checked-out commit against ``against``: exit and verdicts."""
    code, wall, tail = pytest_run(
        mine, ["-p", "no:benchmark", f"--edgetpu-against={against}", f"--edgetpu-json={out}"], 0.0
    )
    results = json.loads(out.read_text())["results"] if out.exists() else []
    verdicts = {
        r["test_id"].split("[")[-1].rstrip("]"): [r["verdict"]["status"], r["verdict"]["change"]]
        for r in results
    }
    return {"exit": code, "wall_s": wall, "verdicts": verdicts, "tail": "" if results else tail}


def head(repository: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repository, capture_output=True, text=True, check=True
    ).stdout.strip()


def one_round(models: dict[str, str], scratch: Path) -> dict[str, Any]:
    mine, _ = write_suites(scratch, models)
    worth = calibrate(mine, models)
    commits = [head(mine)]
    for commit in range(1, COMMITS + 1):
        loops = loops_for(worth, STEP * commit)
        (mine / "test_ours.py").write_text(OURS.format(models=models, loops=loops))
        git(mine, "commit", "-q", "-am", f"commit {commit}: +{STEP:.1%} of the original")
        commits.append(head(mine))
    runs = scratch / "runs"
    runs.mkdir()
    per_pull_request = []
    for commit in range(1, COMMITS + 1):
        git(mine, "checkout", "-q", commits[commit])
        per_pull_request.append(gate(mine, "HEAD~1", runs / f"commit-{commit:02d}.json"))
    release = gate(mine, commits[0], scratch / "release.json")
    history = subprocess.run(
        [sys.executable, "-m", "pytest_edgetpu", "history"]
        + [str(runs / f"commit-{commit:02d}.json") for commit in range(1, COMMITS + 1)],
        capture_output=True,
        text=True,
        check=False,
        cwd=scratch,
    )
    return {
        "loops_per_invoke": worth,
        "per_pull_request": per_pull_request,
        "against_release": release,
        "history_exit": history.returncode,
        "history": history.stdout.replace(str(runs) + "/", ""),
    }


def run_rounds(rounds: int) -> dict[str, Any]:
    """``rounds`` rounds in each condition, the conditions alternating."""
    models = {name: str(CORAL / file) for name, file in CORAL_MODELS.items()}
    if not all(Path(path).is_file() for path in models.values()):
        sys.exit(f"the Coral models are not in {CORAL}")
    found = []
    for number in range(rounds):
        for condition in CONDITIONS:
            neighbours = start_neighbours(condition)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    found.append({"condition": condition, **one_round(models, Path(tmp))})
            finally:
                for process in neighbours:
                    process.kill()
                    process.wait()
        print(f"round {number + 1}/{rounds} done", file=sys.stderr, flush=True)
    return {"commits": COMMITS, "step": STEP, "models": sorted(models), "rounds": found}


def report(data: dict[str, Any]) -> str:
    lines = [
        "| round | condition | per-PR gates passed (of each model's 10) | gate against commit 0 | "
        "history exit | history's steps |",
        "|---:|:---|:---|:---|---:|:---|",
    ]
    for number, found in enumerate(data["rounds"], 1):
        passed = {
            model: sum(
                run["verdicts"].get(model, ["?"])[0] in ("PASS", "IMPROVED")
                for run in found["per_pull_request"]
            )
            for model in data["models"]
        }
        release = ", ".join(
            f"{model} {status} {change:+.1%}" if change is not None else f"{model} {status}"
            for model, (status, change) in sorted(found["against_release"]["verdicts"].items())
        )
        steps = [line for line in found["history"].splitlines() if line.startswith("| `")]
        described = "; ".join(
            " ".join(cell.strip() for cell in line.split("|")[1:5]) for line in steps
        )
        lines.append(
            f"| {number} | {found.get('condition', 'quiet')} | "
            f"{', '.join(f'{m} {n}' for m, n in passed.items())} | {release} | "
            f"{found['history_exit']} | {described or 'none'} |"
        )
    return "\n".join(lines)


def main() -> None:
    measure_or_report(__doc__, "rounds", 2, run_rounds, report)


if __name__ == "__main__":
    main()
