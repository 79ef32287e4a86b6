"""Results as JSON: the ``--edgetpu-json`` file and an xdist worker's payload, one schema.

:func:`result_json` writes a :class:`~pytest_edgetpu.judge.results.Result`, :func:`read_result`
reads one back (every field through :class:`~pytest_edgetpu.core.fields.Fields`: a missing,
ill-typed or out-of-range one is a ResultsError naming it), versioned like the baselines
(:data:`RESULTS_SCHEMA_VERSION`). A result with ``"timed": true`` reads back as a
:class:`~pytest_edgetpu.judge.results.TimedResult` and needs its verdict and entry; any other
as a :class:`~pytest_edgetpu.judge.results.SmokeResult`.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..core.errors import BaselineError, ResultsError
from ..core.fields import Fields
from ..core.jsonio import JsonObject, check_header, read_limited
from ..core.limits import (
    LATENCY_WORDS,
    MAX_MEMORY_KIB,
    MAX_NUM_THREADS,
    MAX_WORKERS,
    METRICS,
    THREADS_AND_WORKERS_WORDS,
    is_count,
    is_latency_ms,
)
from ..core.stats import SUMMARY_FIGURES, Shift, Summary
from ..device.delegation import Delegation
from ..device.discovery import Thermal
from ..device.profile import Profile
from ..engine.against import Against, BaseSide, NotCompared
from ..engine.memory import MEMORY_PHASES, MemoryUse, MemoryVerdict
from .baselines import BaselineEntry, parse_entry
from .results import (
    ModelFacts,
    ModelRef,
    Phases,
    Result,
    ResultFields,
    SmokeResult,
    TimedResult,
)
from .structure import StructureVerdict
from .verdict import Status, Verdict

__all__ = [
    "RESULTS_FORMAT",
    "RESULTS_SCHEMA_VERSION",
    "ResultsFile",
    "load_results",
    "read_environment",
    "read_profiles",
    "read_result",
    "read_results",
    "result_json",
]

RESULTS_FORMAT: Final = "pytest-edgetpu-results"
#: Results schema history: 1: pytest-edgetpu 0.1.0, first release.
RESULTS_SCHEMA_VERSION: Final = 1

_FIX: Final = "give the file that --edgetpu-json wrote"


def result_json(result: Result) -> JsonObject:
    """``result`` as a ``results`` item of the ``--edgetpu-json`` file."""
    data: JsonObject = {
        "test_id": result.test_id,
        "target": result.target,
        "device": result.device,
        "device_words": result.device_words,
        "workers": result.workers,
        "profile": result.profile,
        "metric": result.metric,
        "num_threads": result.num_threads,
        "timed": result.timed,
        "recorded": False,
        "summary_ms": _summary_json(result.summary),
        "phases_ms": {
            "load": result.phases.load_ms,
            "first_inference": result.phases.first_inference_ms,
            "warmup_mean": result.phases.warmup_mean_ms,
            "delegate_load": result.phases.delegate_load_ms,
        },
        "notes": list(result.notes),
        "instance_values_ms": list(result.instance_values_ms),
        "model": _model_json(result.model) if result.model is not None else None,
        "thermal": _thermal_json(result.thermal) if result.thermal is not None else None,
        "verdict": None,
        "compared_entry": None,
        "baseline_entry": None,
    }
    optional: dict[str, object] = {
        "delegation": [d.as_json() for d in result.delegations] or None,
        "memory": _memory_json(result.memory) if result.memory is not None else None,
    }
    if isinstance(result, TimedResult):
        data.update(
            recorded=result.recorded,
            verdict=_verdict_json(result.verdict),
            compared_entry=_entry_json(result.compared_entry),
            baseline_entry=result.baseline_entry.to_json(),
        )
        optional.update(
            record_error=result.record_error,
            stop_reason=result.stop_reason,
            elapsed_s=result.elapsed_s,
            quantiles_ms=list(result.quantiles_ms) if result.quantiles_ms is not None else None,
            run_queue_wait=result.run_queue_wait,
            structure=result.structure or None,
            against=_against_json(result.against) if result.against is not None else None,
            memory_verdict=(
                {
                    "regressed": list(result.memory_verdict.regressed),
                    "message": result.memory_verdict.message,
                }
                if result.memory_verdict is not None
                else None
            ),
        )
    data.update({key: value for key, value in optional.items() if value is not None})
    return data


def read_result(raw: object, source: object, index: int) -> Result:
    """Read what :func:`result_json` wrote (``source`` and ``index`` name it in errors)."""
    fields = Fields(raw, f"{source}: result {index}", fix=_FIX, error=ResultsError)
    test_id = fields.text("test_id")
    metric = fields.text("metric")
    if metric not in METRICS:
        raise fields.wrong("metric")
    timed = fields.flag("timed")
    num_threads, workers = fields.whole("num_threads"), fields.whole("workers")
    device_words = fields.text("device_words")
    summary = _summary(fields.child("summary_ms"))
    values = fields.numbers("instance_values_ms")
    if timed:
        if len(values) < 2 or not all(map(is_latency_ms, values)):
            raise ResultsError(
                f"{source}: {test_id} has no usable instance_values_ms (two or more, each "
                f"{LATENCY_WORDS})"
            )
        if not is_latency_ms(summary.value(metric)):
            raise ResultsError(
                f"{source}: {test_id} has no usable summary_ms value for its metric {metric!r}"
            )
    if not (is_count(num_threads, 1, MAX_NUM_THREADS) and is_count(workers, 1, MAX_WORKERS)):
        raise ResultsError(f"{source}: {test_id} needs {THREADS_AND_WORKERS_WORDS}")
    phases = fields.child("phases_ms")
    model = fields.optional_child("model")
    thermal = fields.optional_child("thermal")
    memory = fields.optional_child("memory")
    shared = ResultFields(
        test_id=test_id,
        target=fields.text("target"),
        device=fields.text("device"),
        device_words=device_words,
        workers=workers,
        profile=fields.text("profile"),
        metric=metric,
        num_threads=num_threads,
        summary=summary,
        phases=Phases(
            load_ms=phases.number("load"),
            first_inference_ms=phases.number("first_inference"),
            warmup_mean_ms=phases.number("warmup_mean"),
            delegate_load_ms=phases.optional_number("delegate_load"),
        ),
        instance_values_ms=values,
        notes=fields.texts("notes"),
        model=_model_from(model) if model is not None else None,
        thermal=_thermal_from(thermal) if thermal is not None else None,
        delegations=tuple(map(_delegation_from, fields.optional_children("delegation") or ())),
        memory=_memory_from(memory) if memory is not None else None,
    )
    if not timed:
        return SmokeResult(**shared)
    verdict = fields.child("verdict")
    against = fields.optional_child("against")
    memory_verdict = fields.optional_child("memory_verdict")
    if against is not None and not all(map(is_latency_ms, against.numbers("instance_values_ms"))):
        raise against.invalid("instance_values_ms", LATENCY_WORDS)
    baseline_entry = _entry_from(fields, "baseline_entry", source, test_id)
    if baseline_entry is None:
        raise fields.problem("has no 'baseline_entry'")
    return TimedResult(
        **shared,
        verdict=_verdict_from(verdict, metric, summary.value(metric), device_words),
        compared_entry=_entry_from(fields, "compared_entry", source, test_id),
        baseline_entry=baseline_entry,
        recorded=fields.flag("recorded"),
        record_error=fields.optional_text("record_error"),
        stop_reason=fields.optional_text("stop_reason"),
        elapsed_s=fields.optional_number("elapsed_s"),
        quantiles_ms=fields.optional_numbers("quantiles_ms"),
        run_queue_wait=fields.share("run_queue_wait"),
        structure=fields.optional_text("structure") or "",
        against=_against_from(against) if against is not None else None,
        memory_verdict=(
            MemoryVerdict(memory_verdict.texts("regressed"), memory_verdict.text("message"))
            if memory_verdict is not None
            else None
        ),
    )


def _summary_json(summary: Summary) -> JsonObject:
    return {**summary.figures(), "n": summary.n}


def _summary(fields: Fields) -> Summary:
    figures = {name: fields.number(name) for name in SUMMARY_FIGURES}
    if not figures["n"].is_integer():
        raise fields.wrong("n")
    return Summary.from_figures(figures)


def _memory_json(memory: MemoryUse) -> JsonObject:
    return {"kib": dict(memory.kib), "spread_kib": dict(memory.spread_kib), "runs": memory.runs}


def _memory_from(fields: Fields) -> MemoryUse:
    kib, spread = (_memory_figures(fields.child(key)) for key in ("kib", "spread_kib"))
    return MemoryUse(kib, spread, fields.whole("runs"))


def _memory_figures(fields: Fields) -> dict[str, float]:
    """Figures in KiB, one per phase, each within :data:`MAX_MEMORY_KIB`."""
    figures = {phase: fields.number(phase) for phase in MEMORY_PHASES}
    too_large = [phase for phase, value in figures.items() if abs(value) > MAX_MEMORY_KIB]
    if too_large:
        raise fields.wrong(too_large[0])
    return figures


def _delegation_from(fields: Fields) -> Delegation:
    itemized = fields.raw("cpu_ops") is not None
    return Delegation(
        delegate=fields.text("delegate"),
        ops=fields.whole("ops"),
        cpu_ops=fields.texts("cpu_ops") if itemized else (),
        itemized=itemized,
        fully=fields.flag("fully_delegated"),
    )


def _model_json(model: ModelFacts) -> JsonObject:
    data: JsonObject = {
        "path": model.path,
        "sha256": model.sha256,
        "tpu_subgraphs": model.tpu_subgraphs,
        "cpu_ops": model.cpu_ops,
        "partially_mapped": model.partially_mapped,
    }
    if model.models is not None:
        data["models"] = [{"path": m.path, "sha256": m.sha256} for m in model.models]
    return data


def _model_from(fields: Fields) -> ModelFacts:
    listed = fields.optional_children("models")
    return ModelFacts(
        path=fields.text("path"),
        sha256=fields.optional_text("sha256"),
        tpu_subgraphs=fields.whole("tpu_subgraphs"),
        cpu_ops=fields.whole("cpu_ops"),
        partially_mapped=fields.flag("partially_mapped"),
        models=(
            tuple(ModelRef(m.text("path"), m.text("sha256")) for m in listed)
            if listed is not None
            else None
        ),
    )


def _against_json(against: BaseSide) -> JsonObject:
    # One object for both kinds: a side not compared has its "missing" words and no figures.
    measured = against if isinstance(against, Against) else None
    return {
        "revision": against.revision,
        "where": against.where,
        "missing": against.why if isinstance(against, NotCompared) else "",
        "summary_ms": _summary_json(measured.summary) if measured is not None else None,
        "instance_values_ms": list(measured.instance_values_ms) if measured is not None else [],
        "model_sha256": measured.model_sha256 if measured is not None else None,
        "memory_kib": (
            dict(measured.memory_kib)
            if measured is not None and measured.memory_kib is not None
            else None
        ),
        "in_processes": measured is not None and measured.in_processes,
    }


def _against_from(fields: Fields) -> BaseSide:
    revision, where, missing = fields.text("revision"), fields.text("where"), fields.text("missing")
    if missing:
        return NotCompared(revision, where, missing)
    memory = fields.optional_child("memory_kib")
    return Against(
        revision=revision,
        where=where,
        summary=_summary(fields.child("summary_ms")),
        instance_values_ms=fields.numbers("instance_values_ms"),
        model_sha256=fields.optional_text("model_sha256"),
        memory_kib=_memory_figures(memory) if memory is not None else None,
        in_processes=fields.optional_flag("in_processes"),
    )


def _thermal_json(thermal: Thermal) -> JsonObject:
    return {
        "before_c": thermal.before_c,
        "after_c": thermal.after_c,
        "trip_point_c": thermal.trip_point_c,
        "throttled": thermal.throttled,
    }


def _thermal_from(fields: Fields) -> Thermal:
    # "throttled" follows from the readings; the file's copy is for its readers.
    return Thermal(
        before_c=fields.optional_number("before_c"),
        after_c=fields.optional_number("after_c"),
        trip_point_c=fields.number("trip_point_c"),
    )


def _verdict_json(verdict: Verdict) -> JsonObject:
    change = verdict.change
    return {
        "status": verdict.status.value,
        "message": verdict.message,
        "reason": verdict.reason,
        "noise_note": verdict.noise_note,
        "baseline_ms": verdict.baseline_ms,
        "compared_baseline_ms": verdict.compared_baseline_ms,
        "compared_current_ms": verdict.compared_current_ms,
        "change": change.estimate if change else None,
        "ci_low": change.low if change else None,
        "ci_high": change.high if change else None,
        "confidence": change.confidence if change else None,
        "confirmed": verdict.confirmed,
        "model_changed": verdict.model_changed,
        "baseline_file": os.fspath(verdict.baseline_path),
        "baseline_recorded": verdict.baseline_recorded,
        "baseline_sha256": verdict.baseline_sha256,
        "against": verdict.against,
        "pairs": verdict.pairs,
        "process_pairs": verdict.process_pairs,
    }


def _verdict_from(fields: Fields, metric: str, current_ms: float, device_words: str) -> Verdict:
    # The message is not read back: it follows from the other fields, as when it was written.
    status = fields.text("status")
    if status not in Status.__members__:
        raise fields.wrong("status")
    estimate = fields.optional_number("change")
    change = None
    if estimate is not None:
        change = Shift(
            estimate=estimate,
            low=fields.number("ci_low"),
            high=fields.number("ci_high"),
            confidence=fields.number("confidence"),
        )
    return Verdict(
        status=Status(status),
        metric=metric,
        current_ms=current_ms,
        device_words=device_words,
        baseline_path=Path(fields.text("baseline_file")),
        baseline_ms=fields.optional_number("baseline_ms"),
        change=change,
        compared_baseline_ms=fields.optional_number("compared_baseline_ms"),
        compared_current_ms=fields.optional_number("compared_current_ms"),
        model_changed=fields.flag("model_changed"),
        confirmed=fields.flag("confirmed"),
        baseline_recorded=fields.optional_text("baseline_recorded"),
        baseline_sha256=fields.optional_text("baseline_sha256"),
        reason=fields.text("reason"),
        noise_note=fields.text("noise_note"),
        against=fields.optional_text("against") or "",
        pairs=fields.optional_whole("pairs") or 0,
        process_pairs=fields.optional_flag("process_pairs"),
    )


def _entry_json(entry: BaselineEntry | None) -> JsonObject | None:
    return entry.to_json() if entry is not None else None


def _entry_from(fields: Fields, key: str, source: object, test_id: str) -> BaselineEntry | None:
    raw = fields.raw(key)
    if raw is None:
        return None
    try:
        return parse_entry(f"{source}", test_id, raw)
    except BaselineError as error:
        raise ResultsError(str(error)) from None


@dataclass(frozen=True)
class ResultsFile:
    """The ``--edgetpu-json`` document: every result, the environment and the profiles."""

    results: tuple[Result, ...]
    environment: Mapping[str, str]
    profiles: Mapping[str, Profile]
    #: The compile structure verdicts of the Edge TPU models the run's tests benchmarked.
    structures: tuple[StructureVerdict, ...] = ()
    #: When the run wrote it (ISO 8601, UTC); "" for a document being written now.
    created: str = ""

    def to_json(self) -> JsonObject:
        document: JsonObject = {
            "format": RESULTS_FORMAT,
            "schema_version": RESULTS_SCHEMA_VERSION,
            "created": self.created
            or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "environment": dict(self.environment),
            "profiles": {key: dict(profile.fields) for key, profile in self.profiles.items()},
            "results": [result_json(result) for result in self.results],
        }
        if self.structures:
            document["edgetpu_compile"] = [verdict.to_json() for verdict in self.structures]
        return document

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @property
    def timed(self) -> list[TimedResult]:
        return [result for result in self.results if isinstance(result, TimedResult)]


def read_profiles(raw: object, source: object) -> dict[str, Profile]:
    """The ``profiles`` of a results file or payload: keys to fields, every one a string."""
    if not isinstance(raw, dict) or not all(
        isinstance(fields, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
        for fields in raw.values()
    ):
        raise ResultsError(f"{source}: every profile must map names to strings")
    return {key: Profile(dict(fields)) for key, fields in raw.items()}


def read_environment(raw: object, source: object) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ResultsError(f'{source}: "environment" must map names to strings')
    return dict(raw)


def read_results(raw: object, source: object) -> tuple[Result, ...]:
    if not isinstance(raw, list):
        raise ResultsError(f'{source}: "results" must be a list')
    return tuple(read_result(item, source, index) for index, item in enumerate(raw))


def load_results(path: Path) -> ResultsFile:
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
        foreign_fix=_FIX,
        error=ResultsError,
    )
    results = read_results(document.get("results"), path)
    profiles = read_profiles(document.get("profiles"), path)
    for index, result in enumerate(results):
        if result.timed and result.profile not in profiles:
            raise ResultsError(f"{path}: result {index} names an unknown profile")
    created = document.get("created")
    return ResultsFile(
        results=results,
        environment=read_environment(document.get("environment", {}), path),
        profiles=profiles,
        created=created if isinstance(created, str) else "",
    )
