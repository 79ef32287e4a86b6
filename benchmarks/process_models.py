"""Microsecond-scale real models in relative mode, unchanged (issue 32): a model file the
repository tracks keeps both sides in pytest's process, one interpreter per instance; does that
leave a process offset that a verdict would take for a change?

A temporary git repository tracks pymicro-wakeword's four wake-word models (its wheel, from
PyPI: about 2-10 us a call here) and the Coral LSTM; each run is ``pytest --edgetpu
--edgetpu-against=HEAD models/`` in a new pytest process, alternately quiet and beside 2
memory-streaming neighbour processes. Per model and condition: REGRESSION per test-run, and the
spread of the change across runs (each run a new process) against one run's interval.

    .venv/bin/python benchmarks/process_models.py --runs 20 \\
        --out benchmarks/results/process_models.json
    .venv/bin/python benchmarks/process_models.py --report benchmarks/results/process_models.json
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CACHE, CORAL, beside, bytecode_compiled, wilson
from saved import measure_or_report

WAKEWORD = "pymicro-wakeword==2.5.0"
WAKEWORDS = ("alexa", "hey_jarvis", "hey_mycroft", "okay_nabu")
CONDITIONS = ("quiet", "mem2")


def wakeword_models() -> list[Path]:
    """pymicro-wakeword's four models, from its wheel (downloaded once into the cache)."""
    folder = CACHE / "pymicro-wakeword"
    models = [folder / f"{name}.tflite" for name in WAKEWORDS]
    if not all(model.is_file() for model in models):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", folder, WAKEWORD],
            check=True,
        )
        wheel = next(folder.glob("pymicro_wakeword-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for model in models:
                model.write_bytes(archive.read(f"pymicro_wakeword/models/{model.name}"))
    return models


def make_repo(folder: Path) -> None:
    (folder / "models").mkdir(parents=True)
    for model in [*wakeword_models(), CORAL / "keras_lstm_mnist_ptq.tflite"]:
        shutil.copy(model, folder / "models" / model.name)
    (folder / "tox.ini").write_text("[pytest]\naddopts = -p no:randomly -p no:cacheprovider\n")
    git = ["git", "-C", str(folder), "-c", "user.email=b@b", "-c", "user.name=b"]
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "models"], check=True)


def one_run(folder: Path) -> dict[str, Any]:
    out = folder / "results.json"
    out.unlink(missing_ok=True)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--edgetpu", "--edgetpu-against=HEAD", "models/",
         f"--edgetpu-json={out}"],
        cwd=folder, env=environment, capture_output=True, check=False,
    )  # fmt: skip
    results = json.loads(out.read_text())["results"]
    return {
        r["test_id"]: {
            "status": r["verdict"]["status"],
            "change": r["verdict"]["change"],
            "low": r["verdict"]["ci_low"],
            "high": r["verdict"]["ci_high"],
        }
        for r in results
    }


def measure(runs: int) -> dict[str, Any]:
    by_condition: dict[str, list[dict[str, Any]]] = {condition: [] for condition in CONDITIONS}
    bytecode_compiled()
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "repo"
        make_repo(repo)
        for _ in range(runs):
            for condition in CONDITIONS:
                with beside(condition):
                    by_condition[condition].append(one_run(repo))
    return {"runs": runs, "by_condition": by_condition}


def report(saved: dict[str, Any]) -> str:
    lines = [
        "| condition | model | REGRESSION | spread of the change across runs (sd) | "
        "one run's 95% half-width (median) |",
        "|---|---|---|---|---|",
    ]
    for condition, runs in saved["by_condition"].items():
        for test in runs[0]:
            verdicts = [run[test] for run in runs if test in run]
            regressions = sum(v["status"] == "REGRESSION" for v in verdicts)
            logs = [math.log1p(v["change"]) for v in verdicts if v["change"] is not None]
            half = statistics.median(
                (v["high"] - v["low"]) / 2 for v in verdicts if v["change"] is not None
            )
            lines.append(
                f"| {condition} | {test} | {wilson(regressions, len(verdicts))} | "
                f"{statistics.stdev(logs):.1%} | {half:.1%} |"
            )
        total = sum(len(run) for run in runs)
        flagged = sum(v["status"] == "REGRESSION" for run in runs for v in run.values())
        lines.append(f"| {condition} | all | {wilson(flagged, total)} | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    measure_or_report(__doc__ or "", "runs", 20, measure, report)
