"""Rendering: the terminal summary, progress lines, JUnit properties and the Markdown report.

Renders what :mod:`pytest_edgetpu.run` decided (records of :mod:`pytest_edgetpu.results`);
never decides anything itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pandas as pd

from .compare import format_interval, format_ms
from .results import Record

__all__ = [
    "headline",
    "junit_properties",
    "kept_line",
    "markdown_report",
    "progress_line",
    "result_notes",
    "summary_table",
    "update_headline",
    "update_line",
]

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

_ACCEPT_UNSTABLE: Final = "--edgetpu-accept-unstable"


def _status(record: Record) -> str:
    if record["verdict"] is None:
        return "untimed"
    return "RECORDED" if record["recorded"] else str(record["verdict"]["status"])


def _change(record: Record) -> str:
    verdict = record["verdict"]
    if verdict is None or verdict["change"] is None:
        return ""
    return f"{verdict['change']:+.1%} ({format_interval(verdict['ci_low'], verdict['ci_high'])})"


def _baseline(record: Record) -> str:
    """The baseline's value of the gated metric, naming the metric unless it is p50."""
    verdict = record["verdict"]
    if verdict is None or verdict["baseline_ms"] is None:
        return ""
    metric = "" if record["metric"] == "p50" else f" ({record['metric']})"
    return f"{format_ms(verdict['baseline_ms'])}{metric}"


def _sort_key(record: Record) -> tuple[int, str]:
    verdict = record["verdict"]
    return (_ORDER.get(verdict["status"], 9) if verdict else 10, record["test_id"])


def _frame(records: Sequence[Record]) -> pd.DataFrame:
    rows = []
    for r in sorted(records, key=_sort_key):
        summary = r["summary_ms"]
        rows.append(
            {
                "test": r["test_id"],
                "device": r["device"],
                "p50 ms": format_ms(summary["p50"]),
                "p90 ms": format_ms(summary["p90"]),
                "p99 ms": format_ms(summary["p99"]),
                "n": summary["n"],
                "baseline": _baseline(r),
                "change (95% CI)": _change(r),
                "verdict": _status(r),
            }
        )
    return pd.DataFrame(rows)


def summary_table(records: Sequence[Record]) -> str:
    """A plain-text table of timed records for the terminal summary."""
    return _frame([r for r in records if r["timed"]]).to_string(index=False)


def progress_line(record: Record) -> str:
    """One judged test's figures and verdict, for the line under it in ``pytest -v``."""
    summary, verdict = record["summary_ms"], record["verdict"]
    text = (
        f"p50 {format_ms(summary['p50'])} ms, p90 {format_ms(summary['p90'])} ms, "
        f"p99 {format_ms(summary['p99'])} ms (n {summary['n']}): {verdict['status']}"
    )
    if verdict["change"] is not None:
        text += (
            f" {_change(record)} against {record['metric']} {format_ms(verdict['baseline_ms'])} ms"
        )
    if verdict["confirmed"]:
        text += ", confirmed"
    if record["recorded"]:
        text += "; recorded"
    return text


def junit_properties(record: Record) -> list[tuple[str, str]]:
    """A judged test's verdict and key figures as ``--junitxml`` properties.

    Times in milliseconds (four significant digits); the change and its confidence bounds as
    fractions (``+0.1234`` is 12.34% slower) of the gated metric, per instance."""
    summary, verdict = record["summary_ms"], record["verdict"]
    metric = record["metric"]
    figures = ["p50", "p90", "p99"] + ([metric] if metric not in ("p50", "p90", "p99") else [])
    properties = [
        ("verdict", str(verdict["status"])),
        ("metric", metric),
        ("device", record["device"]),
    ]
    properties += [(f"{name}_ms", f"{summary[name]:.4g}") for name in figures]
    if verdict["baseline_ms"] is not None:
        properties.append((f"baseline_{metric}_ms", f"{verdict['baseline_ms']:.4g}"))
    if verdict["change"] is not None:
        properties += [
            ("change", f"{verdict['change']:+.4f}"),
            ("change_ci_low", f"{verdict['ci_low']:+.4f}"),
            ("change_ci_high", f"{verdict['ci_high']:+.4f}"),
        ]
    properties.append(("confirmed", "true" if verdict["confirmed"] else "false"))
    # The second tpu_bench call of a test (its key "test_x#2") gets edgetpu_2_p50_ms, ...:
    # property names stay unique within the test's testcase.
    _, _, call = str(record["test_id"]).rpartition("#")
    prefix = f"edgetpu_{call}_" if call.isdigit() else "edgetpu_"
    return [(prefix + name, value) for name, value in properties]


def update_line(record: Record) -> str:
    """What an update run did to one test's baseline, for the terminal."""
    verdict = record["verdict"]
    now = f"{record['metric']} {format_ms(record['summary_ms'][record['metric']])} ms"
    if record.get("record_error"):
        return (
            f"{record['test_id']}: not recorded: {now}; its baseline file could not be written "
            "(the ERROR line below says why)"
        )
    if not record["recorded"]:
        return (
            f"{record['test_id']}: not recorded: {now} is UNSTABLE against the baseline's "
            f"{format_ms(verdict['baseline_ms'])} ms ({_change(record)}: too noisy to decide); "
            f"the old entry is kept; measure again, or record it anyway with {_ACCEPT_UNSTABLE}"
        )
    if verdict["change"] is None:
        return f"{record['test_id']}: recorded {now} (new)"
    status = verdict["status"]
    how = {
        "PASS": "unchanged within the threshold",
        "MODEL_CHANGED": "model changed, latency unchanged within the threshold",
    }.get(str(status), str(status).lower())
    return (
        f"{record['test_id']}: recorded {now} (was {format_ms(verdict['baseline_ms'])} ms, "
        f"{verdict['change']:+.1%}: {how})"
    )


def result_notes(record: Record, shown: str = "") -> list[str]:
    """The record's notes (a partly mapped model, a throttled Edge TPU) that ``shown``, the
    text already printed for it, does not hold yet."""
    return [note for note in record.get("notes", []) if note not in shown]


def kept_line(test_id: str) -> str:
    """A baseline entry an update kept although its test did not run."""
    return f"{test_id}: kept (not run)"


def update_headline(records: Sequence[Record]) -> str:
    """``2 baseline(s) recorded, 1 not recorded (UNSTABLE)`` over an update's records."""
    recorded = sum(1 for r in records if r["recorded"])
    failed = sum(1 for r in records if r.get("record_error"))
    refused = len(records) - recorded - failed
    text = f"{recorded} baseline(s) recorded"
    if refused:
        text += f", {refused} not recorded (UNSTABLE; {_ACCEPT_UNSTABLE} records them)"
    if failed:
        text += f", {failed} not recorded (the baseline file could not be written)"
    return text


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


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], right: int = 0) -> list[str]:
    """A Markdown table; the ``right`` columns after the first are numbers, right-aligned."""
    aligns = [":---"] + ["---:"] * right + [":---"] * (len(header) - 1 - right)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _verdict_cell(record: Record) -> str:
    status = str(record["verdict"]["status"])
    text = f"**{status}**" if status == "REGRESSION" else status
    return text + (", recorded" if record["recorded"] else "")


def _device_section(device: str, records: Sequence[Record]) -> list[str]:
    words = "; ".join(sorted({str(r["device_words"]) for r in records}))
    rows = [
        [
            f"`{r['test_id']}`",
            format_ms(r["summary_ms"]["p50"]),
            format_ms(r["summary_ms"]["p90"]),
            format_ms(r["summary_ms"]["p99"]),
            _baseline(r),
            _change(r),
            _verdict_cell(r),
        ]
        for r in records
    ]
    header = ["test", "p50 ms", "p90 ms", "p99 ms", "baseline ms", "change (95% CI)", "verdict"]
    lines = [f"### `{device}`: {words}", "", *_table(header, rows, right=4), ""]
    # The records whose message says more than the row: the same rule as the terminal's.
    notes = [
        r
        for r in records
        if r["verdict"]["status"] != "PASS" or r["verdict"]["reason"] or r["verdict"]["noise_note"]
    ]
    lines += [f"- `{r['test_id']}`: {r['verdict']['message']}" for r in notes]
    shown = {r["test_id"]: r["verdict"]["message"] for r in notes}
    flags = [
        f"- `{r['test_id']}`: {note}"
        for r in records
        for note in result_notes(r, shown.get(r["test_id"], ""))
    ]
    lines += flags
    return lines + ([""] if notes or flags else [])


def _fingerprints(records: Sequence[Record]) -> list[str]:
    rows = []
    for r in sorted(records, key=lambda r: (r["test_id"], r["device"])):
        model, verdict = r["model"] or {}, r["verdict"]
        rows.append(
            [
                f"`{r['test_id']}`",
                r["device"],
                f"`{model.get('path', r['target'])}`",
                (model.get("sha256") or "")[:12],
                (verdict.get("baseline_sha256") or "")[:12],
                (verdict.get("baseline_recorded") or "")[:10],
                f"`{verdict['baseline_file']}`",
            ]
        )
    header = [
        "test",
        "device",
        "model",
        "sha256",
        "baseline sha256",
        "baseline recorded",
        "baseline file",
    ]
    return _table(header, rows)


def markdown_report(
    records: Sequence[Record], environment: Mapping[str, str], profiles: Mapping[str, Any]
) -> str:
    """A Markdown report for a CI job summary or a pull-request comment: the headline, a table
    per device (regressions first), and the environment and fingerprints, collapsed."""
    gated = sorted((r for r in records if r["timed"]), key=_sort_key)
    lines = ["## pytest-edgetpu latency gate", "", f"**{headline(gated)}**", ""]
    by_device: dict[str, list[Record]] = {}
    for record in gated:
        by_device.setdefault(record["device"], []).append(record)
    # The device with the worst verdict first; sorted records make its first one its worst.
    for device in sorted(by_device, key=lambda d: (_sort_key(by_device[d][0])[0], d)):
        lines += _device_section(device, by_device[device])
    lines += ["<details><summary>Environment and fingerprints</summary>", "", "Environment:", ""]
    lines += [f"- {key}: {value}" for key, value in sorted(environment.items())]
    used = sorted({r["profile"] for r in gated})
    if used:
        lines += ["", "Device profiles (a baseline is compared only within its profile):", ""]
        for key in used:
            fields = ", ".join(f"{k} {v}" for k, v in sorted(profiles.get(key, {}).items()))
            lines.append(f"- `{key}`: {fields}")
        lines += ["", "Fingerprints:", "", *_fingerprints(gated)]
    lines += ["", "</details>", ""]
    return "\n".join(lines)
