"""Whether both sides of relative mode's interleaved pairs should measure on one core (issue 13).

Unchanged code, both sides: this process and a second one, each holding its own interpreter of
the same model (as a callable's test and the helper at the revision do), measured in
interleaved pairs by the plugin's own ``measure_pairs`` for its full budget (twice the default
``max_time``, no early stop). Either both processes are left to the scheduler ("floating") or
both are pinned to one core (the plugin's ``pinned``), in alternating order, for the three
Coral models and three of MediaPipe's (``relative_gate.py`` fetches them).

Per comparison it reports the half-width of the verdict's 95% interval (judged as the plugin
that measured it did: pair by pair since 2026-12-02, ``pair_blocks.py``; the shift of each
side's fastest instances before) and, with the head's instance values scaled by +5% and +10%,
how often one measurement's verdict would be ``REGRESSION`` (the confirmation not counted).

    .venv-bench/bin/python benchmarks/experiments/pair_cores.py --rounds 4 \\
        --out benchmarks/results/pair_cores.json
    .venv-bench/bin/python benchmarks/experiments/pair_cores.py \\
        --report benchmarks/results/pair_cores.json
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

# The shared modules (harness, saved) sit beside the standing suites, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pair_blocks
from saved import measure_or_report


def run_rounds(rounds: int) -> dict[str, Any]:
    models = pair_blocks.real_models()
    usable = sorted(os.sched_getaffinity(0))
    comparisons = []
    for round_no in range(rounds):
        core = usable[round_no % len(usable)]
        for name, path in models.items():
            modes = [("floating", ()), ("pinned", (core,))]
            if round_no % 2:
                modes.reverse()
            for mode, cores in modes:
                values = pair_blocks.compare_once(path, cores, "blocks")
                comparisons.append({"round": round_no, "model": name, "mode": mode, **values})
                print(round_no, name, mode, len(values["head"]), "pairs", file=sys.stderr)
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "comparisons": comparisons,
    }


def report(data: dict[str, Any]) -> str:
    lines = [
        f"Run {data['date']} on {data['machine']}, Python {data['python']}; command: "
        f"`{data['command']}`",
        "",
        "| both sides | comparisons | pairs (median) | 95% CI half-width, median | 90th "
        "percentile | A/A flagged | +5% flagged | +10% flagged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode in ("floating", "pinned"):
        done = [c for c in data["comparisons"] if c["mode"] == mode]
        lines.append(f"| {mode} | " + pair_blocks.row(done))
    return "\n".join(lines)


def main() -> None:
    measure_or_report(__doc__, "rounds", 4, run_rounds, report)


if __name__ == "__main__":
    main()
