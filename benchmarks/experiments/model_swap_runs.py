"""A model swap in relative mode, run after run: does the change it measures hold from one
pytest process to the next, as each run's interval says?

Relative mode measures a tracked model file and its version at the revision in one process,
interleaved, so no process offset should stand between the two sides. That was measured on
unchanged models (``process_models.py``: A/A). Here the two sides are different models (what a
model swap or a bisection step compares): a scratch repository commits one model, the working
tree holds the other, and ``pytest --edgetpu --edgetpu-against=HEAD`` runs ``--runs`` times, each
a new process. Per pair: each run's change and 95% interval, the spread of the change across
runs (sd), and the median half-width of one run's interval.

    python benchmarks/experiments/model_swap_runs.py --runs 10 \\
        --out benchmarks/results/model_swap_runs.json
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import CORAL, fetch_mediapipe_models, pytest_run
from relative_gate import git
from saved import measure_or_report

from pytest_edgetpu.model.examples import write_example_models


def pairs(folder: Path) -> dict[str, tuple[Path, Path]]:
    """The swaps measured: before -> after, each a real or generated model file."""
    examples = folder / "examples"
    write_example_models(examples)
    mediapipe = fetch_mediapipe_models()
    return {
        "tiny_dense -> tiny_conv (generated, ~50 us)": (
            examples / "tiny_dense.tflite",
            examples / "tiny_conv.tflite",
        ),
        "face_landmark (MediaPipe) -> mobilenet_v1_0.5_160 (Coral), ~0.7 ms": (
            Path(mediapipe["face_landmark"]),
            CORAL / "mobilenet_v1_0.5_160_quant.tflite",
        ),
    }


#: A relative gate of the model against its version at HEAD; the threshold out of reach, so each
#: run measures its whole budget rather than stopping once a verdict is settled.
GATE = ("--edgetpu", "--edgetpu-threshold=500%", "--edgetpu-against=HEAD", "models/m.tflite")


def one_pair(before: Path, after: Path, runs: int, scratch: Path) -> dict[str, Any]:
    repository = scratch / "repo"
    shutil.rmtree(repository, ignore_errors=True)
    (repository / "models").mkdir(parents=True)
    git(repository, "init", "-q")
    shutil.copyfile(before, repository / "models" / "m.tflite")
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", "before")
    shutil.copyfile(after, repository / "models" / "m.tflite")
    found = []
    for _ in range(runs):
        out = scratch / "r.json"
        out.unlink(missing_ok=True)
        pytest_run(repository, [*GATE, f"--edgetpu-json={out}"], 1.0)
        verdict = json.loads(out.read_text())["results"][0]["verdict"]
        found.append([verdict["change"], verdict["ci_low"], verdict["ci_high"]])
    return {"runs": found}


def measure(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        return {
            name: one_pair(before, after, runs, scratch)
            for name, (before, after) in pairs(scratch).items()
        }


def report(saved: dict[str, Any]) -> str:
    lines = [
        "| swap | runs | change per run | sd across runs | one run's 95% half-width (median) |",
        "|:---|---:|:---|---:|---:|",
    ]
    for name, found in saved.items():
        if not isinstance(found, dict) or "runs" not in found:
            continue
        changes = [change for change, _, _ in found["runs"]]
        halves = [(high - low) / 2 for _, low, high in found["runs"]]
        listed = ", ".join(f"{change:+.1%}" for change in changes)
        lines.append(
            f"| {name} | {len(changes)} | {listed} | {statistics.stdev(changes):.1%} | "
            f"±{statistics.median(halves):.1%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    measure_or_report(__doc__ or "", "runs", 10, measure, report)
