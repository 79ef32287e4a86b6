"""A judged test's verdict and figures, and an Edge TPU model's compile structure, as
``--junitxml`` properties."""

from __future__ import annotations

from ..core.keys import call_of
from ..core.stats import instance_figure
from ..engine.against import NotCompared
from ..judge.results import TimedResult
from ..judge.structure import StructureVerdict

__all__ = ["junit_properties", "structure_properties"]


def junit_properties(result: TimedResult) -> list[tuple[str, str]]:
    """A judged test's verdict and key figures as ``--junitxml`` properties.

    Times in milliseconds (four significant digits); the change and its confidence bounds as
    fractions (``+0.1234`` is 12.34% slower) of the gated metric, per instance."""
    verdict, metric = result.verdict, result.metric
    figures = ["p50", "p90", "p99"] + ([metric] if metric not in ("p50", "p90", "p99") else [])
    properties = [
        ("verdict", verdict.status.value),
        ("metric", metric),
        ("device", result.device),
    ]
    properties += [(f"{name}_ms", f"{result.summary.value(name):.4g}") for name in figures]
    if verdict.baseline_ms is not None:
        properties.append((f"baseline_{metric}_ms", f"{verdict.baseline_ms:.4g}"))
    if verdict.compared_baseline_ms is not None and verdict.compared_current_ms is not None:
        properties += [
            ("compared_figure", instance_figure(metric)),
            ("compared_baseline_ms", f"{verdict.compared_baseline_ms:.4g}"),
            ("compared_ms", f"{verdict.compared_current_ms:.4g}"),
        ]
    if verdict.change is not None:
        properties += [
            ("change", f"{verdict.change.estimate:+.4f}"),
            ("change_ci_low", f"{verdict.change.low:+.4f}"),
            ("change_ci_high", f"{verdict.change.high:+.4f}"),
        ]
    properties.append(("confirmed", "true" if verdict.confirmed else "false"))
    against = result.against
    if isinstance(against, NotCompared):
        properties += [("against", against.revision), ("against_pairs", "0")]
    elif against is not None:
        properties += [("against", against.revision), ("against_pairs", str(against.pairs))]
        properties += [
            (f"against_{name}_ms", f"{against.summary.value(name):.4g}") for name in figures
        ]
    if result.memory is not None:
        properties += [
            (f"memory_{phase}_kib", f"{kib:.0f}") for phase, kib in result.memory.kib.items()
        ]
    if result.memory_verdict is not None:
        memory_failed = result.memory_verdict.failed
        properties.append(("memory_verdict", "REGRESSION" if memory_failed else "PASS"))
    if result.delegations:
        fully = all(d.fully_delegated for d in result.delegations)
        properties.append(("fully_delegated", "true" if fully else "false"))
    # A test's second tpu_bench call gets edgetpu_2_p50_ms, ...: property names stay unique
    # within the test's testcase.
    call = call_of(result.test_id)
    prefix = f"edgetpu_{call}_" if call > 1 else "edgetpu_"
    return [(prefix + name, value) for name, value in properties]


def structure_properties(verdict: StructureVerdict) -> list[tuple[str, str]]:
    """An Edge TPU model's compile structure verdict as ``--junitxml`` properties."""
    structure = verdict.current
    return [
        ("edgetpu_compile_verdict", verdict.status.value),
        ("edgetpu_compile_model", verdict.model),
        ("edgetpu_compile_subgraphs", str(structure.edgetpu_subgraphs)),
        ("edgetpu_compile_cached_bytes", str(structure.cached_bytes)),
        ("edgetpu_compile_streamed_bytes", str(structure.streamed_bytes)),
        ("edgetpu_compile_cpu_ops", str(sum(structure.cpu_ops.values()))),
    ]
