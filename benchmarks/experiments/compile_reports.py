"""Does the compile report read every real compiled model, and do its figures agree with what
is known of them? (issue 30)

Reads every ``*_edgetpu.tflite`` under the folders given (the shared Coral and compiled models,
and the compiled models of a google-coral/test_data snapshot, fetched by whoever runs this,
never committed) and prints one row per model: Edge TPU subgraphs, parameters cached on chip
and streamed per inference, operators left on the CPU, minimum runtime version. A file that
does not read is a row with its one-line error; the exit status counts them.

    python benchmarks/experiments/compile_reports.py ../shared/models/coral \\
        ../shared/models/edgetpu-compiled path/to/test_data
"""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_edgetpu.core.errors import ModelError
from pytest_edgetpu.judge.verdict import format_bytes
from pytest_edgetpu.model.inspection import inspect_model
from pytest_edgetpu.report.table import text_table


def main(folders: list[str]) -> int:
    rows: list[dict[str, object]] = []
    failed = 0
    for path in sorted(p for folder in folders for p in Path(folder).rglob("*_edgetpu.tflite")):
        try:
            report = inspect_model(path).compiled
        except ModelError as error:
            failed += 1
            rows.append({"model": path.name, "error": str(error)})
            continue
        if report is None:
            rows.append({"model": path.name, "error": "no edgetpu-custom-op node"})
            continue
        rows.append(
            {
                "model": path.name,
                "subgraphs": len(report.subgraphs),
                "cached": format_bytes(report.cached_bytes),
                "streamed": format_bytes(report.streamed_bytes),
                "cpu ops": len(report.cpu_ops),
                "min runtime": report.min_runtime_version,
                "error": "",
            }
        )
    print(text_table(rows))
    print(f"{len(rows)} compiled models, {failed} not read")
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
