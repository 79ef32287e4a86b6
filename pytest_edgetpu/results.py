"""Result records: the JSON form of one measured test, the unit everything else exchanges.

A record is what ``--edgetpu-json`` writes, what an xdist worker sends to the controller, what
the reports render, and (through its ``baseline_entry``) what an update writes into
``baselines/``. Records are plain JSON-ready dicts so they cross process boundaries as they are.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from .baselines import BaselineEntry
from .bench import BenchResult
from .compare import Current, Verdict
from .errors import ResultsError
from .jsonio import append_regular, check_header, read_limited, write_atomic
from .limits import (
    LATENCY_WORDS,
    MAX_NUM_THREADS,
    MAX_WORKERS,
    THREADS_AND_WORKERS_WORDS,
    is_count,
    is_latency_ms,
)

__all__ = [
    "QUANTILE_LEVELS",
    "RESULTS_FORMAT",
    "RESULTS_SCHEMA_VERSION",
    "current_of",
    "load_results",
    "result_record",
    "results_document",
]

RESULTS_FORMAT: Final = "pytest-edgetpu-results"
#: Results schema history: 1: pytest-edgetpu 0.1.0, first release.
RESULTS_SCHEMA_VERSION: Final = 1

Record = dict[str, Any]

#: The levels of a record's ``quantiles_ms``: 0%, 5%, ..., 100% of the pooled per-invoke
#: samples, enough to draw the distribution (``--edgetpu-plot``) without keeping every sample.
QUANTILE_LEVELS: Final = tuple(i / 20 for i in range(21))


def result_record(
    test_id: str,
    result: BenchResult,
    verdict: Verdict | None,
    profile_key: str,
    entry: BaselineEntry | None,
    recorded: bool,
    device_words: str,
    workers: int,
) -> Record:
    """The record of one measured test."""
    summary = result.summary
    record: Record = {
        "test_id": test_id,
        "target": result.target,
        "device": result.device_id,
        "device_words": device_words,
        "workers": workers,
        "profile": profile_key,
        "metric": result.metric,
        "num_threads": result.num_threads,
        "timed": result.timed,
        "recorded": recorded,
        "summary_ms": {**summary.figures(), "n": summary.n},
        "phases_ms": {
            "load": result.load_ms,
            "first_inference": result.first_inference_ms,
            "warmup_mean": result.warmup_ms,
            # Once per session, before the first test: never part of the phases above.
            "delegate_load": result.delegate_load_ms,
        },
        "thermal": None,
        "notes": list(result.notes),
        "instance_values_ms": list(result.instance_values_ms),
        "model": None,
        "verdict": None,
        "baseline_entry": entry.to_json() if entry is not None else None,
    }
    if result.measurement is not None:
        record["stop_reason"] = result.measurement.stop_reason
        record["elapsed_s"] = result.measurement.elapsed_s
        pooled = [s for inst in result.measurement.instances for s in inst.samples_ns]
        record["quantiles_ms"] = [float(q) / 1e6 for q in np.quantile(pooled, QUANTILE_LEVELS)]
    models = result.models
    if models:
        record["model"] = {
            "path": ", ".join(os.fspath(m.path) for m in models),
            "sha256": result.model_sha256,
            "edgetpu_ops": sum(m.edgetpu_ops for m in models),
            "cpu_ops": sum(m.cpu_ops for m in models),
            # One edgetpu-custom-op node per TPU subgraph: the same count, by its meaning.
            "tpu_subgraphs": sum(m.edgetpu_ops for m in models),
            "partially_mapped": any(m.partially_mapped for m in models),
        }
        if result.model is None:  # a callable's: each model it runs, by name and digest
            record["model"]["models"] = [
                {"path": os.fspath(m.path), "sha256": m.sha256} for m in models
            ]
    if result.thermal is not None:
        record["thermal"] = {
            "before_c": result.thermal.before_c,
            "after_c": result.thermal.after_c,
            "trip_point_c": result.thermal.trip_point_c,
            "throttled": result.thermal.throttled,
        }
    if verdict is not None:
        change = verdict.change
        record["verdict"] = {
            "status": verdict.status.value,
            "message": verdict.message,
            "reason": verdict.reason,
            "noise_note": verdict.noise_note,
            "baseline_ms": verdict.baseline_ms,
            "change": change.estimate if change else None,
            "ci_low": change.low if change else None,
            "ci_high": change.high if change else None,
            "confidence": change.confidence if change else None,
            "confirmed": verdict.confirmed,
            "model_changed": verdict.model_changed,
            "baseline_file": os.fspath(verdict.baseline_path),
            "baseline_recorded": verdict.baseline_recorded,
            "baseline_sha256": verdict.baseline_sha256,
        }
    return record


def results_document(
    records: Sequence[Record], environment: Mapping[str, str], profiles: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``--edgetpu-json`` document: every record, the environment and the profiles."""
    return {
        "format": RESULTS_FORMAT,
        "schema_version": RESULTS_SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": dict(environment),
        "profiles": dict(profiles),
        "results": list(records),
    }


def dump_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_text(path: Path, text: str, append: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (or append it), creating parent folders; any
    failure is a ResultsError naming the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not append:
            write_atomic(path, text)
            return
        append_regular(path, text)
    except OSError as exc:
        # An fsync's "No space left on device" names no file; this message does.
        raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from exc


#: What every record of a results file must hold, and of which type (a file edited by hand
#: or by another tool is checked here, so nothing later fails on a wrong type).
_RECORD_KEYS: Final[Mapping[str, type]] = {
    "test_id": str,
    "device": str,
    "device_words": str,
    "workers": int,
    "profile": str,
    "metric": str,
    "timed": bool,
}


def load_results(path: Path) -> dict[str, Any]:
    """Read a ``--edgetpu-json`` file; any problem is a ResultsError naming it."""
    try:
        document = read_limited(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResultsError(f"{path} is not a readable results file ({exc})") from exc
    document = check_header(
        document,
        path,
        kind=RESULTS_FORMAT,
        what="pytest-edgetpu results",
        newest=RESULTS_SCHEMA_VERSION,
        foreign_fix="give the file that --edgetpu-json wrote",
        error=ResultsError,
    )
    records = document.get("results")
    profiles = document.get("profiles")
    if not isinstance(records, list) or not isinstance(profiles, dict):
        raise ResultsError(f'{path}: "results" must be a list and "profiles" an object')
    for key, fields in profiles.items():
        if not isinstance(fields, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
        ):
            raise ResultsError(f"{path}: profile {key!r} must map names to strings")
    for index, record in enumerate(records):
        missing = [k for k in _RECORD_KEYS if not isinstance(record, dict) or k not in record]
        if missing:
            raise ResultsError(f"{path}: result {index} has no {missing[0]!r}")
        for name, kind in _RECORD_KEYS.items():
            value = record[name]
            # bool is an int in Python; a "workers": true is as wrong as "workers": "2".
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ResultsError(
                    f"{path}: result {index} has a {name!r} of the wrong type; give the file "
                    "that --edgetpu-json wrote"
                )
        if record["timed"] and record["profile"] not in profiles:
            raise ResultsError(f"{path}: result {index} names an unknown profile")
    return document


def current_of(record: Record, source: Path) -> Current:
    """What a verdict needs, from a timed record of a results file."""
    values = record.get("instance_values_ms")
    if not isinstance(values, list) or len(values) < 2 or not all(map(is_latency_ms, values)):
        raise ResultsError(
            f"{source}: {record['test_id']} has no usable instance_values_ms (two or more, each "
            f"{LATENCY_WORDS})"
        )
    summary = record.get("summary_ms")
    value = summary.get(record["metric"]) if isinstance(summary, dict) else None
    num_threads, workers = record.get("num_threads"), record["workers"]
    if not is_latency_ms(value):
        raise ResultsError(
            f"{source}: {record['test_id']} has no usable summary_ms value for its metric "
            f"{record['metric']!r}"
        )
    if not (is_count(num_threads, 1, MAX_NUM_THREADS) and is_count(workers, 1, MAX_WORKERS)):
        raise ResultsError(f"{source}: {record['test_id']} needs {THREADS_AND_WORKERS_WORDS}")
    model = record.get("model")
    sha256 = model.get("sha256") if isinstance(model, dict) else None
    if sha256 is not None and not isinstance(sha256, str):
        raise ResultsError(f"{source}: {record['test_id']} has a malformed model sha256")
    return Current(
        metric=record["metric"],
        value_ms=float(value),
        instance_values_ms=tuple(float(v) for v in values),
        num_threads=num_threads,
        workers=workers,
        device_words=record["device_words"],
        model_sha256=sha256,
    )
