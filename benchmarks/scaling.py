"""Wall time of the same benchmark suite serially and under pytest-xdist.

The suite: --tests tests (default 24) over the project's generated example models and the real
Coral CPU models. With few tests, xdist's fixed start-up weighs most: each worker's process,
imports and device before its first test (on 2026-12-02 a worker began its first test 0.6 s
later than a serial run did; RESULTS.md has 6, 8, 24 and 48 tests). Serial (`-p no:xdist`) and
parallel (`-n N --edgetpu-device=cpu:0,...`) runs alternate; the figure is the ratio of median
wall times (higher is better; the target on 2 cores is 1.6), with the ratio of each
back-to-back pair of runs beside it (its median, lowest and highest) and every run's wall time.

With --yardstick, each round also times xdist alone on the same shape of work: a suite without
the plugin whose tests busy-wait for as long as the serial run's tests took (their JUnit
times, median per test over the rounds so far), serially and under -n N. Its speed-up is what
xdist itself reaches on this host for tests that long: the ceiling for the plugin's, which
additionally starts a runtime and a probe helper in every worker.

    python benchmarks/scaling.py --workers 2 --tests 24 --repeats 2 \\
        --out benchmarks/results/scaling.json
    python benchmarks/scaling.py --workers 2 --tests 6 --repeats 8 --yardstick
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from saved import ROOT, save

from pytest_edgetpu.model.examples import write_example_models

CORAL = ROOT.parent / "shared" / "models" / "coral"


def write_suite(directory: Path, count: int) -> int:
    models = [str(p) for p in write_example_models(directory / "models")]
    models += [
        str(CORAL / name)
        for name in ("keras_lstm_mnist_ptq.tflite", "mobilenet_v1_0.25_128_quant.tflite")
        if (CORAL / name).is_file()
    ]
    tests = ["import pytest\n"]
    for i in range(count):
        tests.append(
            f"@pytest.mark.tpu_bench(model={models[i % len(models)]!r})\n"
            f"def test_model_{i}(tpu_bench):\n    tpu_bench()\n"
        )
    (directory / "test_suite.py").write_text("\n".join(tests))
    (directory / "pytest.ini").write_text("[pytest]\n")
    return len(tests) - 1


def write_busy_suite(directory: Path, durations_s: list[float]) -> None:
    """Tests without the plugin that keep a core busy for ``durations_s``, one each."""
    directory.mkdir(exist_ok=True)
    tests = ["import time\n"]
    for i, duration in enumerate(durations_s):
        tests.append(
            f"def test_busy_{i}():\n"
            f"    end = time.perf_counter() + {duration!r}\n"
            "    while time.perf_counter() < end:\n        pass\n"
        )
    (directory / "test_busy.py").write_text("\n".join(tests))
    (directory / "pytest.ini").write_text("[pytest]\n")


def test_durations_s(junit: Path) -> list[float]:
    """Each test's time (setup, call and teardown) in a JUnit XML file, in the file's order."""
    return [float(case.get("time", "0")) for case in ElementTree.parse(junit).iter("testcase")]


def median_per_test(rounds: list[list[float]]) -> list[float]:
    return [statistics.median(times) for times in zip(*rounds, strict=True)]


def timed(directory: Path, args: list[str], plugin: bool = True) -> float:
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    start = time.perf_counter()
    subprocess.run(
        [*pytest, *(["--edgetpu"] if plugin else []), *args],
        cwd=directory,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - start


def speedup(serial: list[float], parallel: list[float]) -> dict[str, object]:
    # Pair by pair: run i of each kind ran back to back, under the same state of the host.
    ratios = sorted(s / p for s, p in zip(serial, parallel, strict=True))
    return {
        "serial_s": statistics.median(serial),
        "parallel_s": statistics.median(parallel),
        "speedup": statistics.median(serial) / statistics.median(parallel),
        "speedup_pairs": {
            "median": statistics.median(ratios),
            "lowest": ratios[0],
            "highest": ratios[-1],
        },
        "serial_runs_s": serial,
        "parallel_runs_s": parallel,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tests", type=int, default=24)
    parser.add_argument(
        "--yardstick", action="store_true", help="also time xdist alone on the same work"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    devices = ",".join(f"cpu:{i}" for i in range(args.workers))
    serial, parallel, busy_serial, busy_parallel = [], [], [], []
    durations: list[list[float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Side by side, so that neither suite collects the other's tests.
        directory, busy = Path(tmp) / "plugin", Path(tmp) / "busy"
        directory.mkdir()
        junit = Path(tmp) / "serial.xml"
        tests = write_suite(directory, args.tests)
        for _ in range(args.repeats):
            serial.append(
                timed(
                    directory,
                    ["-p", "no:xdist", f"--edgetpu-device={devices}", f"--junitxml={junit}"],
                )
            )
            parallel.append(
                timed(directory, ["-n", str(args.workers), f"--edgetpu-device={devices}"])
            )
            if args.yardstick:
                durations.append(test_durations_s(junit))
                write_busy_suite(busy, median_per_test(durations))
                busy_serial.append(timed(busy, ["-p", "no:xdist"], plugin=False))
                busy_parallel.append(timed(busy, ["-n", str(args.workers)], plugin=False))
    result: dict[str, object] = {
        "tests": tests,
        "workers": args.workers,
        **speedup(serial, parallel),
    }
    if args.yardstick:
        result["xdist_alone"] = {
            "test_s": median_per_test(durations),
            **speedup(busy_serial, busy_parallel),
        }
    save(result, args.out)


if __name__ == "__main__":
    main()
