"""Replay pytest-edgetpu's decision rule on a gate_accuracy.py results file, offline.

Every gate run in the file kept its per-instance values, and so did every baseline run, so the
rule can be evaluated for other thresholds and for fewer instances per measurement (the first k
of each run: what a shorter max_time would have measured) without measuring again. The
confirmation measurement cannot be replayed: these rates are for the first measurement alone
(where the gate confirmed, the kept values are the confirmation's).

A second table weighs where a slowdown starts to count (the share of the 5% threshold,
:data:`~pytest_edgetpu.judge.compare.COUNTS_FROM` in the plugin), confirmation included: it crosses
each baseline with two gate runs of the same condition from other rounds (a baseline is recorded
long before the runs it gates, and the two measurements of a confirmation are independent), over
2,000 seeded draws per cell. A third table does the same with each baseline cut to the first two
thirds of its instances: about what a baseline recorded for max_time instead of 1.5 times it
would have given.

A fourth table replays verdict-aware stopping (the plugin's
:func:`~pytest_edgetpu.judge.compare.settle_rule`): each gate run stops at the first instance, from
the eighth on, at which its comparison with the baseline is settled; its confirmation stops at the
first settled "no slowdown", and settles a slowdown only from two thirds of its instances on
(the plugin's two thirds of max_time). It gives the confirmed rates beside those of the whole
measurements, and the share of instances the first measurement needed. A relative_gate.py file
(``--paired``) is replayed the same way on its interleaved pairs, each measurement with itself.

    python benchmarks/experiments/replay.py benchmarks/results/gate_accuracy.json
    python benchmarks/experiments/replay.py --paired benchmarks/results/relative_gate.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from pytest_edgetpu.core.stats import fastest, shift
from pytest_edgetpu.engine.measurement import MeasureSettings
from pytest_edgetpu.judge.compare import COUNTS_FROM, decide, settle_rule
from pytest_edgetpu.judge.verdict import Policy, Status

SLOWDOWNS = (0.0, 0.05, 0.10, 0.20)
SETTLED = settle_rule(Policy(threshold=0.05))
FIRST_LOOK = MeasureSettings().min_instances


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


def stopped_at(base: list[float], current: list[float], confirming: bool) -> int:
    """How many of ``current``'s instances a verdict-aware measurement would have taken."""
    for k in range(FIRST_LOOK, len(current)):
        settled = SETTLED(base, current[:k])
        if settled and not (settled.slower and confirming and k < len(current) * 2 / 3):
            return k
    return len(current)


def regression(base: list[float], current: list[float]) -> bool:
    return decide(shift(fastest(base), fastest(current)), 0.05)[0] is Status.REGRESSION


def early_stop(runs: list[dict[str, Any]], name: str, draws: int = 2000) -> list[str]:
    """Confirmed REGRESSION rates of whole measurements -> of verdict-aware ones, and the share
    of instances the first measurement took, per slowdown (crossed as :func:`crossed`)."""
    groups: dict[object, list[list[float]]] = {}
    for r in runs:
        if r["tool"] == "pytest-edgetpu" and name in r["tests"]:
            key = "baseline" if r["update"] else r["slowdown"]
            groups.setdefault(key, []).append(r["tests"][name]["instances"])
    rng = random.Random(1)
    cells = []
    for slowdown in SLOWDOWNS:
        whole = early = 0
        used = 0.0
        for _ in range(draws):
            base = rng.choice(groups["baseline"])
            first, second = rng.sample(groups[slowdown], 2)
            whole += regression(base, first) and regression(base, second)
            k = stopped_at(base, first, confirming=False)
            used += k / len(first)
            if regression(base, first[:k]):
                early += regression(base, second[: stopped_at(base, second, confirming=True)])
        cells.append(f"{whole / draws:.1%} -> {early / draws:.1%} ({used / draws:.0%})")
    return cells


def paired_early_stop(runs: list[dict[str, Any]]) -> None:
    """The first measurements of a relative_gate.py file, whole and stopped once settled."""
    cells: dict[tuple[str, float], list[float]] = {}
    for r in runs:
        if r["tool"] != "pytest-edgetpu" or r.get("mode") != "relative":
            continue
        for t in r["tests"].values():
            base, head = t.get("base_instances") or [], t["instances"]
            if len(base) != len(head) or len(head) < 3:
                continue
            k = FIRST_LOOK
            while k < len(head) and SETTLED(base[:k], head[:k]) is None:
                k += 1
            k = min(k, len(head))
            cell = cells.setdefault((r["condition"], r["slowdown"]), [0, 0, 0, 0.0])
            cell[0] += regression(base, head)
            cell[1] += regression(base[:k], head[:k])
            cell[2] += 1
            cell[3] += k / len(head)
    print("| condition | change | REGRESSION, whole | stopped once settled | pairs used |")
    print("|---|---|---|---|---|")
    for (condition, slowdown), (whole, early, n, used) in sorted(cells.items()):
        print(f"| {condition} | +{slowdown:.0%} | {whole}/{n} | {early}/{n} | {used / n:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument(
        "--paired", action="store_true", help="replay a relative_gate.py file's pairs"
    )
    args = parser.parse_args()
    runs = json.loads(args.results.read_text())["runs"]
    if args.paired:
        paired_early_stop(runs)
        return
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
    print()
    print("Confirmed REGRESSION, whole measurements -> stopped once settled (the share of")
    print("instances the first measurement took):")
    print()
    print("| model | A/A | +5% | +10% | +20% |")
    print("|---|---|---|---|---|")
    for name in names:
        print(f"| {name} | " + " | ".join(early_stop(runs, name)) + " |")


if __name__ == "__main__":
    main()
