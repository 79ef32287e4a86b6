"""Replay how much of a stored verdict's slowdown the host's reading explains, on the verdicts
the benchmarks kept, offline (issue 32).

Each kept ``REGRESSION`` of a stored gate beside a reading the test's own processes took names
the host's reading ("the host ran +19.5% against the recording (95% CI +18.4..+20.8%; a
reference workload in the test's 4 processes), which does not explain it") and the change
(``benchmarks/process_gate.py`` keeps the whole message, with the change's interval;
``benchmarks/relative_gate.py`` keeps the reason and the change's estimate only, judged here as
if its interval were that point). The host's reading explains a slowdown where the host is
slower (significantly, or by an estimate that counts as a slowdown of the code would) and the
change beyond what that explains is no longer a regression
(:func:`~pytest_edgetpu.judge.host_speed.host_explains`). How much it explains: a workload
``k`` times as sensitive to the host's state as the reference workload slows by the host's
ratio to the power ``k``; the rule until 2026-12-08 divided by the ratio itself (``k`` = 1).
Beside memory-streaming neighbours a model slows several times as much as the reference
(``benchmarks/experiments/memory_reference.py``), so this script reads, for each ``k``, how
many of those ``REGRESSION`` s stay one: on unchanged code the false alarms left, on slower
code the slowdowns still caught. A ``BUSY`` or ``UNSTABLE`` verdict cannot turn into
``REGRESSION`` (a larger ``k`` only explains more), and a ``PASS`` kept no message.

A second table replays the rule by kind of workload (``process_gate.py``'s callables at
``k`` = 1, ``relative_gate.py``'s models at ``k`` = 2): beyond the reading's estimate, and
beyond its interval (the change's lower end divided by the reading's upper end; the rule for
models since 2026-12-08, :func:`~pytest_edgetpu.judge.host_speed.host_explains`).

A third table asks the opposite: the stored ``PASS`` es beside a host faster than at the
recording whose message says what the speed-up may hide
(:func:`~pytest_edgetpu.judge.host_speed.host_hides`), and how many would read ``REGRESSION``
if that speed-up counted against the code: the change beyond it, by the reading's estimate and
by its interval (the change's lower end against the reading's end nearest no change). Not a
rule of the plugin: a faster host explains nothing there.

    python benchmarks/experiments/host_rule_replay.py benchmarks/results/process_gate*.json \\
        benchmarks/results/relative_gate*.json
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_edgetpu.core.stats import Shift
from pytest_edgetpu.judge.verdict import COUNTS_FROM, Status, decide

_PERCENT = r"([+-]?\d+\.\d)"
_CHANGE = re.compile(rf"\({_PERCENT}%, 95% CI {_PERCENT}\.\.{_PERCENT}%\)")
#: A reading the test's own processes took that explained nothing under the rule at the time.
_HOST = re.compile(
    rf"the host ran {_PERCENT}% against the recording \(95% CI {_PERCENT}\.\.{_PERCENT}%; "
    r"a reference workload in the test's"
)
THRESHOLD = 0.05
SENSITIVITIES = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)


def kept_regressions(path: Path) -> Iterator[tuple[str, str, str, Shift]]:
    """Each kept stored ``REGRESSION``: its condition, ``unchanged`` or ``slower`` code, its
    message's reason, and its change (``process_gate.py``'s of callables,
    ``relative_gate.py``'s of models)."""
    data = json.loads(path.read_text())
    runs = data.get("runs")
    if isinstance(runs, dict):  # process_gate.py: by tool, then by the work's scale
        for tool, by_scale in runs.items():
            if not tool.startswith("stored"):
                continue
            for scale, gate_runs in by_scale.items():
                code = "unchanged" if float(scale) == 1.0 else "slower"
                for run in gate_runs:
                    for test, status in run["verdicts"].items():
                        message = run.get("messages", {}).get(test, "")
                        change = _CHANGE.search(message)
                        if status == "REGRESSION" and change:
                            estimate, low, high = (float(change.group(i)) / 100 for i in (1, 2, 3))
                            shift = Shift(estimate, low, high, 0.95)
                            yield data.get("condition", "?"), code, message, shift
    elif isinstance(runs, list):  # relative_gate.py: one entry per gate run
        for run in runs:
            if run.get("mode") != "stored":
                continue
            code = "slower" if run.get("slowdown") else "unchanged"
            for test in run["tests"].values():
                estimate = test.get("change")
                if test["status"] == "REGRESSION" and estimate is not None:
                    shift = Shift(estimate, estimate, estimate, 0.95)
                    yield run.get("condition", "?"), code, test.get("reason") or "", shift


def stays_regression(
    message: str, change: Shift, sensitivity: float, *, interval: bool = False
) -> bool | None:
    """Whether a ``REGRESSION`` stays one beside its reading when the host's ratio explains the
    change raised to ``sensitivity`` (with ``interval``, the change's interval beyond the
    reading's); None where the message holds no reading to judge by."""
    host = _HOST.search(message)
    if host is None:
        return None
    estimate, low, high = (float(host.group(i)) / 100 for i in (1, 2, 3))
    explaining = high if interval else estimate
    if low <= 0 and explaining < THRESHOLD * COUNTS_FROM:
        return True  # the host is not shown slower: it explains nothing

    def beyond_host(value: float, host_change: float) -> float:
        return (1.0 + value) / math.pow(1.0 + host_change, sensitivity) - 1.0

    beyond = Shift(
        estimate=beyond_host(change.estimate, estimate),
        low=beyond_host(change.low, high if interval else estimate),
        high=beyond_host(change.high, low if interval else estimate),
        confidence=change.confidence,
    )
    return decide(beyond, THRESHOLD)[0] is Status.REGRESSION


def replay(files: list[Path]) -> dict[str, Any]:
    judged: Counter[tuple[str, str]] = Counter()
    stay: Counter[tuple[float, str, str]] = Counter()
    by_kind: Counter[tuple[str, str, str]] = Counter()
    stay_by_kind: Counter[tuple[bool, str, str, str]] = Counter()
    for path in files:
        kind = "callables" if path.name.startswith("process_gate") else "models"
        for condition, code, message, change in kept_regressions(path):
            if stays_regression(message, change, 1.0) is None:
                continue  # no reading in the test's processes beside it
            judged[condition, code] += 1
            for k in SENSITIVITIES:
                stay[k, condition, code] += bool(stays_regression(message, change, k))
            by_kind[kind, condition, code] += 1
            power = 1.0 if kind == "callables" else 2.0
            for interval in (False, True):
                stayed = stays_regression(message, change, power, interval=interval)
                stay_by_kind[interval, kind, condition, code] += bool(stayed)
    return {"judged": judged, "stay": stay, "by_kind": by_kind, "stay_by_kind": stay_by_kind}


_FASTER = re.compile(
    rf"the host ran (\d+\.\d)% faster than while recording \(95% CI {_PERCENT}\.\.{_PERCENT}%;"
    rf".*?beyond the host's speed-up the change is {_PERCENT}% \(95% CI {_PERCENT}\.\."
)


def stored_messages(path: Path) -> Iterator[tuple[str, str, str, str]]:
    """Each kept stored verdict's status and message, with its condition and code."""
    data = json.loads(path.read_text())
    runs = data.get("runs")
    if isinstance(runs, dict):
        for tool, by_scale in runs.items():
            if tool.startswith("stored"):
                for scale, gate_runs in by_scale.items():
                    code = "unchanged" if float(scale) == 1.0 else "slower"
                    for run in gate_runs:
                        for test, message in run.get("messages", {}).items():
                            yield data["condition"], code, run["verdicts"][test], message
    elif isinstance(runs, list):
        for run in runs:
            if run.get("mode") == "stored":
                code = "slower" if run.get("slowdown") else "unchanged"
                for test in run["tests"].values():
                    yield run["condition"], code, test["status"], test.get("reason") or ""


def hidden_by_faster_host(files: list[Path]) -> Counter[tuple[str, str, str]]:
    """Per kind and code: the stored verdicts beside a faster host that say what it may hide
    (``said``), and those whose change beyond its speed-up would be a regression, by the
    reading's estimate (``estimate``) and by its interval (``interval``)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for path in files:
        kind = "callables" if path.name.startswith("process_gate") else "models"
        for _, code, status, message in stored_messages(path):
            faster = _FASTER.search(message)
            if status not in ("PASS", "IMPROVED") or faster is None:
                continue
            speed_up, _, nearest_none, beyond, beyond_low = (
                float(faster.group(i)) / 100 for i in range(1, 6)
            )
            change_low = (1.0 + beyond_low) * (1.0 - speed_up) - 1.0
            counts[kind, code, "said"] += 1
            if beyond >= THRESHOLD * COUNTS_FROM:
                counts[kind, code, "estimate"] += beyond_low > 0
                counts[kind, code, "interval"] += (1.0 + change_low) / (1.0 + nearest_none) > 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path)
    files = parser.parse_args().results
    counts = replay(files)
    judged, stay = counts["judged"], counts["stay"]
    print("REGRESSIONs beside a reading in the test's processes that stay REGRESSION when the")
    print("host explains its ratio to the power k:")
    columns = " ".join(f"{f'k={k:g}':>6}" for k in SENSITIVITIES)
    print(f"{'condition':10} {'code':10} {'judged':>7} {columns}")
    for condition, code in sorted(judged):
        cells = " ".join(f"{stay[k, condition, code]:>6}" for k in SENSITIVITIES)
        print(f"{condition:10} {code:10} {judged[condition, code]:>7} {cells}")
    print()
    print("By kind (callables k=1, models k=2): stay REGRESSION beyond the reading's estimate,")
    print("and beyond its interval:")
    print(f"{'kind':10} {'condition':10} {'code':10} {'judged':>7} {'estimate':>9} {'interval':>9}")
    by_kind, stay_by_kind = counts["by_kind"], counts["stay_by_kind"]
    for kind, condition, code in sorted(by_kind):
        cells = " ".join(f"{stay_by_kind[i, kind, condition, code]:>9}" for i in (False, True))
        print(f"{kind:10} {condition:10} {code:10} {by_kind[kind, condition, code]:>7} {cells}")
    print()
    print("PASSes beside a faster host that say what it may hide, and those that would read")
    print("REGRESSION if its speed-up counted against the code:")
    print(f"{'kind':10} {'code':10} {'said':>7} {'estimate':>9} {'interval':>9}")
    hidden = hidden_by_faster_host(files)
    for kind, code in sorted({(kind, code) for kind, code, _ in hidden}):
        cells = " ".join(f"{hidden[kind, code, column]:>9}" for column in ("estimate", "interval"))
        print(f"{kind:10} {code:10} {hidden[kind, code, 'said']:>7} {cells}")


if __name__ == "__main__":
    main()
