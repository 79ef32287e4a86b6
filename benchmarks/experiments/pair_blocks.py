"""How relative mode's pairs should be measured and compared (issue 13): instance by instance,
each side's fastest instances compared (the plugin before 2026-12-02), or both instances of a
pair alive together taking turns block by block, compared pair by pair (the plugin's
``measure_pairs`` and ``paired_shift`` since).

Unchanged code, both sides: this process and a second one, each with its own interpreter of the
same model (as a callable's test and the helper at the revision have), both pinned to one core
as the plugin pins them, for the full budget (twice the default ``max_time``, no early stop),
the two ways in alternating order. On a quiet host and beside 2 memory-streaming neighbour
processes (``busy_verdicts.NEIGHBOURS["mem"]``); the three Coral models and three of
MediaPipe's (``relative_gate.py`` fetches them).

Per comparison: the half-width of the verdict's 95% interval, and, with the head's instance
values scaled by +5% and +10%, how often one measurement would be ``REGRESSION`` (the
confirmation not counted).

    .venv-bench/bin/python benchmarks/experiments/pair_blocks.py --rounds 3 \\
        --out benchmarks/results/pair_blocks.json
    .venv-bench/bin/python benchmarks/experiments/pair_blocks.py \\
        --report benchmarks/results/pair_blocks.json
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

# The shared modules (harness, saved) sit beside the standing suites, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import CORAL, CORAL_MODELS, NEIGHBOURS, fetch_mediapipe_models, wilson
from saved import measure_or_report

from pytest_edgetpu.core.stats import Shift, fastest, instance_value, paired_shift, shift
from pytest_edgetpu.engine.cores import pinned
from pytest_edgetpu.engine.measurement import InstanceSamples, MeasureSettings
from pytest_edgetpu.engine.timing import (
    PAIRED_SPAN,
    TimedInstance,
    instance_runner,
    measure_pairs,
)
from pytest_edgetpu.judge.compare import decide
from pytest_edgetpu.judge.verdict import Status

MEDIAPIPE = ("hand_recrop", "face_landmark", "selfie_segmentation")
SETTINGS = MeasureSettings(max_instances=10**6)
THRESHOLD = 0.05
SLOWDOWNS = (0.0, 0.05, 0.10)
CONDITIONS = {"quiet": 0, "mem2": 2}
SCHEMES = ("instances", "blocks")


def start_instance_of(path: str) -> Any:
    """One interpreter, made once, timed in every instance (a callable's test holds one)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        data = rng.integers(0, 255, detail["shape"]).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], data)
    return lambda: interpreter.invoke


def serve(connection: Connection, path: str, cores: tuple[int, ...]) -> None:
    """The other side, on ``cores`` (none: left to the scheduler): whole instances
    (``instances``) or a live one timed block by block."""
    if cores:
        os.sched_setaffinity(0, cores)
    start = start_instance_of(path)
    live: TimedInstance | None = None
    while (asked := connection.recv()) is not None:
        kind, runs = asked
        if kind == "instance":
            connection.send(instance_runner(start, SETTINGS)(runs))
        elif kind == "start":
            live = TimedInstance(start, SETTINGS)
            connection.send((live.first_ns, live.warmup_ns))
        elif kind == "block" and live is not None:
            live.block(runs)
            connection.send(None)
        elif live is not None:
            connection.send(live.samples())


class OtherSide:
    """This process's handle on the other process's live instance."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        connection.send(("start", 0))
        self.first_ns, self.warmup_ns = connection.recv()

    def block(self, runs: int) -> None:
        self.connection.send(("block", runs))
        self.connection.recv()

    def samples(self) -> InstanceSamples:
        self.connection.send(("samples", 0))
        samples: InstanceSamples = self.connection.recv()
        return samples


def by_instances(connection: Connection, path: str) -> tuple[list[float], list[float]]:
    """The pairs as the plugin measured them before: whole instances in turn, AB BA AB ..."""
    head = instance_runner(start_instance_of(path), SETTINGS)
    heads: list[InstanceSamples] = []
    bases: list[InstanceSamples] = []
    began, runs = time.perf_counter(), None
    while time.perf_counter() - began < SETTINGS.max_time_s * PAIRED_SPAN:
        for side in ("head", "base") if len(heads) % 2 == 0 else ("base", "head"):
            if side == "head":
                heads.append(head(runs))
                runs = len(heads[0].samples_ns)
            else:
                connection.send(("instance", runs))
                bases.append(connection.recv())
    values = [[instance_value(i.samples_ns, "p50") for i in side] for side in (heads, bases)]
    return values[0], values[1]


def by_blocks(connection: Connection, path: str) -> tuple[list[float], list[float]]:
    start = start_instance_of(path)
    paired = measure_pairs(
        lambda: TimedInstance(start, SETTINGS), lambda: OtherSide(connection), SETTINGS
    )
    return list(paired.head.instance_values), list(paired.base.instance_values)


def compare_once(path: str, cores: tuple[int, ...], scheme: str) -> dict[str, Any]:
    """One comparison of unchanged code, both sides on ``cores`` (none: left to the
    scheduler)."""
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    other = multiprocessing.get_context("fork").Process(target=serve, args=(theirs, path, cores))
    other.start()
    try:
        with pinned(cores):
            head, base = (by_instances if scheme == "instances" else by_blocks)(ours, path)
    finally:
        ours.send(None)
        other.join()
    return {"head": head, "base": base, "scheme": scheme}


def real_models() -> dict[str, str]:
    """The three Coral models and three of MediaPipe's."""
    models = {name: str(CORAL / file) for name, file in CORAL_MODELS.items()}
    return models | {n: p for n, p in fetch_mediapipe_models().items() if n in MEDIAPIPE}


def run_rounds(rounds: int) -> dict[str, Any]:
    models = real_models()
    usable = sorted(os.sched_getaffinity(0))
    comparisons = []
    for round_no in range(rounds):
        core = usable[round_no % len(usable)]
        for condition, count in CONDITIONS.items():
            neighbours = [
                subprocess.Popen([sys.executable, "-c", NEIGHBOURS["mem"]]) for _ in range(count)
            ]
            try:
                time.sleep(1.0 if neighbours else 0.0)
                for name, path in models.items():
                    schemes = SCHEMES if round_no % 2 == 0 else SCHEMES[::-1]
                    for scheme in schemes:
                        values = compare_once(path, (core,), scheme)
                        comparisons.append(
                            {"round": round_no, "condition": condition, "model": name, **values}
                        )
                        print(round_no, condition, name, scheme, len(values["head"]), "pairs",
                              file=sys.stderr, flush=True)  # fmt: skip
            finally:
                for neighbour in neighbours:
                    neighbour.kill()
                    neighbour.wait()
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "comparisons": comparisons,
    }


def change_of(scheme: str, base: list[float], head: list[float], scale: float = 1.0) -> Shift:
    """The verdict's change, ``head`` scaled by ``scale``: pair by pair (``blocks``), or the
    shift of each side's fastest instances (``instances``)."""
    scaled = [v * scale for v in head]
    if scheme == "blocks":
        return paired_shift(base, scaled)
    return shift(fastest(base), fastest(scaled))


def row(done: list[dict[str, Any]]) -> str:
    """The table cells of the comparisons ``done``, from their count on, each judged as its
    ``scheme`` says (a run of ``pair_cores.py`` before blocks saved none: ``instances``)."""
    changes = [
        [change_of(c.get("scheme", "instances"), c["base"], c["head"], 1 + s) for c in done]
        for s in SLOWDOWNS
    ]
    widths = [(change.high - change.low) / 2 for change in changes[0]]
    flagged = [
        sum(decide(change, THRESHOLD)[0] is Status.REGRESSION for change in cell)
        for cell in changes
    ]
    pairs = statistics.median(len(c["head"]) for c in done)
    return (
        f"{len(done)} | {pairs:g} | {statistics.median(widths):.1%} | "
        f"{float(np.percentile(widths, 90)):.1%} | "
        + " | ".join(wilson(hits, len(done)) for hits in flagged)
        + " |"
    )


def report(data: dict[str, Any]) -> str:
    lines = [
        f"Run {data['date']} on {data['machine']}, Python {data['python']}; command: "
        f"`{data['command']}`",
        "",
        "| condition | pairs measured and compared | comparisons | pairs (median) | 95% CI "
        "half-width, median | 90th percentile | A/A flagged | +5% flagged | +10% flagged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    words = {
        "instances": "instance by instance, each side's fastest",
        "blocks": "block by block, pair by pair",
    }
    for condition in CONDITIONS:
        for scheme in SCHEMES:
            done = [
                c
                for c in data["comparisons"]
                if c["scheme"] == scheme and c["condition"] == condition
            ]
            if not done:
                continue
            lines.append(f"| {condition} | {words[scheme]} | " + row(done))
    return "\n".join(lines)


def main() -> None:
    measure_or_report(__doc__, "rounds", 3, run_rounds, report)


if __name__ == "__main__":
    main()
