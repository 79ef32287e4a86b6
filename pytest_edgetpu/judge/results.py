"""The result of one measured test: a frozen, typed object from the judge to every output.

The gate (:mod:`pytest_edgetpu.judge.gate`) makes a :class:`Result`; the terminal table, the
Markdown report, JUnit properties, plots and the CLI read its fields. It becomes JSON only at the
boundaries: the ``--edgetpu-json`` file (:class:`ResultsFile`) and the payload an xdist worker
sends to its controller, both through :meth:`Result.to_json` and :meth:`Result.from_json`, one
schema, versioned like the baselines (:data:`RESULTS_SCHEMA_VERSION`).
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from ..core.errors import BaselineError, ResultsError
from ..core.jsonio import JsonObject, append_regular, check_header, read_limited, write_atomic
from ..core.limits import (
    LATENCY_WORDS,
    MAX_MEMORY_KIB,
    MAX_NUM_THREADS,
    MAX_WORKERS,
    METRICS,
    THREADS_AND_WORKERS_WORDS,
    is_count,
    is_latency_ms,
    is_number,
)
from ..core.stats import SUMMARY_FIGURES, Shift, Summary, pooled_quantiles_ms
from ..device.delegation import Delegation
from ..device.discovery import Thermal
from ..device.profile import Profile
from ..engine.against import Against
from ..engine.memory import MEMORY_PHASES, MemoryUse, MemoryVerdict
from .baselines import BaselineEntry, parse_entry
from .compare import Current, Status, Verdict

if TYPE_CHECKING:
    from ..engine.session import BenchResult

__all__ = [
    "QUANTILE_LEVELS",
    "RESULTS_FORMAT",
    "RESULTS_SCHEMA_VERSION",
    "ModelFacts",
    "ModelRef",
    "Phases",
    "Result",
    "ResultsFile",
    "current_of",
    "load_results",
    "write_text",
]

RESULTS_FORMAT: Final = "pytest-edgetpu-results"
#: Results schema history: 1: pytest-edgetpu 0.1.0, first release.
RESULTS_SCHEMA_VERSION: Final = 1

#: The levels of a result's ``quantiles_ms``: 0%, 5%, ..., 100% of the pooled per-invoke
#: samples, enough to draw the distribution (``--edgetpu-plot``) without keeping every sample.
QUANTILE_LEVELS: Final = tuple(i / 20 for i in range(21))

_FIX: Final = "give the file that --edgetpu-json wrote"
_T = TypeVar("_T")


@dataclass(frozen=True)
class Phases:
    """How long each phase before the timed invokes took, in milliseconds."""

    load_ms: float
    first_inference_ms: float
    warmup_mean_ms: float
    #: Once per session, before the first test: never part of the phases above.
    delegate_load_ms: float | None = None


@dataclass(frozen=True)
class ModelRef:
    """One model a timed callable runs, by path and digest."""

    path: str
    sha256: str


@dataclass(frozen=True)
class ModelFacts:
    """The timed model (or a callable's models together): where, which, and how it maps."""

    path: str  # the paths, comma-separated, for a callable of several models
    sha256: str | None
    #: One edgetpu-custom-op node per TPU subgraph: the compiler fuses the ops it maps.
    tpu_subgraphs: int
    cpu_ops: int
    partially_mapped: bool
    #: A callable's models, each by name and digest; None for a model timed on its own.
    models: tuple[ModelRef, ...] | None = None


@dataclass(frozen=True)
class Result:
    """One measured test: what was timed, the figures, the verdict, and what was recorded."""

    test_id: str
    target: str  # the model path, or the callable's name
    device: str  # its id: "cpu:0", "usb:0"
    device_words: str  # "cpu (x86_64, LiteRT 2.3.0, 1 thread)"
    workers: int
    profile: str  # the device profile's key
    metric: str
    num_threads: int
    timed: bool
    summary: Summary
    phases: Phases
    instance_values_ms: tuple[float, ...]
    notes: tuple[str, ...] = ()
    model: ModelFacts | None = None
    thermal: Thermal | None = None
    verdict: Verdict | None = None
    #: The baseline entry the verdict compared with; None when nothing was compared.
    compared_entry: BaselineEntry | None = None
    #: What an update writes for this test (timed results only).
    baseline_entry: BaselineEntry | None = None
    recorded: bool = False
    #: Why a recordable entry was not written after all (its baseline file could not be).
    record_error: str | None = None
    #: Of a timed measurement: why it stopped, how long it took, its pooled quantiles.
    stop_reason: str | None = None
    elapsed_s: float | None = None
    quantiles_ms: tuple[float, ...] | None = None
    #: How contended the host was: the share of the timed loops the benchmark thread waited
    #: for a CPU (:mod:`pytest_edgetpu.engine.contention`); None when unknown.
    run_queue_wait: float | None = None
    #: Relative mode: the same benchmark at the revision, measured in pairs with this one.
    against: Against | None = None
    #: For each timed model the runtime could tell it of: which operators its delegate ran.
    delegations: tuple[Delegation, ...] = ()
    #: A model's memory per phase, measured in fresh processes; None where not measured.
    memory: MemoryUse | None = None
    #: The memory verdict against the baseline entry's figures; None where none was made.
    memory_verdict: MemoryVerdict | None = None

    @property
    def value_ms(self) -> float:
        """This run's figure of the gated metric."""
        return self.summary.value(self.metric)

    @property
    def status_words(self) -> str:
        """The verdict's status, ``RECORDED`` when an update recorded it, or ``untimed``."""
        if self.verdict is None:
            return "untimed"
        return "RECORDED" if self.recorded else self.verdict.status.value

    @classmethod
    def measured(
        cls,
        test_id: str,
        result: BenchResult,
        *,
        device_words: str,
        workers: int,
        profile: str,
        verdict: Verdict | None = None,
        compared_entry: BaselineEntry | None = None,
        baseline_entry: BaselineEntry | None = None,
        recorded: bool = False,
        memory_verdict: MemoryVerdict | None = None,
    ) -> Result:
        """The result of one ``tpu_bench`` measurement and what the gate made of it."""
        measurement = result.measurement
        quantiles = None
        if measurement is not None:
            pooled = [s for inst in measurement.instances for s in inst.samples_ns]
            quantiles = pooled_quantiles_ms(pooled, QUANTILE_LEVELS)
        return cls(
            test_id=test_id,
            target=result.target,
            device=result.device_id,
            device_words=device_words,
            workers=workers,
            profile=profile,
            metric=result.metric,
            num_threads=result.num_threads,
            timed=result.timed,
            summary=result.summary,
            phases=Phases(
                load_ms=result.load_ms,
                first_inference_ms=result.first_inference_ms,
                warmup_mean_ms=result.warmup_ms,
                delegate_load_ms=result.delegate_load_ms,
            ),
            instance_values_ms=result.instance_values_ms,
            notes=result.notes,
            model=_model_facts(result),
            thermal=result.thermal,
            verdict=verdict,
            compared_entry=compared_entry,
            baseline_entry=baseline_entry,
            recorded=recorded,
            stop_reason=measurement.stop_reason if measurement is not None else None,
            elapsed_s=measurement.elapsed_s if measurement is not None else None,
            quantiles_ms=quantiles,
            run_queue_wait=result.wait_share,
            against=result.against,
            delegations=tuple(d for d in result.delegations if d is not None),
            memory=result.memory,
            memory_verdict=memory_verdict,
        )

    def to_json(self) -> JsonObject:
        """The result as a ``results`` item of the ``--edgetpu-json`` file."""
        data: JsonObject = {
            "test_id": self.test_id,
            "target": self.target,
            "device": self.device,
            "device_words": self.device_words,
            "workers": self.workers,
            "profile": self.profile,
            "metric": self.metric,
            "num_threads": self.num_threads,
            "timed": self.timed,
            "recorded": self.recorded,
            "summary_ms": {**self.summary.figures(), "n": self.summary.n},
            "phases_ms": {
                "load": self.phases.load_ms,
                "first_inference": self.phases.first_inference_ms,
                "warmup_mean": self.phases.warmup_mean_ms,
                "delegate_load": self.phases.delegate_load_ms,
            },
            "notes": list(self.notes),
            "instance_values_ms": list(self.instance_values_ms),
            "model": _model_json(self.model),
            "thermal": _thermal_json(self.thermal),
            "verdict": _verdict_json(self.verdict) if self.verdict is not None else None,
            "compared_entry": _entry_json(self.compared_entry),
            "baseline_entry": _entry_json(self.baseline_entry),
        }
        optional = {
            "record_error": self.record_error,
            "stop_reason": self.stop_reason,
            "elapsed_s": self.elapsed_s,
            "quantiles_ms": list(self.quantiles_ms) if self.quantiles_ms is not None else None,
            "run_queue_wait": self.run_queue_wait,
            "against": _against_json(self.against) if self.against is not None else None,
            "delegation": [d.as_json() for d in self.delegations] or None,
            "memory": _memory_json(self.memory) if self.memory is not None else None,
            "memory_verdict": (
                {
                    "regressed": list(self.memory_verdict.regressed),
                    "message": self.memory_verdict.message,
                }
                if self.memory_verdict is not None
                else None
            ),
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data

    @classmethod
    def from_json(cls, raw: object, source: object, index: int) -> Result:
        """Read what :meth:`to_json` wrote (``source`` and ``index`` name it in errors);
        any problem is a ResultsError naming the field."""
        fields = _Fields(raw, f"{source}: result {index}")
        test_id = fields.text("test_id")
        metric = fields.text("metric")
        if metric not in METRICS:
            raise fields.wrong("metric")
        timed = fields.flag("timed")
        num_threads, workers = fields.whole("num_threads"), fields.whole("workers")
        device_words = fields.text("device_words")
        summary = _summary(fields.object("summary_ms"))
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
        phases = fields.object("phases_ms")
        model = fields.optional_object("model")
        thermal = fields.optional_object("thermal")
        verdict = fields.optional_object("verdict")
        quantiles = fields.optional_numbers("quantiles_ms")
        against = fields.optional_object("against")
        memory = fields.optional_object("memory")
        memory_verdict = fields.optional_object("memory_verdict")
        if against is not None and not all(
            map(is_latency_ms, against.numbers("instance_values_ms"))
        ):
            raise against.invalid("instance_values_ms", LATENCY_WORDS)
        return cls(
            test_id=test_id,
            target=fields.text("target"),
            device=fields.text("device"),
            device_words=device_words,
            workers=workers,
            profile=fields.text("profile"),
            metric=metric,
            num_threads=num_threads,
            timed=timed,
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
            verdict=(
                _verdict_from(verdict, metric, summary.value(metric), device_words)
                if verdict is not None
                else None
            ),
            compared_entry=_entry_from(fields, "compared_entry", source, test_id),
            baseline_entry=_entry_from(fields, "baseline_entry", source, test_id),
            recorded=fields.flag("recorded"),
            record_error=fields.optional_text("record_error"),
            stop_reason=fields.optional_text("stop_reason"),
            elapsed_s=fields.optional_number("elapsed_s"),
            quantiles_ms=quantiles,
            run_queue_wait=_share(fields, "run_queue_wait"),
            against=_against_from(against) if against is not None else None,
            delegations=tuple(map(_delegation_from, fields.optional_list("delegation") or ())),
            memory=_memory_from(memory) if memory is not None else None,
            memory_verdict=(
                MemoryVerdict(memory_verdict.texts("regressed"), memory_verdict.text("message"))
                if memory_verdict is not None
                else None
            ),
        )


def _memory_json(memory: MemoryUse) -> JsonObject:
    return {"kib": dict(memory.kib), "spread_kib": dict(memory.spread_kib), "runs": memory.runs}


def _memory_from(fields: _Fields) -> MemoryUse:
    kib, spread = (_memory_figures(fields.object(key)) for key in ("kib", "spread_kib"))
    assert kib is not None and spread is not None
    return MemoryUse(kib, spread, fields.whole("runs"))


def _memory_figures(fields: _Fields | None) -> dict[str, float] | None:
    """Figures in KiB, one per phase, each within :data:`MAX_MEMORY_KIB`."""
    if fields is None:
        return None
    figures = {phase: fields.number(phase) for phase in MEMORY_PHASES}
    if not all(abs(v) <= MAX_MEMORY_KIB for v in figures.values()):
        raise fields.wrong(next(p for p, v in figures.items() if abs(v) > MAX_MEMORY_KIB))
    return figures


def _delegation_from(fields: _Fields) -> Delegation:
    itemized = fields.raw("cpu_ops") is not None
    return Delegation(
        delegate=fields.text("delegate"),
        ops=fields.whole("ops"),
        cpu_ops=fields.texts("cpu_ops") if itemized else (),
        itemized=itemized,
        fully=fields.flag("fully_delegated"),
    )


def _model_facts(result: BenchResult) -> ModelFacts | None:
    models = result.models
    if not models:
        return None
    return ModelFacts(
        path=", ".join(os.fspath(m.path) for m in models),
        sha256=result.model_sha256,
        tpu_subgraphs=sum(m.edgetpu_ops for m in models),
        cpu_ops=sum(m.cpu_ops for m in models),
        partially_mapped=any(m.partially_mapped for m in models),
        models=(
            tuple(ModelRef(os.fspath(m.path), m.sha256) for m in models)
            if result.model is None
            else None
        ),
    )


def _model_json(model: ModelFacts | None) -> JsonObject | None:
    if model is None:
        return None
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


def _model_from(fields: _Fields) -> ModelFacts:
    listed = fields.optional_list("models")
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


def _against_json(against: Against) -> JsonObject:
    summary = against.summary
    return {
        "revision": against.revision,
        "where": against.where,
        "missing": against.missing,
        "summary_ms": {**summary.figures(), "n": summary.n} if summary is not None else None,
        "instance_values_ms": list(against.instance_values_ms),
        "model_sha256": against.model_sha256,
        "memory_kib": dict(against.memory_kib) if against.memory_kib is not None else None,
    }


def _against_from(fields: _Fields) -> Against:
    summary = fields.optional_object("summary_ms")
    return Against(
        revision=fields.text("revision"),
        where=fields.text("where"),
        missing=fields.text("missing"),
        summary=_summary(summary) if summary is not None else None,
        instance_values_ms=fields.numbers("instance_values_ms"),
        model_sha256=fields.optional_text("model_sha256"),
        memory_kib=_memory_figures(fields.optional_object("memory_kib")),
    )


def _thermal_json(thermal: Thermal | None) -> JsonObject | None:
    if thermal is None:
        return None
    return {
        "before_c": thermal.before_c,
        "after_c": thermal.after_c,
        "trip_point_c": thermal.trip_point_c,
        "throttled": thermal.throttled,
    }


def _thermal_from(fields: _Fields) -> Thermal:
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
    }


def _verdict_from(fields: _Fields, metric: str, current_ms: float, device_words: str) -> Verdict:
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
    )


def _entry_json(entry: BaselineEntry | None) -> JsonObject | None:
    return entry.to_json() if entry is not None else None


def _entry_from(fields: _Fields, key: str, source: object, test_id: str) -> BaselineEntry | None:
    raw = fields.raw(key)
    if raw is None:
        return None
    try:
        return parse_entry(f"{source}", test_id, raw)
    except BaselineError as error:
        raise ResultsError(str(error)) from None


def _share(fields: _Fields, key: str) -> float | None:
    """A share from 0 to 1 (a verdict divides by one minus it), or None when absent."""
    share = fields.optional_number(key)
    if share is not None and not 0.0 <= share <= 1.0:
        raise fields.invalid(key, "a share from 0 to 1")
    return share


def _summary(fields: _Fields) -> Summary:
    figures = {name: fields.number(name) for name in SUMMARY_FIGURES}
    if not figures["n"].is_integer():
        raise fields.wrong("n")
    return Summary.from_figures(figures)


class _Fields:
    """One JSON object of a results file or payload, read field by field: a missing field or
    one of the wrong type is a ResultsError naming it, never a KeyError or TypeError."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise ResultsError(f"{where} is not an object; {_FIX}")
        self._raw: Mapping[object, object] = raw
        self._where = where

    def wrong(self, key: str) -> ResultsError:
        return ResultsError(f"{self._where} has a {key!r} of the wrong type; {_FIX}")

    def invalid(self, key: str, words: str) -> ResultsError:
        return ResultsError(f"{self._where} has a {key!r} that is not {words}; {_FIX}")

    def raw(self, key: str) -> object:
        return self._raw.get(key)

    def _get(self, key: str) -> object:
        if key not in self._raw:
            raise ResultsError(f"{self._where} has no {key!r}; {_FIX}")
        return self._raw[key]

    def _required(self, key: str, read: Callable[[str], _T | None]) -> _T:
        self._get(key)  # a missing field is named as missing, not as of the wrong type
        value = read(key)
        if value is None:
            raise self.wrong(key)
        return value

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self.wrong(key)
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self.wrong(key)
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise self.wrong(key)
        return value

    def whole(self, key: str) -> int:
        value = self._get(key)
        # bool is an int in Python; a "workers": true is as wrong as "workers": "2".
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.wrong(key)
        return value

    def optional_whole(self, key: str) -> int | None:
        return self.whole(key) if self._raw.get(key) is not None else None

    def number(self, key: str) -> float:
        return self._required(key, self.optional_number)

    def optional_number(self, key: str) -> float | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not is_number(value):
            raise self.wrong(key)
        return float(value)

    def numbers(self, key: str) -> tuple[float, ...]:
        return self._required(key, self.optional_numbers)

    def optional_numbers(self, key: str) -> tuple[float, ...] | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(map(is_number, value)):
            raise self.wrong(key)
        return tuple(float(v) for v in value)

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.wrong(key)
        return tuple(value)

    def object(self, key: str) -> _Fields:
        return self._required(key, self.optional_object)

    def optional_object(self, key: str) -> _Fields | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.wrong(key)
        return _Fields(value, f"{self._where} {key}")

    def optional_list(self, key: str) -> list[_Fields] | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.wrong(key)
        return [_Fields(item, f"{self._where} {key}") for item in value]


@dataclass(frozen=True)
class ResultsFile:
    """The ``--edgetpu-json`` document: every result, the environment and the profiles."""

    results: tuple[Result, ...]
    environment: Mapping[str, str]
    profiles: Mapping[str, Profile]

    def to_json(self) -> JsonObject:
        return {
            "format": RESULTS_FORMAT,
            "schema_version": RESULTS_SCHEMA_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "environment": dict(self.environment),
            "profiles": {key: dict(profile.fields) for key, profile in self.profiles.items()},
            "results": [result.to_json() for result in self.results],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"


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
    return tuple(Result.from_json(item, source, index) for index, item in enumerate(raw))


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
    return ResultsFile(
        results=results,
        environment=read_environment(document.get("environment", {}), path),
        profiles=profiles,
    )


def current_of(result: Result) -> Current:
    """What a verdict needs, from a timed result (:meth:`Result.from_json` checked its
    figures)."""
    return Current(
        metric=result.metric,
        value_ms=result.value_ms,
        instance_values_ms=result.instance_values_ms,
        num_threads=result.num_threads,
        workers=result.workers,
        device_words=result.device_words,
        model_sha256=result.model.sha256 if result.model is not None else None,
        wait_share=result.run_queue_wait,
    )
