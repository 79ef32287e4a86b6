"""How far two processes running the same code differ (issue 32), and what a relative verdict
made inside one pair of processes makes of it.

Unchanged code on both sides of relative mode's interleaved pairs (``measure_pairs``,
``paired_shift``), the two sides in two processes, in three arrangements:

* ``main+fresh``: the head in a long-lived process that has done other work first (pytest's),
  the base in a fresh process (a helper at the revision): relative mode for callables today;
* ``fresh+fresh``: both sides in fresh processes of the same kind;
* ``forked``: both sides forked from one parent that prepared the workload (imports, data,
  interpreter), so they share its memory layout.

Each repetition starts new processes. Per workload and arrangement: the spread of the pair
estimates across repetitions (the between-process offset, as a standard deviation of the log
ratio), the median half-width of one run's 95% interval (what the gate believes it knows),
and how many runs a 5% threshold would call REGRESSION. Small pure-Python callables, a small
numpy operation, and two microsecond-scale real models: pymicro-wakeword's ``alexa.tflite``
(its wheel, from PyPI) and the Coral LSTM.

    .venv/bin/python benchmarks/experiments/process_offsets.py --repetitions 8 \\
        --condition quiet --out benchmarks/results/process_offsets.json
    .venv/bin/python benchmarks/experiments/process_offsets.py \\
        --report benchmarks/results/process_offsets.json
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import CORAL, start_neighbours
from pair_blocks import OtherSide
from process_models import wakeword_models
from saved import stamped

from pytest_edgetpu.core.stats import paired_shift
from pytest_edgetpu.engine.measurement import MeasureSettings
from pytest_edgetpu.engine.timing import TimedInstance, measure_pairs
from pytest_edgetpu.judge.compare import decide
from pytest_edgetpu.judge.verdict import Status

SETTINGS = MeasureSettings(max_time_s=0.75)
THRESHOLD = 0.05
ARRANGEMENTS = ("main+fresh", "fresh+fresh", "forked")

#: Each workload: code that defines ``fn``, the callable timed.
WORKLOADS = {
    "sum_range": "fn = lambda: sum(range(1000))",
    "dict_comprehension": "fn = lambda: {i: i * i for i in range(300)}",
    "sorted": (
        "import random\ndata = [random.Random(0).random() for _ in range(3000)]\n"
        "fn = lambda: sorted(data)"
    ),
    "string_format": 'fn = lambda: ",".join(f"{i:05d}:{i * 0.5:.2f}" for i in range(200))',
    "numpy_small": (
        "import numpy as np\na = np.random.default_rng(0).random((64, 64))\nfn = lambda: a @ a"
    ),
    "nms_python": (
        "import random\nr = random.Random(0)\n"
        "boxes = [(x, y, x + r.uniform(10, 60), y + r.uniform(10, 60), r.random())\n"
        "         for x, y in ((r.uniform(0, 300), r.uniform(0, 300)) for _ in range(60))]\n"
        "def iou(a, b):\n"
        "    w = min(a[2], b[2]) - max(a[0], b[0]); h = min(a[3], b[3]) - max(a[1], b[1])\n"
        "    if w <= 0 or h <= 0: return 0.0\n"
        "    i = w * h\n"
        "    return i / ((a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - i)\n"
        "def nms():\n"
        "    kept = []\n"
        "    for box in sorted(boxes, key=lambda b: -b[4]):\n"
        "        if all(iou(box, k) < 0.5 for k in kept): kept.append(box)\n"
        "    return kept\n"
        "fn = nms"
    ),
}
MODEL_CODE = (
    "import numpy as np\nfrom ai_edge_litert.interpreter import Interpreter\n"
    "it = Interpreter(model_path={path!r}, num_threads=1); it.allocate_tensors()\n"
    "for d in it.get_input_details():\n"
    "    it.set_tensor(d['index'], np.zeros(d['shape'], d['dtype']))\n"
    "fn = it.invoke"
)


def prepared(code: str) -> Any:
    scope: dict[str, Any] = {}
    exec(code, scope)  # the benchmark's own workload definitions
    return lambda: scope["fn"]


def serve(connection: Connection, code: str | None) -> None:
    """One side: a live instance of the workload, timed block by block on command."""
    start = PREPARED if code is None else prepared(code)
    live: TimedInstance | None = None
    while (asked := connection.recv()) is not None:
        kind, runs = asked
        if kind == "start":
            live = TimedInstance(start, SETTINGS)
            connection.send((live.first_ns, live.warmup_ns))
        elif kind == "block" and live is not None:
            live.block(runs)
            connection.send(None)
        elif live is not None:
            connection.send(live.samples())


PREPARED: Any = None


def side_process(kind: str, code: str) -> tuple[Any, Connection]:
    ours, theirs = multiprocessing.Pipe()
    context = multiprocessing.get_context(kind)
    process = context.Process(target=serve, args=(theirs, None if kind == "fork" else code))
    process.start()
    return process, ours


def one_run(arrangement: str, code: str) -> dict[str, float]:
    """One relative measurement of unchanged code in new processes."""
    global PREPARED
    processes = []
    if arrangement == "forked":
        PREPARED = prepared(code)  # this parent prepares; both children inherit it
        sides = [side_process("fork", code) for _ in range(2)]
    else:
        sides = [side_process("spawn", code) for _ in range(2)]
    processes = [process for process, _ in sides]
    try:
        base_side = lambda: OtherSide(sides[1][1])  # noqa: E731
        if arrangement == "main+fresh":
            PREPARED = prepared(code)  # the long-lived side: this process
            head_side = lambda: TimedInstance(PREPARED, SETTINGS)  # noqa: E731
        else:
            head_side = lambda: OtherSide(sides[0][1])  # noqa: E731
        paired = measure_pairs(head_side, base_side, SETTINGS)
    finally:
        for _process, connection in sides:
            connection.send(None)
        for process in processes:
            process.join()
    change = paired_shift(paired.base.instance_values, paired.head.instance_values)
    status, _ = decide(change, THRESHOLD)
    return {
        "estimate": change.estimate,
        "low": change.low,
        "high": change.high,
        "regression": float(status is Status.REGRESSION),
        "pairs": paired.pairs,
        "elapsed_s": paired.elapsed_s,
    }


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    logs = [math.log1p(run["estimate"]) for run in runs]
    return {
        "runs": len(runs),
        "between_sd": statistics.stdev(logs),
        "mean_offset": math.expm1(statistics.mean(logs)),
        "largest_offset": max((math.expm1(v) for v in logs), key=abs),
        "within_half_width": statistics.median((r["high"] - r["low"]) / 2 for r in runs),
        "false_regressions": sum(r["regression"] for r in runs),
    }


def report(path: Path) -> None:
    saved = json.loads(path.read_text())
    print(f"condition {saved['condition']}, host {saved['host']}, threshold {THRESHOLD:.0%}")
    print(
        f"{'workload':<20}{'arrangement':<13}{'runs':>5}{'between sd':>12}{'largest':>9}"
        f"{'within hw':>11}{'false REGR':>11}"
    )
    for workload, arrangements in saved["workloads"].items():
        for arrangement, runs in arrangements.items():
            s = summary(runs)
            print(
                f"{workload:<20}{arrangement:<13}{s['runs']:>5}{s['between_sd']:>12.1%}"
                f"{s['largest_offset']:>+9.1%}{s['within_half_width']:>11.1%}"
                f"{int(s['false_regressions']):>7}/{s['runs']}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=8)
    parser.add_argument("--condition", choices=("quiet", "mem2"), default="quiet")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    if args.report:
        report(args.report)
        return
    workloads = dict(WORKLOADS)
    workloads["alexa_tflite"] = MODEL_CODE.format(path=str(wakeword_models()[0]))
    workloads["coral_lstm"] = MODEL_CODE.format(path=str(CORAL / "keras_lstm_mnist_ptq.tflite"))
    if args.only:
        workloads = {name: code for name, code in workloads.items() if name in args.only}
    neighbours = start_neighbours(args.condition)
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    try:
        for name, code in workloads.items():
            results[name] = {arrangement: [] for arrangement in ARRANGEMENTS}
            for _ in range(args.repetitions):
                for arrangement in ARRANGEMENTS:  # alternating, so a spell hits all three
                    results[name][arrangement].append(one_run(arrangement, code))
            print(name, {a: f"{summary(r)['between_sd']:.1%}" for a, r in results[name].items()})
    finally:
        for neighbour in neighbours:
            neighbour.kill()
    if args.out:
        args.out.write_text(
            json.dumps(
                stamped(
                    {
                        "condition": args.condition,
                        "host": os.uname().nodename,
                        "cpu_count": os.cpu_count(),
                        "workloads": results,
                    }
                ),
                indent=1,
            )
        )
        report(args.out)


if __name__ == "__main__":
    main()
