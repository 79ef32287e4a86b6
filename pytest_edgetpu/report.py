"""Rendering: the terminal summary and the Markdown report, from result records.

Renders what :mod:`pytest_edgetpu.run` decided (records of :mod:`pytest_edgetpu.results`);
never decides anything itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import pandas as pd

from .results import Record

__all__ = ["headline", "markdown_report", "summary_table", "update_line"]

# Regressions first, so a reader sees what failed before what passed.
_ORDER: Final = {
    "REGRESSION": 0,
    "UNSTABLE": 1,
    "INCOMPARABLE": 2,
    "MODEL_CHANGED": 3,
    "NO_BASELINE": 4,
    "IMPROVED": 5,
    "PASS": 6,
}


def _status(record: Record) -> str:
    if record["verdict"] is None:
        return "untimed"
    return "RECORDED" if record["recorded"] else str(record["verdict"]["status"])


def _change(record: Record) -> str:
    verdict = record["verdict"]
    if verdict is None or verdict["change"] is None:
        return ""
    return f"{verdict['change']:+.1%} ({verdict['ci_low']:+.1%}..{verdict['ci_high']:+.1%})"


def _sort_key(record: Record) -> tuple[int, str]:
    verdict = record["verdict"]
    return (_ORDER.get(verdict["status"], 9) if verdict else 10, record["test_id"])


def _frame(records: Sequence[Record]) -> pd.DataFrame:
    rows = []
    for r in sorted(records, key=_sort_key):
        summary, verdict = r["summary_ms"], r["verdict"]
        baseline = verdict["baseline_ms"] if verdict else None
        rows.append(
            {
                "test": r["test_id"],
                "device": r["device"],
                "p50 ms": f"{summary['p50']:.3f}",
                "p90 ms": f"{summary['p90']:.3f}",
                "p99 ms": f"{summary['p99']:.3f}",
                "n": summary["n"],
                "baseline": f"{baseline:.3f}" if baseline is not None else "",
                "change (95% CI)": _change(r),
                "verdict": _status(r),
            }
        )
    return pd.DataFrame(rows)


def summary_table(records: Sequence[Record]) -> str:
    """A plain-text table of timed records for the terminal summary."""
    return _frame([r for r in records if r["timed"]]).to_string(index=False)


def update_line(record: Record) -> str:
    """What an update run did to one test's baseline, for the terminal."""
    verdict = record["verdict"]
    now = f"{record['metric']} {record['summary_ms'][record['metric']]:.3g} ms"
    if verdict is None or verdict["change"] is None:
        return f"{record['test_id']}: recorded {now} (new)"
    status = verdict["status"]
    how = (
        "unchanged within the threshold"
        if status in ("PASS", "MODEL_CHANGED")
        else str(status).lower()
    )
    return (
        f"{record['test_id']}: recorded {now} (was {verdict['baseline_ms']:.3g} ms, "
        f"{verdict['change']:+.1%}: {how})"
    )


def headline(records: Sequence[Record]) -> str:
    """``1 regressed, 0 improved, 3 unchanged, 1 new`` over the gated records."""
    counts: dict[str, int] = {}
    for record in records:
        if record["verdict"] is not None:
            status = record["verdict"]["status"]
            counts[status] = counts.get(status, 0) + 1
    parts = [
        f"{counts.get('REGRESSION', 0)} regressed",
        f"{counts.get('IMPROVED', 0)} improved",
        f"{counts.get('PASS', 0) + counts.get('MODEL_CHANGED', 0)} unchanged",
        f"{counts.get('NO_BASELINE', 0)} new",
    ]
    parts += [f"{counts[s]} {s.lower()}" for s in ("UNSTABLE", "INCOMPARABLE") if counts.get(s)]
    return ", ".join(parts)


def markdown_report(records: Sequence[Record], environment: Mapping[str, str]) -> str:
    """A Markdown report for a CI job summary or a pull-request comment."""
    timed = [r for r in records if r["timed"]]
    lines = ["## pytest-edgetpu latency gate", "", f"**{headline(timed)}**", ""]
    if timed:
        frame = _frame(timed)
        columns = list(frame.columns)
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "|".join("---" for _ in columns) + "|")
        for row in frame.itertuples(index=False):
            cells = [str(cell).replace("|", "\\|") for cell in row]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        notes = [r for r in sorted(timed, key=_sort_key) if r["verdict"]["status"] != "PASS"]
        lines += [f"- `{r['test_id']}`: {r['verdict']['message']}" for r in notes]
        if notes:
            lines.append("")
    lines += ["<details><summary>Environment</summary>", ""]
    lines += [f"- {key}: {value}" for key, value in sorted(environment.items())]
    lines += ["", "</details>", ""]
    return "\n".join(lines)
