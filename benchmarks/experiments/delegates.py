"""Latency with XNNPACK on and off, and how much of each model XNNPACK takes (issue 18).

Models: the three Coral CPU models and eight real models a PyPI package ships (MediaPipe
0.10.14's ``mediapipe/modules/*.tflite``, fetched into a cache folder by ``relative_gate.py``'s
helper, never committed), each a zero-code ``.tflite`` item in a scratch folder.

A round gates the folder twice with pytest-edgetpu, ``--edgetpu-device=cpu`` (LiteRT's default
path, XNNPACK on) and ``--edgetpu-device=cpu-builtin`` (built-in kernels alone), in an order that
alternates between rounds (on-off, off-on, ...), each run writing ``--edgetpu-json``. Per model
and round, the ratio of the two p50s; the table gives the median ratio over rounds with its
range, the p50s of the last round, and the ops XNNPACK left to the CPU (from the results'
``delegation``). Only ratios within one round are compared, so the host's slow modes, which last
minutes, cancel.

    .venv/bin/python benchmarks/experiments/delegates.py --rounds 5 \\
        --out benchmarks/results/delegates.json
    .venv/bin/python benchmarks/experiments/delegates.py --report benchmarks/results/delegates.json
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# The shared modules (harness, saved) sit beside the standing suites, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import CORAL, CORAL_MODELS, fetch_mediapipe_models
from saved import measure_or_report

DEVICES = ("cpu", "cpu-builtin")
INI = "[pytest]\nedgetpu_max_time = 1.0\n"


def gate(folder: Path, device: str) -> dict[str, dict[str, Any]]:
    """One pytest-edgetpu run over the folder on ``device``: each model's p50 and delegation,
    or, for a model that fails there, the plugin's one line that says why."""
    out = folder / f"{device}.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--edgetpu",
            f"--edgetpu-device={device}",
            f"--edgetpu-json={out}",
            "models",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    found: dict[str, dict[str, Any]] = {}
    for result in json.loads(out.read_text())["results"]:
        name = Path(result["target"]).stem
        (delegation,) = result["delegation"]
        found[name] = {"p50_ms": result["summary_ms"]["p50"], "delegation": _counted(delegation)}
    for line in done.stdout.splitlines():
        failed = re.match(r"\S*/models/([\w.-]+)\.tflite (.*)", line)
        if failed and failed.group(1) not in found:
            found[failed.group(1)] = {"failed": failed.group(2)}
    return found


def _counted(delegation: dict[str, Any]) -> dict[str, Any]:
    """The delegation with its CPU ops counted by name (a model of 388 ops lists them all)."""
    left = delegation.pop("cpu_ops")
    return {**delegation, "cpu_op_counts": {op: left.count(op) for op in sorted(set(left))}}


def measure(rounds: int) -> dict[str, Any]:
    models = {Path(name).stem: str(CORAL / name) for name in CORAL_MODELS.values()}
    models |= fetch_mediapipe_models()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "models").mkdir()
        for name, path in models.items():
            shutil.copyfile(path, folder / "models" / f"{name}.tflite")
        (folder / "pytest.ini").write_text(INI)
        runs = []
        for index in range(rounds):
            order = DEVICES if index % 2 == 0 else DEVICES[::-1]
            runs.append({device: gate(folder, device) for device in order})
            print(f"round {index + 1}/{rounds} done", file=sys.stderr)
    return {"models": sorted(models), "rounds": runs}


def report(data: dict[str, Any]) -> str:
    rows = [
        "| model | p50 XNNPACK on (ms) | p50 off (ms) | off / on, median (range) | ops XNNPACK "
        "left to the CPU |",
        "|---|---|---|---|---|",
    ]
    rounds = data["rounds"]
    for name in data["models"]:
        last = rounds[-1]
        delegation = last["cpu"][name]["delegation"]
        counts = delegation["cpu_op_counts"]
        left = sum(counts.values())
        words = ", ".join(f"{n} {op}" for op, n in counts.items()) or "none"
        off = last["cpu-builtin"][name]
        if "failed" in off:
            rows.append(
                f"| {name} | {last['cpu'][name]['p50_ms']:.3g} | does not run: {off['failed']} "
                f"| - | {left} of {delegation['ops']}: {words} |"
            )
            continue
        ratios = [r["cpu-builtin"][name]["p50_ms"] / r["cpu"][name]["p50_ms"] for r in rounds]
        rows.append(
            f"| {name} | {last['cpu'][name]['p50_ms']:.3g} | {off['p50_ms']:.3g} | "
            f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}..{max(ratios):.2f}) | "
            f"{left} of {delegation['ops']}: {words} |"
        )
    return (
        f"{len(rounds)} rounds, {data['date']}; one thread, pytest-edgetpu's own measurement "
        "(max_time 1.0 s per model and device), zero-code items.\n\n" + "\n".join(rows)
    )


def main() -> None:
    measure_or_report(__doc__, "rounds", 5, measure, report)


if __name__ == "__main__":
    main()
