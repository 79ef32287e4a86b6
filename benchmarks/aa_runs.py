"""A/A runs: how often does `pytest --edgetpu` report a regression on unchanged code?

Each round records fresh baselines, then gates the same unchanged suite GATES times; every
verdict is read from the run's --edgetpu-json. Models: the project's generated example models
and, when ../shared/models/coral/ is present, three real Coral CPU models.

    python benchmarks/aa_runs.py --rounds 5 --gates 4 [--workers 2] [--out benchmarks/aa.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from pytest_edgetpu.models import write_example_models

ROOT = Path(__file__).resolve().parent.parent
CORAL = ROOT.parent / "shared" / "models" / "coral"
CORAL_MODELS = (
    "keras_lstm_mnist_ptq.tflite",
    "mobilenet_v1_0.25_128_quant.tflite",
    "mobilenet_v2_1.0_224_quant.tflite",
)


def write_suite(directory: Path) -> list[str]:
    models = [str(p) for p in write_example_models(directory / "models")]
    models += [str(CORAL / name) for name in CORAL_MODELS if (CORAL / name).is_file()]
    tests = ["import pytest\n"]
    for i, model in enumerate(models):
        tests.append(
            f"@pytest.mark.tpu_bench(model={model!r})\n"
            f"def test_model_{i}(tpu_bench):\n    tpu_bench()\n"
        )
    (directory / "test_suite.py").write_text("\n".join(tests))
    (directory / "pytest.ini").write_text("[pytest]\n")
    return models


def run(directory: Path, extra: list[str]) -> tuple[list[dict[str, object]], float]:
    out = directory / "results.json"
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--edgetpu",
            f"--edgetpu-json={out}",
            *extra,
        ],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.perf_counter() - start
    return json.loads(out.read_text())["results"], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gates", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    xdist = ["-n", str(args.workers)] if args.workers else ["-p", "no:xdist"]
    verdicts: dict[str, Counter[str]] = {}
    changes: dict[str, list[float]] = {}
    gate_seconds: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        models = write_suite(directory)
        for round_no in range(args.rounds):
            run(directory, [*xdist, "--edgetpu-update-baselines"])
            for _ in range(args.gates):
                results, elapsed = run(directory, xdist)
                gate_seconds.append(elapsed / len(results))
                for r in results:
                    name = Path(r["target"]).name
                    verdict = r["verdict"]
                    verdicts.setdefault(name, Counter())[verdict["status"]] += 1
                    if verdict["change"] is not None:
                        changes.setdefault(name, []).append(verdict["change"])
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    summary = {
        "rounds": args.rounds,
        "gates_per_round": args.gates,
        "workers": args.workers or 1,
        "models": [Path(m).name for m in models],
        "verdicts": {k: dict(v) for k, v in verdicts.items()},
        "abs_change_p95": {
            k: sorted(abs(c) for c in v)[int(0.95 * (len(v) - 1))] for k, v in changes.items()
        },
        "seconds_per_test_per_gate_run": sum(gate_seconds) / len(gate_seconds),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
