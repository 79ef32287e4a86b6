"""Replay pytest-edgetpu's decision rule on a gate_accuracy.py results file, offline.

Every gate run in the file kept its per-instance values, and so did every baseline run, so the
rule can be evaluated for other thresholds and for fewer instances per measurement (the first k
of each run: what a shorter max_time would have measured) without measuring again. The
confirmation measurement cannot be replayed: these rates are for the first measurement alone
(where the gate confirmed, the kept values are the confirmation's).

A second table weighs where a slowdown starts to count (the share of the 5% threshold,
:data:`~pytest_edgetpu.compare.COUNTS_FROM` in the plugin), confirmation included: it crosses
each baseline with two gate runs of the same condition from other rounds (a baseline is recorded
long before the runs it gates, and the two measurements of a confirmation are independent), over
2,000 seeded draws per cell. A third table does the same with each baseline cut to the first two
thirds of its instances: about what a baseline recorded for max_time instead of 1.5 times it
would have given.

    python benchmarks/replay.py benchmarks/results/gate_accuracy.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from pytest_edgetpu.compare import COUNTS_FROM, Status, decide
from pytest_edgetpu.stats import fastest, shift

SLOWDOWNS = (0.0, 0.05, 0.10, 0.20)


def rates(runs: list[dict[str, Any]], name: str, k: int, threshold: float) -> list[str]:
    baselines = {
        r["round"]: r["tests"][name]["instances"]
        for r in runs
        if r["tool"] == "pytest-edgetpu" and r["update"] and name in r["tests"]
    }
    cells = []
    for slowdown in SLOWDOWNS:
        hits = n = 0
        for r in runs:
            if r["tool"] != "pytest-edgetpu" or r["update"] or r["slowdown"] != slowdown:
                continue
            base = baselines.get(r["round"], [])[:k]
            current = r["tests"].get(name, {}).get("instances", [])[:k]
            if len(base) < 2 or len(current) < 2:
                continue
            change = shift(fastest(base), fastest(current))
            n += 1
            hits += decide(change, threshold)[0] is Status.REGRESSION
        cells.append(f"{hits}/{n}")
    return cells


def crossed(
    runs: list[dict[str, Any]], name: str, share: float, span: float = 1.0, draws: int = 2000
) -> list[str]:
    """Confirmed REGRESSION rates when slowdowns count from ``share`` of a 5% threshold and each
    baseline keeps the instances of the first ``span`` of its recording."""
    # decide() counts from COUNTS_FROM of its threshold: scale the threshold to move that point.
    threshold = 0.05 * share / COUNTS_FROM
    groups: dict[object, list[list[float]]] = {}
    for r in runs:
        if r["tool"] == "pytest-edgetpu" and name in r["tests"]:
            key = "baseline" if r["update"] else r["slowdown"]
            values = r["tests"][name]["instances"]
            if r["update"]:
                values = values[: max(3, round(len(values) * span))]
            groups.setdefault(key, []).append(values)

    def regressed(base: list[float], current: list[float]) -> bool:
        change = shift(fastest(base), fastest(current))
        return decide(change, threshold)[0] is Status.REGRESSION

    rng = random.Random(1)
    cells = []
    for slowdown in SLOWDOWNS:
        hits = 0
        for _ in range(draws):
            base = rng.choice(groups["baseline"])
            first, second = rng.sample(groups[slowdown], 2)
            hits += regressed(base, first) and regressed(base, second)
        cells.append(f"{hits / draws:.1%}")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    runs = json.loads(args.results.read_text())["runs"]
    names = sorted({n for r in runs if r["tool"] == "pytest-edgetpu" for n in r["tests"]})
    print("| model | instances (first k) | threshold | A/A | +5% | +10% | +20% |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        for k in (5, 10, 20, 40):
            for threshold in (0.03, 0.05, 0.08, 0.10):
                cells = rates(runs, name, k, threshold)
                print(f"| {name} | {k} | {threshold:.0%} | " + " | ".join(cells) + " |")
    print()
    print("| model | slowdowns count from | A/A | +5% | +10% | +20% |")
    print("|---|---|---|---|---|---|")
    for name in names:
        for share in (1.0, 0.8, 0.6):
            cells = crossed(runs, name, share)
            print(f"| {name} | {share * 5:.0f}% | " + " | ".join(cells) + " |")
    print()
    print("| model | baseline recording kept | A/A | +5% | +10% | +20% |")
    print("|---|---|---|---|---|---|")
    for name in names:
        for span, words in ((1.0, "all (1.5x max_time)"), (2 / 3, "first two thirds (max_time)")):
            cells = crossed(runs, name, COUNTS_FROM, span)
            print(f"| {name} | {words} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
