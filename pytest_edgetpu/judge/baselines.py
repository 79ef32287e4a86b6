"""Baseline files: versioned JSON, one file per device profile, keyed by test id.

A device profile is what makes two measurements comparable: device kind and connection, host
CPU architecture and model for CPU runs, libedgetpu build for Edge TPUs, runtime family. Its
key is the file name, e.g. ``baselines/cpu-x86_64-amd-epyc-litert.json``.

Files are written for review in a pull request: sorted keys, numbers rounded to four
significant digits, per-instance values sorted and on one line, so re-recording unchanged
code changes a few digits. Writes re-read the file under a lock, merge, and replace it
atomically; a corrupt, foreign or future-version file is an error that names the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final, TypeGuard

from ..core.errors import BaselineError
from ..core.fields import Fields
from ..core.jsonio import (
    MAX_BYTES,
    JsonObject,
    loads_document,
    locked,
    read_regular,
    write_atomic,
)
from ..core.limits import (
    LATENCY_WORDS,
    MAX_MEMORY_KIB,
    MAX_NUM_THREADS,
    MAX_PROCESSES,
    MAX_SAMPLE_COUNT,
    MAX_WORKERS,
    THREADS_AND_WORKERS_WORDS,
    is_count,
    is_duration_ms,
    is_latency_ms,
    is_number,
)
from ..core.stats import compared_value, compared_values
from ..device.profile import Profile
from ..engine.host_reference import HostReading
from ..engine.memory import MEMORY_PHASES

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "STRUCTURE_FILE",
    "BaselineEntry",
    "BaselineFile",
    "BaselineStore",
    "Lookup",
    "dumps",
    "load_file",
    "parse_entry",
    "parse_text",
    "prune_entries",
    "write_entries",
]

FORMAT: Final = "pytest-edgetpu-baselines"
#: The file of Edge TPU compile structures (:mod:`pytest_edgetpu.judge.structure`), which lives
#: beside the profiles' files and is not one of them.
STRUCTURE_FILE: Final = "edgetpu-compile.json"
#: Schema history (bump on any change a reader must know about):
#:   1: pytest-edgetpu 0.1.0, first release.
SCHEMA_VERSION: Final = 1

_SIGNIFICANT_DIGITS: Final = 4


@dataclass(frozen=True)
class BaselineEntry:
    """One test's baseline: enough of the distribution for a statistical comparison."""

    metric: str
    instance_values_ms: tuple[float, ...]
    summary_ms: Mapping[str, float]  # n, min, p50, p90, p99, max, mean of pooled samples
    load_ms: float
    first_inference_ms: float
    num_threads: int
    workers: int  # how many measurements ran in parallel on the host while recording
    recorded: str  # ISO 8601 UTC
    model_sha256: str | None = None
    model_path: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    #: How contended the host was while recording (:mod:`pytest_edgetpu.engine.contention`): the
    #: share of the timed loops the benchmark thread waited for a CPU; None: not measured.
    run_queue_wait: float | None = None
    #: The model's memory per phase in KiB (:mod:`pytest_edgetpu.engine.memory`); None: not
    #: measured.
    memory_kib: Mapping[str, float] | None = None
    #: How many fresh processes measured it, each one of ``instance_values_ms`` (a benchmark's
    #: figure moves with its process); 0: one process, each value an instance's.
    processes: int = 0
    #: The host's speed while recording: a reference workload's time in fresh processes
    #: (:mod:`pytest_edgetpu.engine.host_reference`); None: not measured.
    host_reference: HostReading | None = None

    @property
    def value_ms(self) -> float:
        return float(self.summary_ms[self.metric])

    @property
    def compared_values_ms(self) -> list[float]:
        """What a verdict compares of this entry
        (:func:`~pytest_edgetpu.core.stats.compared_values`)."""
        return compared_values(self.instance_values_ms, self.processes > 0)

    @property
    def compared_ms(self) -> float:
        """The figure a verdict shows for this entry: the median of its compared values."""
        return compared_value(self.instance_values_ms, self.processes > 0)

    def to_json(self) -> JsonObject:
        data: JsonObject = asdict(self)
        data["instance_values_ms"] = sorted(_round(v) for v in self.instance_values_ms)
        data["summary_ms"] = {
            k: int(v) if k == "n" else _round(v) for k, v in self.summary_ms.items()
        }
        data["load_ms"] = _round(self.load_ms)
        data["first_inference_ms"] = _round(self.first_inference_ms)
        data["environment"] = dict(self.environment)
        if self.run_queue_wait is None:
            del data["run_queue_wait"]  # entries of earlier versions read and write the same
        else:
            data["run_queue_wait"] = round(self.run_queue_wait, 4)
        if not self.processes:
            del data["processes"]
        if self.host_reference is None:
            del data["host_reference"]
        else:
            data["host_reference"] = {
                "kernel": self.host_reference.kernel,
                "values_ms": sorted(_round(v) for v in self.host_reference.values_ms),
            }
        if self.memory_kib is None:
            del data["memory_kib"]
        else:
            data["memory_kib"] = {phase: round(kib) for phase, kib in self.memory_kib.items()}
        return data


def _round(value: float) -> float:
    return float(f"{value:.{_SIGNIFICANT_DIGITS}g}")


@dataclass(frozen=True)
class BaselineFile:
    """A parsed baseline file."""

    path: Path
    profile: Profile
    entries: Mapping[str, BaselineEntry]


def dumps(profile: Profile, entries: Mapping[str, BaselineEntry]) -> str:
    """The file's text: stable key order, rounded numbers, number lists on one line."""
    document = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "profile": dict(profile.fields),
        "entries": {test_id: entries[test_id].to_json() for test_id in sorted(entries)},
    }
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    return (
        re.sub(
            r"\[\s+([-0-9.e+,\s]+?)\s+\]",
            lambda m: "[" + ", ".join(part.strip() for part in m.group(1).split(",")) + "]",
            text,
        )
        + "\n"
    )


def load_file(path: Path) -> BaselineFile:
    """Read and validate one baseline file; any problem is a BaselineError naming it."""
    try:
        text = read_regular(path, MAX_BYTES).decode("utf-8")
    except ValueError as exc:  # too large, or not UTF-8
        raise BaselineError(f"{path} is not a readable baseline file ({exc}); {_RESTORE}") from exc
    except OSError as exc:
        raise BaselineError(
            f"{path} is not a readable baseline file ({exc.strerror or exc}); {_RESTORE}"
        ) from exc
    return parse_text(text, path)


_RESTORE = (
    "restore it from git (git checkout -- <file>) or delete it and record again with "
    "--edgetpu-update-baselines"
)


def parse_text(text: str, path: Path) -> BaselineFile:
    """Validate a baseline file's text (``path`` names where it came from)."""
    document = loads_document(
        text,
        path,
        kind=FORMAT,
        what="baseline",
        newest=SCHEMA_VERSION,
        foreign_fix="move it out of the baseline directory, or use another baseline directory",
        damaged_fix=_RESTORE,
        error=BaselineError,
    )
    profile_data = document.get("profile")
    entries_data = document.get("entries")
    if not _is_str_mapping(profile_data) or not isinstance(entries_data, dict):
        raise BaselineError(
            f'{path}: "profile" must map names to strings and "entries" must be an '
            "object; restore the file from git"
        )
    profile = Profile(dict(profile_data))
    entries = {test_id: parse_entry(path, test_id, raw) for test_id, raw in entries_data.items()}
    return BaselineFile(path, profile, entries)


def _is_str_mapping(value: object) -> TypeGuard[dict[str, str]]:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def parse_entry(path: Path | str, test_id: str, raw: object) -> BaselineEntry:
    """Validate one entry read from ``path`` (a file, or whatever else it came from)."""
    fields = Fields(
        raw,
        f"{path}: entry {test_id!r}",
        fix="restore the file from git or record the test again with --edgetpu-update-baselines",
        error=BaselineError,
    )
    metric = fields.text("metric")
    values = fields.items("instance_values_ms")
    summary = fields.child("summary_ms")
    load_ms, first_ms = fields.number("load_ms"), fields.number("first_inference_ms")
    num_threads, workers = fields.whole("num_threads"), fields.whole("workers")
    recorded = fields.text("recorded")
    if len(values) < 2 or not all(is_latency_ms(v) for v in values):
        raise fields.problem(f"needs at least two instance_values_ms, each {LATENCY_WORDS}")
    if metric not in summary.names():
        raise fields.problem(f"has no summary_ms value for its metric {metric!r}")
    figures = {name: summary.raw(name) for name in summary.names()}
    for name, value in figures.items():
        if not (is_count(value, 0, MAX_SAMPLE_COUNT) if name == "n" else is_latency_ms(value)):
            words = "a whole number of samples" if name == "n" else LATENCY_WORDS
            raise fields.problem(f"has a summary_ms {name!r} of {value!r}, which is not {words}")
    if not is_count(num_threads, 1, MAX_NUM_THREADS) or not is_count(workers, 1, MAX_WORKERS):
        raise fields.problem(f"needs {THREADS_AND_WORKERS_WORDS}")
    if not is_duration_ms(load_ms) or not is_duration_ms(first_ms):
        raise fields.problem("has a load_ms or first_inference_ms that is negative or over an hour")
    wait = fields.raw("run_queue_wait")
    if wait is not None and not (is_number(wait) and 0 <= wait <= 1):
        raise fields.problem("has a run_queue_wait that is not a share from 0 to 1")
    processes = fields.raw("processes")
    if processes is not None and not (
        is_count(processes, 2, MAX_PROCESSES) and len(values) == processes
    ):
        raise fields.problem(
            f"has a processes count that is not a whole number from 2 to {MAX_PROCESSES}, one "
            "for each of its instance_values_ms"
        )
    memory = fields.raw("memory_kib")
    if memory is not None and not (
        isinstance(memory, dict)
        and set(memory) <= set(MEMORY_PHASES)
        and all(is_number(v) and abs(v) <= MAX_MEMORY_KIB for v in memory.values())
    ):
        raise fields.problem(
            f"has a memory_kib that is not {', '.join(MEMORY_PHASES)} in KiB (each a number "
            f"of at most {MAX_MEMORY_KIB:.0e})"
        )
    return BaselineEntry(
        metric=metric,
        instance_values_ms=tuple(float(v) for v in values if is_number(v)),
        summary_ms={k: float(v) for k, v in figures.items() if is_number(v)},
        load_ms=load_ms,
        first_inference_ms=first_ms,
        num_threads=num_threads,
        workers=workers,
        recorded=recorded,
        model_sha256=fields.optional_text("model_sha256"),
        model_path=fields.optional_text("model_path"),
        environment=fields.text_mapping("environment") or {},
        run_queue_wait=float(wait) if wait is not None else None,
        memory_kib={k: float(v) for k, v in memory.items()} if memory is not None else None,
        processes=int(processes) if processes is not None else 0,
        host_reference=_host_reading(fields),
    )


def _host_reading(fields: Fields) -> HostReading | None:
    reading = fields.optional_child("host_reference")
    if reading is None:
        return None
    kernel, values = reading.text("kernel"), reading.items("values_ms")
    if len(kernel) > 100 or not 2 <= len(values) <= MAX_PROCESSES:
        raise fields.problem(
            f"has a host_reference whose kernel is over 100 characters or whose values_ms are "
            f"not 2 to {MAX_PROCESSES}"
        )
    if not all(is_latency_ms(v) for v in values):
        raise fields.problem(f"has a host_reference value that is not {LATENCY_WORDS}")
    return HostReading(kernel, tuple(float(v) for v in values if is_number(v)))


@dataclass(frozen=True)
class Lookup:
    """The result of looking a test up: its entry in this profile's file, if any, and the
    other profiles that hold an entry for it (never compared, only named)."""

    path: Path
    entry: BaselineEntry | None
    other_profiles: tuple[str, ...]


class BaselineStore:
    """Every baseline file of one directory, read once and validated up front.

    ``source`` says where the directory was given (``--edgetpu-baseline-dir``, an ini key, the
    command line tool's ``--baseline-dir``), for the error when it is not a directory.
    """

    def __init__(self, directory: Path, source: str) -> None:
        self.directory = directory
        self.files: dict[str, BaselineFile] = {}
        if directory.exists() and not directory.is_dir():
            # Not "no baselines": a gate that quietly finds nothing would pass everything.
            raise BaselineError(
                f"{source}: the baseline directory {directory} is a file; give a directory"
            )
        if directory.is_dir():
            for path in sorted(directory.glob("*.json")):
                if path.name == STRUCTURE_FILE:  # the compile structures, not a profile's file
                    continue
                parsed = load_file(path)
                if parsed.profile.key != path.stem:
                    if (directory / f"{parsed.profile.key}.json").exists():
                        raise BaselineError(
                            f"{path} holds the baselines of profile {parsed.profile.key!r}, "
                            f"which {parsed.profile.key}.json beside it holds too; move the "
                            "entries you want into that file and delete this one"
                        )
                    raise BaselineError(
                        f"{path} holds the baselines of profile {parsed.profile.key!r}; "
                        f"rename it to {parsed.profile.key}.json (the name selects the profile)"
                    )
                self.files[path.stem] = parsed

    def path_for(self, profile: Profile) -> Path:
        return self.directory / f"{profile.key}.json"

    def lookup(self, test_id: str, profile: Profile) -> Lookup:
        """``test_id``'s entry in ``profile``'s file, and the other profiles that hold one,
        each named with what differs from ``profile`` (``link 'usb5000' vs 'usb480'``: the
        usual surprise is a stick that came up on USB 2)."""
        own = self.files.get(profile.key)
        others = tuple(
            _named(key, f.profile, profile)
            for key, f in self.files.items()
            if key != profile.key and test_id in f.entries
        )
        if own is not None and own.profile != profile:
            # Two profiles whose keys collide: the file belongs to the other one.
            others += (f"{profile.key} ({', '.join(own.profile.differences(profile))})",)
            own = None
        entry = own.entries.get(test_id) if own is not None else None
        return Lookup(self.path_for(profile), entry, others)


def _named(key: str, other: Profile, profile: Profile) -> str:
    """Another profile's key, and what sets it apart from ``profile``."""
    if other != profile and other.with_workers(1) == profile.with_workers(1):
        how = f"-n {other.workers}" if other.workers > 1 else "a serial run (no -n)"
        return f"{key} (recorded with {how})"
    differences = other.differences(profile)
    return f"{key} ({', '.join(differences)})" if differences else key


def write_entries(directory: Path, profile: Profile, entries: Mapping[str, BaselineEntry]) -> Path:
    """Merge ``entries`` into the profile's file under a lock and replace it atomically.

    The file is re-read under the lock, so concurrent writers each keep the other's entries;
    entries of tests not in ``entries`` are kept as they are.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BaselineError(f"cannot create the baseline directory {directory}: {exc}") from exc
    path = directory / f"{profile.key}.json"
    try:
        with locked(directory):
            merged: dict[str, BaselineEntry] = {}
            if path.exists():
                existing = load_file(path)
                if existing.profile != profile:
                    raise BaselineError(
                        f"{path} holds the profile {dict(existing.profile.fields)}, not "
                        f"{dict(profile.fields)}; move the file aside before recording"
                    )
                merged.update(existing.entries)
            merged.update(entries)
            write_atomic(path, dumps(profile, merged))
    except OSError as exc:
        raise BaselineError(f"cannot write {path}: {exc}; the previous file is unchanged") from exc
    return path


def prune_entries(path: Path, keep: Callable[[str], bool]) -> list[str]:
    """Remove the entries of the baseline file ``path`` whose test id ``keep`` rejects, under
    the lock and atomically like :func:`write_entries`; returns the removed test ids, sorted."""
    try:
        with locked(path.parent):
            existing = load_file(path)
            kept = {test_id: e for test_id, e in existing.entries.items() if keep(test_id)}
            if len(kept) < len(existing.entries):
                write_atomic(path, dumps(existing.profile, kept))
    except OSError as exc:
        raise BaselineError(f"cannot write {path}: {exc}; the previous file is unchanged") from exc
    return sorted(set(existing.entries) - set(kept))
