"""Replay when the host's reading explains a slowdown, on the stored verdicts kept by
``benchmarks/process_gate.py``, offline.

Each kept message of a stored gate's ``REGRESSION`` names the change (its estimate and 95%
interval) and the host's reading beside it ("the host ran +15.9% against the recording (95% CI
-0.6..+16.8%; ...), which does not explain it"). The rule of
:func:`~pytest_edgetpu.judge.host_speed.host_explains` until 2026-12-07 asked the host's slowdown
to be significant; the rule now also takes a host whose estimate counts as a slowdown of the code
would (four fifths of the threshold). This script reads which of those verdicts the new rule turns
``BUSY``: the change beyond the host's (the change divided by it) no longer a regression. Unchanged
code's runs are the false alarms it removes, the slower code's the slowdowns it lets pass.
A ``BUSY`` or ``UNSTABLE`` verdict cannot turn into ``REGRESSION`` (the host's reading only ever
explains), and a ``PASS`` kept no message, so the replay counts ``REGRESSION`` verdicts only.

    python benchmarks/experiments/host_rule_replay.py benchmarks/results/process_gate*.json
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

_PERCENT = r"([+-]?\d+\.\d)"
_CHANGE = re.compile(rf"\({_PERCENT}%, 95% CI {_PERCENT}\.\.{_PERCENT}%\)")
#: A reading the test's own processes took: the only kind whose estimate may explain.
_HOST = re.compile(
    rf"the host ran {_PERCENT}% against the recording \(95% CI {_PERCENT}\.\.{_PERCENT}%; "
    r"a reference workload in the test's"
)
THRESHOLD = 0.05


def explained_now(message: str) -> str | None:
    """How the new rule reads a REGRESSION's message: None where it explains nothing."""
    from pytest_edgetpu.core.stats import Shift
    from pytest_edgetpu.judge.verdict import COUNTS_FROM, Status, decide

    change, host = _CHANGE.search(message), _HOST.search(message)
    if change is None or host is None:
        return None
    host_estimate = float(host.group(1)) / 100
    if host_estimate < THRESHOLD * COUNTS_FROM:
        return None
    estimate, low, high = (float(change.group(i)) / 100 for i in (1, 2, 3))
    beyond = Shift(
        estimate=(1 + estimate) / (1 + host_estimate) - 1,
        low=(1 + low) / (1 + host_estimate) - 1,
        high=(1 + high) / (1 + host_estimate) - 1,
        confidence=0.95,
    )
    if decide(beyond, THRESHOLD)[0] is Status.REGRESSION:
        return None
    return (
        f"change {estimate:+.1%} beside the host {host_estimate:+.1%} "
        f"(95% CI {host.group(2)}..{host.group(3)}%): beyond it {beyond.estimate:+.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path)
    files = parser.parse_args().results
    regressions: Counter[str] = Counter()
    turned: Counter[str] = Counter()
    for path in files:
        runs = json.loads(path.read_text()).get("runs")
        if not isinstance(runs, dict):
            continue
        for tool, by_scale in runs.items():
            if not tool.startswith("stored"):
                continue
            for scale, gate_runs in by_scale.items():
                code = "unchanged" if float(scale) == 1.0 else "slower"
                for run in gate_runs:
                    for test, status in run["verdicts"].items():
                        if status != "REGRESSION":
                            continue
                        message = run.get("messages", {}).get(test, "")
                        if not _HOST.search(message):
                            continue  # no message kept, no reading, or one of its own
                        regressions[code] += 1
                        why = explained_now(message)
                        if why:
                            turned[code] += 1
                            print(f"{path.name} {tool} {code} {test}: BUSY, {why}")
    for code in ("unchanged", "slower"):
        print(
            f"{code} code: {turned[code]} of {regressions[code]} REGRESSIONs judged beside the "
            "host's reading in its processes turn BUSY"
        )


if __name__ == "__main__":
    main()
