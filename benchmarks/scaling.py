"""Wall time of the same benchmark suite serially and under pytest-xdist.

The suite: --tests tests (default 24) over the project's generated example models and the real
Coral CPU models. With few tests, xdist's fixed start-up weighs most: each worker's process,
imports and device before its first test (on 2026-12-02 a worker began its first test 0.6 s
later than a serial run did; RESULTS.md has 6, 8, 24 and 48 tests). Serial (`-p no:xdist`) and
parallel (`-n N --edgetpu-device=cpu:0,...`) runs alternate; the figure is the ratio of median
wall times (higher is better; the target on 2 cores is 1.6), with the ratio of each
back-to-back pair of runs beside it (its median, lowest and highest) and every run's wall time.

    python benchmarks/scaling.py --workers 2 --tests 24 --repeats 2 \\
        --out benchmarks/results/scaling.json
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from saved import ROOT, save

from pytest_edgetpu.example_models import write_example_models

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


def timed(directory: Path, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--edgetpu", *args],
        cwd=directory,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tests", type=int, default=24)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    devices = ",".join(f"cpu:{i}" for i in range(args.workers))
    serial, parallel = [], []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        tests = write_suite(directory, args.tests)
        for _ in range(args.repeats):
            serial.append(timed(directory, ["-p", "no:xdist", f"--edgetpu-device={devices}"]))
            parallel.append(
                timed(directory, ["-n", str(args.workers), f"--edgetpu-device={devices}"])
            )
    # Pair by pair: run i of each kind ran back to back, under the same state of the host.
    ratios = sorted(s / p for s, p in zip(serial, parallel, strict=True))
    result = {
        "tests": tests,
        "workers": args.workers,
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
    save(result, args.out)


if __name__ == "__main__":
    main()
