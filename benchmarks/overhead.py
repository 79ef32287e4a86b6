"""Measurement overhead, start-up cost when not enabled, and peak memory of a run.

1. Overhead: the plugin's timing loop against a bare `perf_counter_ns` loop around the same
   interpreter's invoke(), in alternating pairs in one process; the ratio of their per-invoke
   medians (1.00 = no overhead).
2. Start-up: `pytest --collect-only -q` of a 100-test suite with the plugin installed but
   `--edgetpu` not given, against `-p no:edgetpu`, in pairs (order flipped every pair); the
   median of the per-pair ratios of wall times.
3. Peak memory (max RSS) of `pytest --edgetpu examples/`.

    python benchmarks/overhead.py --out benchmarks/results/overhead.json
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ai_edge_litert.interpreter import Interpreter
from saved import ROOT, save

from pytest_edgetpu.engine.measurement import MeasureSettings
from pytest_edgetpu.engine.timing import measure
from pytest_edgetpu.model.examples import write_example_models

MODEL = ROOT.parent / "shared" / "models" / "coral" / "mobilenet_v1_0.25_128_quant.tflite"


def raw_loop(invoke: object, runs: int) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        start = clock()
        invoke()  # type: ignore[operator]
        samples.append(clock() - start)
    return samples


def overhead(pairs: int) -> dict[str, float]:
    interpreter = Interpreter(model_path=str(MODEL), num_threads=1)
    interpreter.allocate_tensors()
    settings = MeasureSettings(
        warmup=3, min_runs=200, max_time_s=0.0, min_instances=1, max_instances=1
    )
    ratios = []
    for _ in range(pairs):
        plugin = measure(lambda: interpreter.invoke, settings).summary.p50_ms
        raw = statistics.median(raw_loop(interpreter.invoke, 200)) / 1e6
        ratios.append(plugin / raw)
    return {"pairs": pairs, "median_ratio": statistics.median(ratios)}


def startup(repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "pytest.ini").write_text("[pytest]\n")
        (directory / "test_many.py").write_text(
            "\n".join(f"def test_{i}():\n    pass\n" for i in range(100))
        )

        def timed(*extra: str) -> float:
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "--collect-only",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    *extra,
                ],
                cwd=directory,
                capture_output=True,
                check=True,
            )
            return time.perf_counter() - start

        # Alternating pairs, the order flipped every pair, so drift of the shared machine
        # hits both sides alike; the ratio is the median of the per-pair ratios.
        with_plugin, without, ratios = [], [], []
        for i in range(repeats):
            if i % 2:
                off, on = timed("-p", "no:edgetpu"), timed()
            else:
                on, off = timed(), timed("-p", "no:edgetpu")
            with_plugin.append(on)
            without.append(off)
            ratios.append(on / off)
    return {
        "repeats": repeats,
        "with_plugin_s": statistics.median(with_plugin),
        "without_plugin_s": statistics.median(without),
        "ratio": statistics.median(ratios),
    }


def peak_memory() -> dict[str, float]:
    write_example_models(ROOT / "examples" / "models")
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--edgetpu", "examples/"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    return {"max_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {
        "overhead": overhead(args.pairs),
        "startup": startup(args.repeats),
        "peak_memory": peak_memory(),
    }
    save(result, args.out)


if __name__ == "__main__":
    main()
