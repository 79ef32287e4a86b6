"""``pytest-edgetpu inspect``: what a model file holds, in edgetpu_compiler's own terms.

For a compiled model, the compiler's summary (the parameters cached on chip and those streamed
on every inference, the Edge TPU subgraphs, the operators left to the CPU and where they run)
and each subgraph's executables; for a plain model, its operators, weights and tensors.
Renders; never decides.
"""

from __future__ import annotations

from collections import Counter

from ..core.errors import one_line
from ..core.jsonio import JsonObject
from ..judge.verdict import format_bytes
from ..model.compile_report import report_json
from ..model.inspection import ModelInfo

__all__ = ["inspection_json", "inspection_lines"]


def _counts(names: list[str] | tuple[str, ...]) -> str:
    counted = Counter(names).most_common()
    return ", ".join(f"{name} {n}" for name, n in counted) or "none"


def inspection_lines(info: ModelInfo, shown_path: str) -> list[str]:
    """The report of one model, a line each (indented under the first)."""
    head = f"{one_line(shown_path)} (sha256 {info.sha256[:12]}, {format_bytes(info.size_bytes)})"
    report = info.compiled
    if report is None:
        return [
            f"{head}: not compiled for the Edge TPU",
            f"  operators: {len(info.operators)} ({_counts(info.operators)})",
            f"  parameters: {format_bytes(info.parameter_bytes)} in constant buffers; "
            f"tensors: {info.tensors}",
        ]
    versions = ", ".join(report.compiler_versions) or "unknown"
    lines = [
        f"{head}: compiled for the Edge TPU (compiler {versions}; needs runtime version "
        f"{report.min_runtime_version} or newer)",
        f"  On-chip memory used for caching model parameters: {format_bytes(report.cached_bytes)}",
        "  Off-chip memory used for streaming uncached model parameters: "
        f"{format_bytes(report.streamed_bytes)}",
        f"  Number of Edge TPU subgraphs: {len(report.subgraphs)}",
        f"  Operations left on the CPU: {len(report.cpu_ops)}"
        + (f" ({_counts([name for name, _ in report.cpu_ops])})" if report.cpu_ops else ""),
    ]
    if report.placements:
        where = ", ".join(f"{n} {place}" for place, n in report.placements.items())
        lines.append(f"  CPU operations run {where} the Edge TPU subgraphs")
    for number, subgraph in enumerate(report.subgraphs, start=1):
        parts = [
            f"{e.role} {format_bytes(e.parameter_bytes)}"
            + (f", {e.estimated_cycles} cycles (estimated)" if e.estimated_cycles else "")
            for e in subgraph.executables
        ]
        lines.append(
            f"  subgraph {number} (node #{subgraph.node}): {'; '.join(parts)}; caching token "
            f"{subgraph.caching_token:016x}"
        )
    return lines


def inspection_json(info: ModelInfo, shown_path: str) -> JsonObject:
    """One model's report as JSON (``pytest-edgetpu inspect --json``)."""
    return {
        "path": shown_path,
        "sha256": info.sha256,
        "size_bytes": info.size_bytes,
        "operators": dict(sorted(Counter(info.operators).items())),
        "tensors": info.tensors,
        "parameter_bytes": info.parameter_bytes,
        "compiled": report_json(info.compiled) if info.compiled is not None else None,
    }
