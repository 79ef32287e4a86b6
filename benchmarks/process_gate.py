"""Small callables gated across processes (issue 32): relative mode before and after both sides
moved into pairs of processes, stored baselines, and pytest-benchmark, in the same rounds.

A temporary git repository holds one test file of six small callables (an arithmetic loop, a dict
and a list comprehension, string formatting, a small numpy product, a pure-Python non-maximum
suppression), their work scaled by ``SCALE``, and the same six as pytest-benchmark tests. Stored
baselines are recorded once before the rounds. Each round, with the working tree unchanged
(``SCALE = 1.0``) and then with 10% more work (each size scaled so that the work grows by a
tenth: linear ones by 1.1, the quadratic NMS by its square root, the numpy product's batch of
ten 64x64 matrices by 1.1; until 2026-12-07 one matrix's side grew by the cube root, and 66x66
ran 7-9% faster than 64x64 on this project's VM), runs: pytest-benchmark as a pull request's
job (the base saved, the head compared, ``median:5%``); ``pytest --edgetpu
--edgetpu-against=HEAD`` with the plugin as it was before (``--before REV``, imported from a
worktree of that revision) and as it is now; and ``pytest --edgetpu`` against the stored
baselines, with the plugin as it was before too, and twice now: as recorded (the host's
reading timed in the test's own processes) and against a copy whose entries hold a reading
taken in processes of its own just after the recording ("stored, bare reading": the figures
the same, only where the host's reading is taken differs). Per tool: REGRESSION per test-run
on unchanged code, on the slower code, and seconds per run (pytest-benchmark's: both of its
runs).

    .venv-bench/bin/python benchmarks/process_gate.py --before 067b426 --rounds 17 \\
        --slower-rounds 5 --condition quiet --out benchmarks/results/process_gate.json
    .venv-bench/bin/python benchmarks/process_gate.py --report benchmarks/results/process_gate.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, bytecode_compiled, start_neighbours, wilson
from saved import stamped

from pytest_edgetpu.engine.host_reference import measure_host

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
    count = round(10 * SCALE)
    a = np.random.default_rng(0).random((count, 64, 64))
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
    write_tests(folder, 1.0)
    (folder / "tox.ini").write_text("[pytest]\naddopts = -p no:randomly -p no:cacheprovider\n")
    git = ["git", "-C", str(folder), "-c", "user.email=b@b", "-c", "user.name=b"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)


def write_tests(folder: Path, scale: float) -> None:
    (folder / "test_small.py").write_text(TESTS.format(scale=scale))
    theirs = TESTS.format(scale=scale).replace("tpu_bench", "benchmark")
    (folder / "test_theirs.py").write_text(theirs)


def pytest(folder: Path, plugin_path: str | None, *args: str) -> float:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    if plugin_path:
        environment["PYTHONPATH"] = plugin_path
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *args],
        cwd=folder, env=environment, capture_output=True, check=False,
    )  # fmt: skip
    return time.perf_counter() - began


def ours(folder: Path, plugin_path: str | None, *args: str) -> dict[str, object]:
    """One gate run of pytest-edgetpu on the six tests: each test's verdict and change."""
    out = folder / "results.json"
    out.unlink(missing_ok=True)
    seconds = pytest(
        folder, plugin_path, "test_small.py", "-p", "no:benchmark", "--edgetpu",
        f"--edgetpu-json={out}", *args,
    )  # fmt: skip
    results = json.loads(out.read_text())["results"]
    return {
        "seconds": seconds,
        "verdicts": {r["test_id"]: r["verdict"]["status"] for r in results},
        "changes": {r["test_id"]: r["verdict"]["change"] for r in results},
        # Why a verdict was not PASS, in its own words (the host's reading, the confirmation),
        # a PASS that says how large a slowdown the host's speed-up may hide, and one that a
        # second measurement did not confirm (a first measurement's suspect costs processes).
        "messages": {
            r["test_id"]: r["verdict"]["message"]
            for r in results
            if r["verdict"]["status"] not in ("PASS", "IMPROVED")
            or "faster than while recording" in r["verdict"]["message"]
            or "first measurement" in r["verdict"]["message"]
        },
    }


def theirs(folder: Path, scale: float) -> dict[str, object]:
    """pytest-benchmark as a pull request's job: the base (scale 1), then the head compared
    with it, ``median:5%`` (a median 5% slower fails)."""
    medians = {}
    seconds: dict[str, float] = {}
    for side, side_scale in (("base", 1.0), ("head", scale)):
        write_tests(folder, side_scale)
        out = folder / f"{side}.json"
        out.unlink(missing_ok=True)
        seconds[side] = pytest(
            folder, None, "test_theirs.py", "-p", "no:edgetpu", f"--benchmark-json={out}"
        )
        medians[side] = {
            b["name"]: b["stats"]["median"] for b in json.loads(out.read_text())["benchmarks"]
        }
    changes = {name: medians["head"][name] / base - 1 for name, base in medians["base"].items()}
    return {
        "seconds": sum(seconds.values()),
        # What a gate against a stored --benchmark-save file would take: the head run alone.
        "head_seconds": seconds["head"],
        "verdicts": {
            name: "REGRESSION" if change > THRESHOLD else "PASS" for name, change in changes.items()
        },
        "changes": changes,
    }


THRESHOLD = 0.05


def one_round(folder: Path, before: str, scale: float) -> dict[str, dict[str, object]]:
    """Each tool once on the working tree at ``scale``, against the commit at scale 1."""
    runs = {"pytest-benchmark": theirs(folder, scale)}
    write_tests(folder, scale)
    if before != "none":
        runs["relative before"] = ours(folder, before, "--edgetpu-against=HEAD")
    runs["relative now"] = ours(folder, None, "--edgetpu-against=HEAD")
    if before != "none":
        runs["stored before"] = ours(folder, before)
    runs["stored now"] = ours(folder, None)
    runs["stored, bare reading"] = ours(folder, None, f"--edgetpu-baseline-dir={BARE_BASELINES}")
    return runs


#: The stored baselines' copy whose host readings were taken in processes of their own.
BARE_BASELINES = "baselines-bare-reading"


def copy_with_bare_reading(folder: Path) -> None:
    """The recorded baselines again under :data:`BARE_BASELINES`, each entry's host reading
    replaced by one taken now in fresh interpreters of its own, as a test measured in the
    pytest process has it."""
    reading = measure_host()
    if reading is None:
        raise SystemExit("the host's reading could not be taken")
    (folder / BARE_BASELINES).mkdir()
    for path in (folder / "baselines").glob("*.json"):
        document = json.loads(path.read_text())
        for entry in document["entries"].values():
            entry["host_reference"] = {"kernel": reading.kernel, "values_ms": reading.values_ms}
        (folder / BARE_BASELINES / path.name).write_text(json.dumps(document, indent=1))


def report(path: Path) -> None:
    saved = json.loads(path.read_text())
    print(f"condition {saved['condition']}, {saved['rounds']} rounds, host {saved['host']}")
    for plugin, by_scale in saved["runs"].items():  # a tool
        for scale, runs in by_scale.items():
            verdicts = [v for run in runs for v in run["verdicts"].values()]
            regressions = sum(v == "REGRESSION" for v in verdicts)
            busy = sum(v == "BUSY" for v in verdicts)
            explained = f", BUSY {busy}" if busy else ""
            seconds = statistics.median(run["seconds"] for run in runs)
            heads = [run["head_seconds"] for run in runs if "head_seconds" in run]
            head = f" (its head run alone {statistics.median(heads):.1f} s)" if heads else ""
            passed = [
                run.get("messages", {}).get(test, "")
                for run in runs
                for test, verdict in run["verdicts"].items()
                if verdict in ("PASS", "IMPROVED")
            ]
            # Passes that said how large a slowdown the host's speed-up may hide, and those a
            # second measurement did not confirm.
            hides = sum("faster than while recording" in message for message in passed)
            unconfirmed = sum("not confirmed" in message for message in passed)
            said = f", {hides} saying what a faster host may hide" if hides else ""
            said += f", {unconfirmed} a suspect not confirmed" if unconfirmed else ""
            print(
                f"{plugin:<17} scale {scale}: REGRESSION {regressions}/{len(verdicts)} test-runs "
                f"({wilson(regressions, len(verdicts))}){explained}{said}, median run "
                f"{seconds:.1f} s{head}"
            )
            if scale != "1.0":
                for test in runs[0]["verdicts"]:
                    caught = sum(run["verdicts"][test] == "REGRESSION" for run in runs)
                    print(f"    {test}: {caught}/{len(runs)}")
    # Time per gate run as the same rounds saw it: each tool's over another's, round by round.
    ratios = [
        ("stored now", "pytest-benchmark"),
        ("stored now", "stored before"),
        ("relative now", "relative before"),
        ("relative now", "stored now"),
    ]
    for scale in ("1.0", "1.1"):
        for tool, other in ratios:
            if tool in saved["runs"] and other in saved["runs"]:
                per_round = [
                    run["seconds"] / theirs.get("head_seconds", theirs["seconds"])
                    for run, theirs in zip(
                        saved["runs"][tool][scale], saved["runs"][other][scale], strict=True
                    )
                ]
                print(
                    f"scale {scale}: {tool} / {other}"
                    f"{' (its head run alone)' if other == 'pytest-benchmark' else ''} per round "
                    f"{min(per_round):.2f}-{max(per_round):.2f}x, median "
                    f"{statistics.median(per_round):.2f}x"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--before", default="067b426", help="the plugin's earlier revision, or none to skip it"
    )
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
        compared = args.before != "none"
        if compared:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(before),
                 args.before],
                check=True,
            )  # fmt: skip
            bytecode_compiled(before / "pytest_edgetpu")
        bytecode_compiled()
        repo = Path(scratch) / "repo"
        make_repo(repo)
        # Stored baselines recorded once, on the quiet host, before the rounds.
        pytest(repo, None, "test_small.py", "-p", "no:benchmark", "--edgetpu",
               "--edgetpu-update-baselines", "--edgetpu-accept-unstable")  # fmt: skip
        copy_with_bare_reading(repo)
        runs: dict[str, dict[str, list[dict[str, object]]]] = {}
        neighbours = start_neighbours(args.condition)
        try:
            for scale, rounds in (("1.0", args.rounds), ("1.1", args.slower_rounds)):
                for index in range(rounds):
                    revision = str(before) if compared else "none"
                    for tool, run in one_round(repo, revision, float(scale)).items():
                        runs.setdefault(tool, {"1.0": [], "1.1": []})[scale].append(run)
                    print(scale, index, {t: r[scale][-1]["verdicts"] for t, r in runs.items()})
        finally:
            for neighbour in neighbours:
                neighbour.kill()
            if compared:
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
