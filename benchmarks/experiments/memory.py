"""How stable each memory figure measures (issue 18): the run-to-run spread on real models.

Each session is a fresh probe helper (``pytest_edgetpu.engine.probe.ModelProbe``), as a pytest
session starts one; for each model it forks three children and keeps their median and spread
(``pytest_edgetpu.engine.memory``). Over ``--sessions`` sessions, per model and figure: the median,
the range of the sessions' medians (run to run), and the largest spread within a session; and the
same sessions, alternating with those, beside 2 memory-streaming neighbour processes (noise.md).
Models: the three Coral CPU models, and the eight MediaPipe models ``relative_gate.py`` fetches.

    .venv/bin/python benchmarks/experiments/memory.py --sessions 10 \\
        --out benchmarks/results/memory.json
    .venv/bin/python benchmarks/experiments/memory.py --report benchmarks/results/memory.json
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

# The shared modules (harness, saved) sit beside the standing suites, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import CORAL, CORAL_MODELS, fetch_mediapipe_models, start_neighbours
from saved import measure_or_report

from pytest_edgetpu.engine.memory import MEMORY_PHASES
from pytest_edgetpu.engine.probe import ModelProbe

CONDITIONS = ("quiet", "mem2")


def measure(sessions: int) -> dict[str, Any]:
    models = {Path(name).stem: CORAL / name for name in CORAL_MODELS.values()}
    models |= {name: Path(path) for name, path in fetch_mediapipe_models().items()}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        condition: {name: [] for name in models} for condition in CONDITIONS
    }
    seconds = []
    for index in range(sessions):
        for condition in CONDITIONS:  # alternating, so both see the same code and host
            neighbours = start_neighbours(condition)
            probe = ModelProbe("LiteRT")
            try:
                for name, path in models.items():
                    start = time.perf_counter()
                    use = probe.check(path, name, 1)
                    seconds.append(time.perf_counter() - start)
                    assert use is not None, f"{name}: no memory measured"
                    runs[condition][name].append(
                        {"kib": dict(use.kib), "spread_kib": dict(use.spread_kib)}
                    )
            finally:
                probe.close()
                for neighbour in neighbours:
                    neighbour.kill()
                    neighbour.wait()
        print(f"session {index + 1}/{sessions} done", file=sys.stderr)
    return {
        "sessions": sessions,
        "runs": runs["quiet"],
        "runs_beside_2_memory_neighbours": runs["mem2"],
        "seconds_per_model": {"median": statistics.median(seconds), "max": max(seconds)},
    }


def report(data: dict[str, Any]) -> str:
    titles = (f"{p} KiB: median (run-to-run range; within)" for p in MEMORY_PHASES)
    header = "| model | " + " | ".join(titles)
    rows = [header + " |", "|---|" + "---|" * len(MEMORY_PHASES)]
    for name, runs in sorted(data["runs"].items()):
        cells = []
        for phase in MEMORY_PHASES:
            values = [r["kib"][phase] for r in runs]
            within = max(r["spread_kib"][phase] for r in runs)
            cells.append(
                f"{statistics.median(values):,.0f} ({max(values) - min(values):,.0f}; "
                f"{within:,.0f})"
            )
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    cost = data["seconds_per_model"]
    return (
        f"{data['sessions']} sessions (fresh probe helpers), 3 forked processes per model each, "
        f"{data['date']}. Range: largest minus smallest of the sessions' medians; within: the "
        "largest spread of the three processes in one session. Time per model (three "
        f"processes): median {cost['median']:.2f} s, max {cost['max']:.2f} s.\n\n"
        + "\n".join(rows)
        + _beside_neighbours(data)
    )


def _beside_neighbours(data: dict[str, Any]) -> str:
    """How far each figure's median moved beside 2 memory-streaming neighbours."""
    beside = data.get("runs_beside_2_memory_neighbours")
    if not beside:
        return ""
    moved = {
        phase: max(
            abs(
                statistics.median(r["kib"][phase] for r in beside[name])
                - statistics.median(r["kib"][phase] for r in runs)
            )
            for name, runs in data["runs"].items()
        )
        for phase in MEMORY_PHASES
    }
    words = ", ".join(f"{phase} {kib:,.0f} KiB" for phase, kib in moved.items())
    return (
        "\n\nThe same sessions, alternating, beside 2 processes streaming a 64 MiB buffer: the "
        f"largest move of a model's median, per figure: {words}."
    )


def main() -> None:
    measure_or_report(__doc__, "sessions", 10, measure, report)


if __name__ == "__main__":
    main()
