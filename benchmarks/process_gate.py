"""Relative mode on small callables, before and after both sides moved into pairs of processes
(issue 32): false alarms on unchanged code, and a +10% slowdown caught.

A temporary git repository holds one test file of six small callables (an arithmetic loop, a dict
and a list comprehension, string formatting, a small numpy product, a pure-Python non-maximum
suppression), their work scaled by ``SCALE``. Each round runs ``pytest --edgetpu
--edgetpu-against=HEAD`` on it with the plugin as it was before (``--before REV``, imported
from a worktree of that revision) and as it is now, alternating, with the working tree
unchanged (``SCALE = 1.0``) and then with 10% more work (each size scaled so that the work grows
by a tenth: linear ones by 1.1, the quadratic NMS by its square root, the cubic product by its
cube root). Per plugin: REGRESSION per test-run on unchanged code, REGRESSION per test-run on
the slower code, and seconds per run.

    .venv/bin/python benchmarks/process_gate.py --before 067b426 --rounds 10 \\
        --condition quiet --out benchmarks/results/process_gate.json
    .venv/bin/python benchmarks/process_gate.py --report benchmarks/results/process_gate.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, start_neighbours, wilson
from saved import stamped

TESTS = """
import random

import numpy as np

SCALE = {scale!r}


def test_arithmetic(tpu_bench):
    n = int(1000 * SCALE)
    tpu_bench(lambda: sum(range(n)))


def test_dict_comprehension(tpu_bench):
    n = int(300 * SCALE)
    tpu_bench(lambda: {{i: i * i for i in range(n)}})


def test_list_comprehension(tpu_bench):
    n = int(1000 * SCALE)
    tpu_bench(lambda: [i * 3 for i in range(n) if i % 2])


def test_string_format(tpu_bench):
    n = int(200 * SCALE)
    tpu_bench(lambda: ",".join(f"{{i:05d}}:{{i * 0.5:.2f}}" for i in range(n)))


def test_numpy_small(tpu_bench):
    size = round(64 * SCALE ** (1 / 3))
    a = np.random.default_rng(0).random((size, size))
    tpu_bench(lambda: a @ a)


def test_nms_python(tpu_bench):
    r = random.Random(0)
    count = round(60 * SCALE ** 0.5)
    boxes = []
    for _ in range(count):
        x, y = r.uniform(0, 300), r.uniform(0, 300)
        boxes.append((x, y, x + r.uniform(10, 60), y + r.uniform(10, 60), r.random()))

    def iou(a, b):
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    def nms():
        kept = []
        for box in sorted(boxes, key=lambda b: -b[4]):
            if all(iou(box, k) < 0.5 for k in kept):
                kept.append(box)
        return kept

    tpu_bench(nms)
"""


def make_repo(folder: Path) -> None:
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    (folder / "test_small.py").write_text(TESTS.format(scale=1.0))
    (folder / "tox.ini").write_text("[pytest]\naddopts = -p no:randomly -p no:cacheprovider\n")
    git = ["git", "-C", str(folder), "-c", "user.email=b@b", "-c", "user.name=b"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)


def one_run(folder: Path, plugin_path: str | None, scale: float) -> dict[str, object]:
    (folder / "test_small.py").write_text(TESTS.format(scale=scale))
    out = folder / "results.json"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    if plugin_path:
        environment["PYTHONPATH"] = plugin_path
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--edgetpu", "--edgetpu-against=HEAD", "-q",
         f"--edgetpu-json={out}"],
        cwd=folder, env=environment, capture_output=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - began
    results = json.loads(out.read_text())["results"]
    return {
        "seconds": elapsed,
        "verdicts": {r["test_id"]: r["verdict"]["status"] for r in results},
        "changes": {r["test_id"]: r["verdict"]["change"] for r in results},
    }


def report(path: Path) -> None:
    saved = json.loads(path.read_text())
    print(f"condition {saved['condition']}, {saved['rounds']} rounds, host {saved['host']}")
    for plugin, by_scale in saved["runs"].items():
        for scale, runs in by_scale.items():
            verdicts = [v for run in runs for v in run["verdicts"].values()]
            regressions = sum(v == "REGRESSION" for v in verdicts)
            seconds = sorted(run["seconds"] for run in runs)[len(runs) // 2]
            print(
                f"{plugin:<7} scale {scale}: REGRESSION {regressions}/{len(verdicts)} test-runs "
                f"({wilson(regressions, len(verdicts))}), median run {seconds:.1f} s"
            )
            if scale != "1.0":
                for test in runs[0]["verdicts"]:
                    caught = sum(run["verdicts"][test] == "REGRESSION" for run in runs)
                    print(f"    {test}: {caught}/{len(runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="067b426")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--slower-rounds", type=int, default=5)
    parser.add_argument("--condition", choices=("quiet", "mem2"), default="quiet")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    if args.report:
        report(args.report)
        return
    with tempfile.TemporaryDirectory() as scratch:
        before = Path(scratch) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(before),
             args.before],
            check=True,
        )  # fmt: skip
        repo = Path(scratch) / "repo"
        make_repo(repo)
        plugins = {"before": str(before), "now": None}
        runs: dict[str, dict[str, list[dict[str, object]]]] = {
            name: {"1.0": [], "1.1": []} for name in plugins
        }
        neighbours = start_neighbours(args.condition)
        try:
            for scale, rounds in (("1.0", args.rounds), ("1.1", args.slower_rounds)):
                for index in range(rounds):
                    for name, path in plugins.items():
                        runs[name][scale].append(one_run(repo, path, float(scale)))
                    print(scale, index, {n: runs[n][scale][-1]["verdicts"] for n in plugins})
        finally:
            for neighbour in neighbours:
                neighbour.kill()
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)],
                check=False,
            )
    if args.out:
        args.out.write_text(
            json.dumps(
                stamped(
                    {
                        "condition": args.condition,
                        "rounds": args.rounds,
                        "host": os.uname().nodename,
                        "before": args.before,
                        "runs": runs,
                    }
                ),
                indent=1,
            )
        )
        report(args.out)


if __name__ == "__main__":
    main()
