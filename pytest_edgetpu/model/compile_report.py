"""What edgetpu_compiler did to a model, read from the compiled file on any host.

Each ``edgetpu-custom-op`` node is one Edge TPU subgraph. Its custom options (a FlexBuffer map,
libedgetpu's ``tflite/custom_op_data.cc``) hold under key ``"4"`` the compiler's package: a
``DWN1`` flatbuffer (libedgetpu's ``executable/executable.fbs``: ``Package`` ->
``MultiExecutable`` -> ``Executable``) with the compiler version, the oldest runtime that can
run it, and one executable per role:

* ``PARAMETER_CACHING``: loads parameters into the Edge TPU's on-chip memory once; its
  ``parameters`` are what stays cached there (the compiler's "On-chip memory used for caching
  model parameters"). Models compiled together share its ``parameter_caching_token``.
* ``EXECUTION_ONLY``: runs the model with the cached parameters; its own ``parameters`` are
  those that did not fit, sent over USB or PCIe on every inference (the compiler's "Off-chip
  memory used for streaming uncached model parameters").
* ``STAND_ALONE``: runs without caching; all its parameters are streamed on every inference.

The node order of the graph says where the operators left to the CPU run: before, between or
after the Edge TPU subgraphs. Reading is bounded like the model's own
(:mod:`pytest_edgetpu.model.flatbuffer`); a damaged package is a
:class:`~pytest_edgetpu.model.flatbuffer.CorruptError` naming what was being read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ..core.jsonio import JsonObject
from . import flexbuffer
from .flatbuffer import I16, I32, I64, U32, U64, CorruptError, Reader, Table

__all__ = [
    "ROLES",
    "CompileReport",
    "Executable",
    "TpuSubgraph",
    "read_package",
    "read_report",
    "report_json",
]

#: ``ExecutableType`` of executable.fbs.
ROLES: Final = ("STAND_ALONE", "PARAMETER_CACHING", "EXECUTION_ONLY")
PACKAGE_IDENTIFIER: Final = b"DWN1"
#: The options' key of the package (custom_op_data.cc ``kKeyExecutable``).
_PACKAGE_KEY: Final = "4"
#: More executables than a package holds for a handful of chips means a damaged count.
_MAX_EXECUTABLES: Final = 64


@dataclass(frozen=True)
class Executable:
    """One executable of a package: its role, and what it keeps on chip or streams."""

    role: str  # one of ROLES
    parameter_bytes: int
    caching_token: int
    scratch_bytes: int
    narrow_memory_bytes_per_tile: int
    #: The compiler's estimate of the executable's cycles; 0 where it recorded none.
    estimated_cycles: int
    chip: str


@dataclass(frozen=True)
class TpuSubgraph:
    """One Edge TPU subgraph: the ``edgetpu-custom-op`` node at ``node`` and its package."""

    node: int
    compiler_version: str
    min_runtime_version: int
    executables: tuple[Executable, ...]

    @property
    def cached_bytes(self) -> int:
        """Parameters kept in the Edge TPU's on-chip memory once loaded."""
        return sum(e.parameter_bytes for e in self.executables if e.role == "PARAMETER_CACHING")

    @property
    def streamed_bytes(self) -> int:
        """Parameters sent to the Edge TPU on every inference."""
        return sum(e.parameter_bytes for e in self.executables if e.role != "PARAMETER_CACHING")

    @property
    def caching_token(self) -> int:
        """The token its parameter cache is shared under (0: none)."""
        return next((e.caching_token for e in self.executables if e.caching_token), 0)


@dataclass(frozen=True)
class CompileReport:
    """The Edge TPU subgraphs of a compiled model and the operators left to the CPU, with
    where each runs (``before``, ``between`` or ``after`` the Edge TPU subgraphs)."""

    subgraphs: tuple[TpuSubgraph, ...]
    cpu_ops: tuple[tuple[str, str], ...]  # (operator name, placement), in node order

    @property
    def cached_bytes(self) -> int:
        return sum(s.cached_bytes for s in self.subgraphs)

    @property
    def streamed_bytes(self) -> int:
        return sum(s.streamed_bytes for s in self.subgraphs)

    @property
    def compiler_versions(self) -> tuple[str, ...]:
        return tuple(sorted({s.compiler_version for s in self.subgraphs}))

    @property
    def min_runtime_version(self) -> int:
        """The oldest libedgetpu runtime version that can run every subgraph."""
        return max((s.min_runtime_version for s in self.subgraphs), default=0)

    @property
    def cpu_op_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(name for name, _ in self.cpu_ops).items()))

    @property
    def placements(self) -> dict[str, int]:
        """How many CPU operators run before, between and after the Edge TPU subgraphs."""
        counts = Counter(place for _, place in self.cpu_ops)
        return {place: counts[place] for place in ("before", "between", "after") if counts[place]}


def read_report(
    operators: Sequence[str], packages: Mapping[int, bytes], edgetpu_op: str
) -> CompileReport | None:
    """The compile report of a graph's ``operators`` (in node order), given each
    ``edgetpu_op`` node's custom options by node index; None for a plain model."""
    tpu_nodes = [i for i, name in enumerate(operators) if name == edgetpu_op]
    if not tpu_nodes:
        return None
    subgraphs = tuple(read_package(packages.get(node, b""), node) for node in tpu_nodes)
    first, last = tpu_nodes[0], tpu_nodes[-1]
    cpu_ops = tuple(
        (name, "before" if i < first else "after" if i > last else "between")
        for i, name in enumerate(operators)
        if name != edgetpu_op
    )
    return CompileReport(subgraphs, cpu_ops)


def read_package(options: bytes, node: int) -> TpuSubgraph:
    """The Edge TPU subgraph whose ``edgetpu-custom-op`` node (``node``) has ``options``."""
    what = f"the package of edgetpu-custom-op node #{node}"
    if not options:
        raise CorruptError(f"edgetpu-custom-op node #{node} has no custom options")
    value = flexbuffer.root(options).get(_PACKAGE_KEY, f"the options of node #{node}")
    if value is None:
        raise CorruptError(f"the options of edgetpu-custom-op node #{node} hold no package")
    data = value.as_bytes(what)
    if data[4:8] != PACKAGE_IDENTIFIER:
        raise CorruptError(f"{what} has no 'DWN1' identifier")
    package = _root(data, what)
    multi = _root(_bytes(package, 1, f"the executables of {what}"), f"the executables of {what}")
    start, count = multi.vector(0, 4, f"the executables of {what}")
    if not 0 < count <= _MAX_EXECUTABLES:
        raise CorruptError(f"{what} holds {count} executables")
    executables = tuple(
        _executable(_string_at(multi.reader, start + 4 * i, what), f"executable #{i} of {what}")
        for i in range(count)
    )
    return TpuSubgraph(
        node=node,
        compiler_version=package.string(4, f"the compiler version of {what}") or "",
        min_runtime_version=package.scalar(0, I32, 0),
        executables=executables,
    )


def _root(data: bytes, what: str) -> Table:
    reader = Reader(data, "package")
    return reader.table(reader.scalar(U32, 0, f"the root of {what}"), what)


def _bytes(table: Table, slot: int, what: str) -> bytes:
    start, length = table.vector(slot, 1, what)
    return table.reader.data[start : start + length]


def _string_at(reader: Reader, slot: int, what: str) -> bytes:
    """The bytes of the string a vector's element at ``slot`` points to."""
    start = slot + reader.scalar(U32, slot, what)
    length = reader.scalar(U32, start, what)
    reader.check(start + 4, length, what)
    return reader.data[start + 4 : start + 4 + length]


def _executable(data: bytes, what: str) -> Executable:
    table = _root(data, what)
    role = table.scalar(13, I16, 0)
    if not 0 <= role < len(ROLES):
        raise CorruptError(f"{what} has an unknown type {role}")
    cycles = table.scalar(16, I64, 0) or table.scalar(11, I32, 0)
    return Executable(
        role=ROLES[role],
        parameter_bytes=table.vector(6, 1, f"the parameters of {what}")[1],
        caching_token=table.scalar(14, U64, 0),
        scratch_bytes=max(table.scalar(4, I32, 0), 0),
        narrow_memory_bytes_per_tile=max(table.scalar(12, I32, 0), 0),
        estimated_cycles=max(cycles, 0),
        chip=table.string(10, f"the chip of {what}") or "",
    )


def report_json(report: CompileReport) -> JsonObject:
    """``report`` as JSON: the totals the gate compares, and each subgraph's executables."""
    return {
        "edgetpu_subgraphs": len(report.subgraphs),
        "cached_bytes": report.cached_bytes,
        "streamed_bytes": report.streamed_bytes,
        "compiler_versions": list(report.compiler_versions),
        "min_runtime_version": report.min_runtime_version,
        "cpu_ops": report.cpu_op_counts,
        "cpu_op_placement": report.placements,
        "subgraphs": [
            {
                "node": subgraph.node,
                "compiler_version": subgraph.compiler_version,
                "min_runtime_version": subgraph.min_runtime_version,
                "caching_token": f"{subgraph.caching_token:016x}",
                "cached_bytes": subgraph.cached_bytes,
                "streamed_bytes": subgraph.streamed_bytes,
                "executables": [
                    {
                        "role": e.role,
                        "parameter_bytes": e.parameter_bytes,
                        "scratch_bytes": e.scratch_bytes,
                        "narrow_memory_bytes_per_tile": e.narrow_memory_bytes_per_tile,
                        "estimated_cycles": e.estimated_cycles,
                        "chip": e.chip,
                    }
                    for e in subgraph.executables
                ],
            }
            for subgraph in report.subgraphs
        ],
    }
