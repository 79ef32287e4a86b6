"""Rendering: the terminal summary, the JSON results file and the Markdown report.

Renders records that :mod:`pytest_edgetpu.run` decided; never decides anything itself.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd

from .compare import Status
from .run import Record

__all__ = [
    "RESULTS_FORMAT",
    "markdown_report",
    "results_document",
    "summary_table",
    "update_line",
    "write_text",
]

RESULTS_FORMAT: Final = "pytest-edgetpu-results"
#: Results schema history: 1: pytest-edgetpu 0.1.0, first release.
RESULTS_SCHEMA_VERSION: Final = 1

# Regressions first, so a reader sees what failed before what passed.
_ORDER: Final = {
    Status.REGRESSION: 0,
    Status.UNSTABLE: 1,
    Status.INCOMPARABLE: 2,
    Status.MODEL_CHANGED: 3,
    Status.NO_BASELINE: 4,
    Status.IMPROVED: 5,
    Status.PASS: 6,
}


def _status(record: Record) -> str:
    if record.verdict is None:
        return "untimed"
    if record.recorded:
        return "RECORDED"
    return record.verdict.status.value


def _change(record: Record) -> str:
    change = record.verdict.change if record.verdict else None
    if change is None:
        return ""
    return f"{change.estimate:+.1%} ({change.low:+.1%}..{change.high:+.1%})"


def _frame(records: Sequence[Record]) -> pd.DataFrame:
    ordered = sorted(
        records,
        key=lambda r: (_ORDER.get(r.verdict.status, 9) if r.verdict else 10, r.test_id),
    )
    rows = [
        {
            "test": r.test_id,
            "device": r.result.device_id,
            "p50 ms": f"{r.result.p50_ms:.3f}",
            "p90 ms": f"{r.result.p90_ms:.3f}",
            "p99 ms": f"{r.result.p99_ms:.3f}",
            "n": r.result.n,
            "baseline": (
                f"{r.verdict.baseline_ms:.3f}"
                if r.verdict and r.verdict.baseline_ms is not None
                else ""
            ),
            "change (95% CI)": _change(r),
            "verdict": _status(r),
        }
        for r in ordered
    ]
    return pd.DataFrame(rows)


def update_line(record: Record) -> str:
    """What an update run did to one test's baseline, for the terminal."""
    verdict = record.verdict
    now = f"{record.result.metric} {record.result.value_ms:.3g} ms"
    if verdict is None or verdict.baseline_ms is None or verdict.change is None:
        return f"{record.test_id}: recorded {now} (new)"
    if verdict.status is Status.PASS or verdict.status is Status.MODEL_CHANGED:
        how = "unchanged within the threshold"
    else:
        how = verdict.status.value.lower()
    return (
        f"{record.test_id}: recorded {now} (was {verdict.baseline_ms:.3g} ms, "
        f"{verdict.change.estimate:+.1%}: {how})"
    )


def summary_table(records: Sequence[Record]) -> str:
    """A plain-text table of every timed record for the terminal summary."""
    return _frame([r for r in records if r.result.timed]).to_string(index=False)


def headline(records: Sequence[Record]) -> str:
    """``1 regressed, 0 improved, 3 unchanged, 1 new`` (untimed records are not counted)."""
    counts: dict[str, int] = {}
    for record in records:
        if record.verdict is not None:
            counts[record.verdict.status.value] = counts.get(record.verdict.status.value, 0) + 1
    parts = [
        f"{counts.get('REGRESSION', 0)} regressed",
        f"{counts.get('IMPROVED', 0)} improved",
        f"{counts.get('PASS', 0) + counts.get('MODEL_CHANGED', 0)} unchanged",
        f"{counts.get('NO_BASELINE', 0)} new",
    ]
    for status in ("UNSTABLE", "INCOMPARABLE"):
        if counts.get(status):
            parts.append(f"{counts[status]} {status.lower()}")
    return ", ".join(parts)


def markdown_report(records: Sequence[Record], environment: Mapping[str, str]) -> str:
    """A Markdown report for a CI job summary or a pull-request comment."""
    timed = [r for r in records if r.result.timed]
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
        notes = [r for r in timed if r.verdict and r.verdict.status is not Status.PASS]
        for record in notes:
            if record.verdict is not None:
                lines.append(f"- `{record.test_id}`: {record.verdict.message}")
        if notes:
            lines.append("")
    lines += ["<details><summary>Environment</summary>", ""]
    lines += [f"- {key}: {value}" for key, value in sorted(environment.items())]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _record_json(record: Record) -> dict[str, Any]:
    result = record.result
    summary = result.summary
    verdict = record.verdict
    data: dict[str, Any] = {
        "test_id": record.test_id,
        "target": result.target,
        "device": result.device_id,
        "profile": record.profile_key,
        "metric": result.metric,
        "num_threads": result.num_threads,
        "timed": result.timed,
        "recorded": record.recorded,
        "summary_ms": {
            "n": summary.n,
            "min": summary.min_ms,
            "p50": summary.p50_ms,
            "p90": summary.p90_ms,
            "p99": summary.p99_ms,
            "max": summary.max_ms,
            "mean": summary.mean_ms,
            "stdev": summary.stdev_ms,
            "mad": summary.mad_ms,
            "iqr": summary.iqr_ms,
            "cv": summary.cv,
            "throughput_per_s": summary.throughput_per_s,
        },
        "phases_ms": {
            "load": result.load_ms,
            "first_inference": result.first_inference_ms,
            "warmup_mean": result.warmup_ms,
        },
        "instance_values_ms": list(result.instance_values_ms),
        "model": None,
        "verdict": None,
    }
    if result.measurement is not None:
        data["stop_reason"] = result.measurement.stop_reason
        data["elapsed_s"] = result.measurement.elapsed_s
    if result.model is not None:
        data["model"] = {
            "path": os.fspath(result.model.path),
            "sha256": result.model.sha256,
            "edgetpu_ops": result.model.edgetpu_ops,
            "cpu_ops": result.model.cpu_ops,
        }
    if verdict is not None:
        change = verdict.change
        data["verdict"] = {
            "status": verdict.status.value,
            "message": verdict.message,
            "baseline_ms": verdict.baseline_ms,
            "change": change.estimate if change else None,
            "ci_low": change.low if change else None,
            "ci_high": change.high if change else None,
            "confidence": change.confidence if change else None,
            "confirmed": verdict.confirmed,
            "model_changed": verdict.model_changed,
            "baseline_file": os.fspath(verdict.baseline_path),
        }
    return data


def results_document(
    records: Sequence[Record], environment: Mapping[str, str], profile: Mapping[str, str]
) -> dict[str, Any]:
    """The ``--edgetpu-json`` document: every result, verdict and the environment."""
    return {
        "format": RESULTS_FORMAT,
        "schema_version": RESULTS_SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": dict(environment),
        "profile": dict(profile),
        "results": [_record_json(r) for r in records],
    }


def write_text(path: Path, text: str, append: bool = False) -> None:
    """Write (or append) ``text`` to ``path``, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        handle.write(text)


def dump_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
