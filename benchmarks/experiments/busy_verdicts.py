"""Does the contention-aware verdict keep a busy host from failing unchanged code, and does it
still fail a real regression there? (issue 13, part 2)

A scratch project times three real Coral models (mobilenet_v1_0.25_128, mobilenet_v1_0.5_160,
mobilenet_v2_1.0_224) and a fourth test, ``test_swap``, whose model file is the 0.25_128 model
when its baseline is recorded. Baselines are recorded once, on the quiet host. Then, in each
condition (quiet; 2 or 4 neighbour processes that spin the CPU, ``cpu``; 2 or 4 that copy a
64 MiB numpy buffer in a loop, ``mem``, the memory-streaming neighbour of noise.md), the suite
is gated ``--runs`` times unchanged and ``--runs`` times with ``test_swap``'s model swapped for
mobilenet_v1_0.5_160 (a real slowdown of about 4-5x), each a plain ``pytest --edgetpu`` run with
``--edgetpu-json``.

Reported per condition: the verdicts of the unchanged tests (false alarms are REGRESSIONs), how
many BUSY verdicts were significant slowdowns that counted against the threshold (the
REGRESSION candidates a gate without the contention rule would have had to confirm), whether
each swap still failed, and the median run-queue wait share.

    python benchmarks/experiments/busy_verdicts.py --runs 3 \\
        --out benchmarks/results/busy_verdicts.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

# The shared modules (harness, saved) sit beside the standing suites, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import CORAL, NEIGHBOURS
from saved import save

from pytest_edgetpu.judge.compare import COUNTS_FROM

MODELS = ("mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant", "mobilenet_v2_1.0_224_quant")
SWAP_FROM, SWAP_TO = "mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant"
CONDITIONS = ("quiet", "cpu2", "cpu4", "mem2", "mem4")
THRESHOLD = 0.05


def write_project(root: Path) -> None:
    (root / "models").mkdir()
    tests = ["import pytest\n"]
    for name in MODELS:
        shutil.copy(CORAL / f"{name}.tflite", root / "models" / f"{name}.tflite")
        tests.append(
            f'\n@pytest.mark.tpu_bench(model="models/{name}.tflite")\n'
            f"def test_{name.replace('.', '_')}(tpu_bench):\n    tpu_bench()\n"
        )
    shutil.copy(CORAL / f"{SWAP_FROM}.tflite", root / "models" / "swap.tflite")
    tests.append(
        '\n@pytest.mark.tpu_bench(model="models/swap.tflite")\ndef test_swap(tpu_bench):\n'
        "    tpu_bench()\n"
    )
    (root / "test_models.py").write_text("".join(tests))
    (root / "tox.ini").write_text("[pytest]\n")


def pytest(root: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=root,
        capture_output=True,
        check=False,
    )


def gate(root: Path, out: Path) -> list[dict[str, Any]]:
    pytest(root, "--edgetpu", f"--edgetpu-json={out}")
    results: list[dict[str, Any]] = json.loads(out.read_text())["results"]
    return results


def counted_slowdown(record: dict[str, Any]) -> bool:
    """A significant slowdown counted against the threshold: a REGRESSION candidate."""
    verdict = record["verdict"]
    return (
        verdict["change"] is not None
        and verdict["change"] >= THRESHOLD * COUNTS_FROM
        and verdict["ci_low"] > 0
    )


def condition(root: Path, name: str, runs: int) -> dict[str, Any]:
    kind, count = (name[:-1], int(name[-1])) if name != "quiet" else ("", 0)
    neighbours = [subprocess.Popen([sys.executable, "-c", NEIGHBOURS[kind]]) for _ in range(count)]
    try:
        time.sleep(1.0 if neighbours else 0.0)
        unchanged: Counter[str] = Counter()
        candidates, waits, details = 0, [], []
        for run in range(runs):
            shutil.copy(CORAL / f"{SWAP_FROM}.tflite", root / "models" / "swap.tflite")
            for record in gate(root, root / f"{name}-{run}.json"):
                status = record["verdict"]["status"]
                unchanged[status] += 1
                candidates += status == "BUSY" and counted_slowdown(record)
                waits.append(record["run_queue_wait"])
                change = record["verdict"]["change"]
                details.append(
                    f"{record['test_id'].split('::test_')[1]}: {status} "
                    f"{change:+.1%}, wait {record['run_queue_wait']:.2f}"
                )
        swaps: Counter[str] = Counter()
        for run in range(runs):
            shutil.copy(CORAL / f"{SWAP_TO}.tflite", root / "models" / "swap.tflite")
            records = gate(root, root / f"{name}-swap-{run}.json")
            (swapped,) = [r for r in records if r["test_id"].endswith("::test_swap")]
            swaps[swapped["verdict"]["status"]] += 1
            waits.append(swapped["run_queue_wait"])
    finally:
        for neighbour in neighbours:
            neighbour.kill()
            neighbour.wait()
    return {
        "unchanged_verdicts": dict(unchanged),
        "false_alarms": f"{unchanged['REGRESSION']}/{sum(unchanged.values())}",
        "busy_that_were_regression_candidates": candidates,
        "swap_verdicts": dict(swaps),
        "swaps_caught": f"{swaps['REGRESSION']}/{runs}",
        "median_run_queue_wait": round(statistics.median(waits), 3),
        "unchanged_runs": details,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not CORAL.is_dir():
        sys.exit(f"needs the Coral models in {CORAL}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_project(root)
        pytest(root, "--edgetpu-update-baselines")  # on the quiet host
        results = {name: condition(root, name, args.runs) for name in CONDITIONS}
    save({"runs_per_condition": args.runs, "threshold": THRESHOLD, "conditions": results}, args.out)


if __name__ == "__main__":
    main()
