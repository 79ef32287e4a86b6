"""The Edge TPU compile structure gate: what edgetpu_compiler did to a model, compared with
zero noise on any host.

The structure is a property of the file, not of the host: where it is stored
(``baselines/edgetpu-compile.json``, one entry per model path, beside the device profiles'
files) it compares on any runner whatever its CPU, and in relative mode the file at the
revision gives the other side. What makes Edge TPU inference slower fails by default:
parameters newly streamed over USB or PCIe on every inference (or more of them), operators
moved to the CPU, more Edge TPU subgraphs (each a CPU<->TPU hand-off). A new compiler, a
change of the on-chip cached bytes, or improvements are named; a raised minimum runtime
version is named, and fails with ``--edgetpu-strict`` (it breaks devices in the field).
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

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
from .baselines import STRUCTURE_FILE
from .verdict import Status, format_bytes

if TYPE_CHECKING:
    from ..model.compile_report import CompileReport
    from ..model.inspection import ModelInfo

__all__ = [
    "Structure",
    "StructureStore",
    "StructureVerdict",
    "judge_structure",
    "parse_structures",
    "structure_of",
]

STRUCTURE_FORMAT: Final = "pytest-edgetpu-compile"
#: Schema history: 1: the first.
STRUCTURE_SCHEMA_VERSION: Final = 1
_FIX: Final = "restore it from git, or record it again with --edgetpu-update-baselines"


@dataclass(frozen=True)
class Structure:
    """What the gate compares of a model: its Edge TPU subgraphs, the parameters cached on
    chip and streamed per inference, the operators left on the CPU, the compiler and the
    oldest runtime that can run it."""

    edgetpu_subgraphs: int
    cached_bytes: int
    streamed_bytes: int
    cpu_ops: Mapping[str, int]
    compiler_versions: tuple[str, ...]
    min_runtime_version: int

    @property
    def words(self) -> str:
        """``1 Edge TPU subgraph, 308.44 KiB cached, 245.19 KiB streamed, 0 ops on the CPU``."""
        cpu = sum(self.cpu_ops.values())
        return (
            f"{self.edgetpu_subgraphs} Edge TPU subgraph(s), {format_bytes(self.cached_bytes)} "
            f"cached, {format_bytes(self.streamed_bytes)} streamed per inference, {cpu} op(s) "
            "on the CPU"
        )

    def to_json(self) -> JsonObject:
        return {
            "edgetpu_subgraphs": self.edgetpu_subgraphs,
            "cached_bytes": self.cached_bytes,
            "streamed_bytes": self.streamed_bytes,
            "cpu_ops": dict(sorted(self.cpu_ops.items())),
            "compiler_versions": list(self.compiler_versions),
            "min_runtime_version": self.min_runtime_version,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> Structure:
        ops = fields.child("cpu_ops")
        return cls(
            edgetpu_subgraphs=fields.count("edgetpu_subgraphs", 0, 10**6, "a count"),
            cached_bytes=fields.count("cached_bytes", 0, 2**40, "a byte count"),
            streamed_bytes=fields.count("streamed_bytes", 0, 2**40, "a byte count"),
            cpu_ops={name: ops.count(name, 0, 10**7, "a count") for name in ops.names()},
            compiler_versions=fields.texts("compiler_versions"),
            min_runtime_version=fields.count("min_runtime_version", 0, 10**6, "a version"),
        )


def structure_of(info: ModelInfo) -> Structure:
    """The structure of a model: a plain one has no Edge TPU subgraph, every op on the CPU."""
    report: CompileReport | None = info.compiled
    if report is None:
        return Structure(0, 0, 0, dict(Counter(info.operators)), (), 0)
    return Structure(
        edgetpu_subgraphs=len(report.subgraphs),
        cached_bytes=report.cached_bytes,
        streamed_bytes=report.streamed_bytes,
        cpu_ops=report.cpu_op_counts,
        compiler_versions=report.compiler_versions,
        min_runtime_version=report.min_runtime_version,
    )


@dataclass(frozen=True)
class StructureVerdict:
    """The compile structure of ``model`` judged against ``against`` (a baseline file, or the
    file at a revision): what got worse (``findings``) and what else changed (``notes``)."""

    status: Status
    model: str
    against: str
    current: Structure
    findings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    runtime_raised: bool = False
    #: Why the model's latency was not measured ("" where it was): no Edge TPU attached.
    unmeasured: str = ""

    def fails(self, strict: bool) -> bool:
        if self.status is Status.REGRESSION:
            return True
        return strict and (self.status is Status.NO_BASELINE or self.runtime_raised)

    @property
    def message(self) -> str:
        head = f"EDGETPU COMPILE {self.status.value} {self.model}: "
        latency = f"; latency not measured: {self.unmeasured}" if self.unmeasured else ""
        if self.status is Status.NO_BASELINE:
            return (
                f"{head}{self.current.words}; nothing to compare with in {self.against}; record "
                f"it with --edgetpu-update-baselines{latency}"
            )
        said = "; ".join(self.findings + self.notes) or f"{self.current.words}, unchanged"
        return f"{head}{said}; against {self.against}{latency}"

    def to_json(self) -> JsonObject:
        return {
            "status": self.status.value,
            "model": self.model,
            "against": self.against,
            "structure": self.current.to_json(),
            "findings": list(self.findings),
            "notes": list(self.notes),
            "runtime_raised": self.runtime_raised,
            "unmeasured": self.unmeasured,
            "message": self.message,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> StructureVerdict:
        status = fields.text("status")
        if status not in Status.__members__:
            raise fields.wrong("status")
        return cls(
            status=Status(status),
            model=fields.text("model"),
            against=fields.text("against"),
            current=Structure.from_fields(fields.child("structure")),
            findings=fields.texts("findings"),
            notes=fields.texts("notes"),
            runtime_raised=fields.flag("runtime_raised"),
            unmeasured=fields.text("unmeasured"),
        )


def judge_structure(
    current: Structure, base: Structure | None, model: str, against: str
) -> StructureVerdict:
    """``current`` against ``base`` (None: nothing recorded, or new since the revision)."""
    if base is None:
        return StructureVerdict(Status.NO_BASELINE, model, against, current)
    findings, better, notes = [], [], []
    if current.streamed_bytes > base.streamed_bytes:
        findings.append(
            f"off-chip parameter streaming {format_bytes(base.streamed_bytes)} -> "
            f"{format_bytes(current.streamed_bytes)} per inference"
        )
    elif current.streamed_bytes < base.streamed_bytes:
        better.append(
            f"off-chip parameter streaming {format_bytes(base.streamed_bytes)} -> "
            f"{format_bytes(current.streamed_bytes)} per inference"
        )
    moved = Counter(current.cpu_ops) - Counter(base.cpu_ops)
    back = Counter(base.cpu_ops) - Counter(current.cpu_ops)
    if moved:
        names = ", ".join(sorted(moved))
        findings.append(f"{sum(moved.values())} op(s) moved to the CPU ({names})")
    if back:
        names = ", ".join(sorted(back))
        better.append(f"{sum(back.values())} op(s) no longer on the CPU ({names})")
    subgraphs = f"Edge TPU subgraphs {base.edgetpu_subgraphs} -> {current.edgetpu_subgraphs}"
    if current.edgetpu_subgraphs > base.edgetpu_subgraphs:
        findings.append(subgraphs)
    elif current.edgetpu_subgraphs < base.edgetpu_subgraphs:
        (findings if current.edgetpu_subgraphs == 0 else better).append(subgraphs)
    if current.cached_bytes != base.cached_bytes:
        notes.append(
            f"on-chip cached parameters {format_bytes(base.cached_bytes)} -> "
            f"{format_bytes(current.cached_bytes)}"
        )
    if current.compiler_versions != base.compiler_versions:
        notes.append(
            f"compiler {', '.join(base.compiler_versions) or 'none'} -> "
            f"{', '.join(current.compiler_versions) or 'none'}"
        )
    raised = current.min_runtime_version > base.min_runtime_version
    if raised:
        notes.append(
            f"minimum runtime version {base.min_runtime_version} -> "
            f"{current.min_runtime_version} (an older libedgetpu cannot run it)"
        )
    status = Status.REGRESSION if findings else Status.IMPROVED if better else Status.PASS
    return StructureVerdict(
        status, model, against, current, tuple(findings), tuple(better + notes), raised
    )


class StructureStore:
    """``edgetpu-compile.json`` of a baseline directory: each model path's structure."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STRUCTURE_FILE
        self.entries: dict[str, Structure] = {}
        try:
            text = read_regular(self.path, MAX_BYTES).decode("utf-8")
        except (FileNotFoundError, NotADirectoryError):  # none recorded; no directory yet
            return
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise BaselineError(f"{self.path} cannot be read ({exc}); {_FIX}") from None
        self.entries = parse_structures(text, self.path)

    def write(self, structures: Mapping[str, Structure]) -> Path:
        """Merge ``structures`` into the file under the directory's lock, atomically."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with locked(self.path.parent):
                merged = {**StructureStore(self.path.parent).entries, **structures}
                document = {
                    "format": STRUCTURE_FORMAT,
                    "schema_version": STRUCTURE_SCHEMA_VERSION,
                    "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(
                        timespec="seconds"
                    ),
                    "models": {name: merged[name].to_json() for name in sorted(merged)},
                }
                write_atomic(self.path, json.dumps(document, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            raise BaselineError(
                f"cannot write {self.path}: {exc}; the previous file is unchanged"
            ) from exc
        return self.path


def parse_structures(text: str, source: object) -> dict[str, Structure]:
    """The structures an ``edgetpu-compile.json`` text holds, by model path; any problem is a
    BaselineError naming ``source``."""
    document = loads_document(
        text,
        source,
        kind=STRUCTURE_FORMAT,
        what="compile structure",
        newest=STRUCTURE_SCHEMA_VERSION,
        foreign_fix=f"move it aside: {STRUCTURE_FILE} is the plugin's file of structures",
        damaged_fix=_FIX,
        error=BaselineError,
    )
    models = Fields(document, str(source), fix=_FIX, error=BaselineError).child("models")
    return {name: Structure.from_fields(models.child(name)) for name in models.names()}
