"""Stored baselines across processes (issue 32): a baseline is recorded in one process and gated
in another; how often does that alone read as a regression?

A scratch repository holds ``process_gate.py``'s six small callables and, as zero-code items,
pymicro-wakeword's four wake-word models and the Coral LSTM (2-10 us a call). Each round records
the baselines in a new pytest process (``--edgetpu-update-baselines --edgetpu-accept-unstable``)
and gates unchanged code in another (``pytest --edgetpu``), alternately quiet and beside 2
memory-streaming neighbour processes: every round draws a new recording process and a new
gating process. Per test and condition: REGRESSION (and BUSY, UNSTABLE) per test-run.

    .venv/bin/python benchmarks/process_stored.py --rounds 20 \\
        --out benchmarks/results/process_stored.json
    .venv/bin/python benchmarks/process_stored.py --report benchmarks/results/process_stored.json
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CORAL, beside, bytecode_compiled, wilson
from process_gate import pytest, write_tests
from process_models import wakeword_models
from saved import measure_or_report

CONDITIONS = ("quiet", "mem2")


def make_folder(folder: Path) -> None:
    (folder / "models").mkdir(parents=True)
    for model in [*wakeword_models(), CORAL / "keras_lstm_mnist_ptq.tflite"]:
        shutil.copy(model, folder / "models" / model.name)
    write_tests(folder, 1.0)
    (folder / "test_theirs.py").unlink()
    (folder / "tox.ini").write_text("[pytest]\naddopts = -p no:randomly -p no:cacheprovider\n")


def one_round(folder: Path) -> tuple[dict[str, str], dict[str, list[float | None]]]:
    """One recording and one gate: each test's status, and its change and CPU wait."""
    shutil.rmtree(folder / "baselines", ignore_errors=True)
    selected = ("test_small.py", "models/", "-p", "no:benchmark", "--edgetpu")
    pytest(folder, None, *selected, "--edgetpu-update-baselines", "--edgetpu-accept-unstable")
    out = folder / "results.json"
    out.unlink(missing_ok=True)
    pytest(folder, None, *selected, f"--edgetpu-json={out}")
    results = json.loads(out.read_text())["results"]
    statuses = {r["test_id"]: r["verdict"]["status"] for r in results}
    details = {r["test_id"]: [r["verdict"]["change"], r.get("run_queue_wait")] for r in results}
    return statuses, details


def measure(rounds: int) -> dict[str, Any]:
    by_condition: dict[str, list[dict[str, str]]] = {condition: [] for condition in CONDITIONS}
    details: dict[str, list[dict[str, list[float | None]]]] = {c: [] for c in CONDITIONS}
    bytecode_compiled()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "suite"
        make_folder(folder)
        for _ in range(rounds):
            for condition in CONDITIONS:
                with beside(condition):
                    statuses, changes = one_round(folder)
                by_condition[condition].append(statuses)
                details[condition].append(changes)
    # details: per round, each test's [change, CPU wait] (the gate's)
    return {"rounds": rounds, "by_condition": by_condition, "details": details}


def report(saved: dict[str, Any]) -> str:
    lines = ["| condition | test | REGRESSION | BUSY, UNSTABLE |", "|---|---|---|---|"]
    for condition, runs in saved["by_condition"].items():
        tests = sorted({test for run in runs for test in run})
        for test in tests:
            counts = Counter(run[test] for run in runs if test in run)
            total = sum(counts.values())
            lines.append(
                f"| {condition} | {test} | {wilson(counts['REGRESSION'], total)} | "
                f"{counts['BUSY']}, {counts['UNSTABLE']} |"
            )
        every = Counter(status for run in runs for status in run.values())
        lines.append(
            f"| {condition} | all | {wilson(every['REGRESSION'], sum(every.values()))} | "
            f"{every['BUSY']}, {every['UNSTABLE']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    measure_or_report(__doc__ or "", "rounds", 20, measure, report)
