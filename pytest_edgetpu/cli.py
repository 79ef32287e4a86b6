"""The ``pytest-edgetpu`` command (also ``python -m pytest_edgetpu``).

Subcommands: ``devices`` (what is attached and which runtime would be used) and ``show``
(the baselines as a table). Exit codes: 0 success, 2 bad input.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .baselines import BaselineStore
from .devices import cpu_governor, cpu_model
from .discovery import discover
from .errors import EdgeTpuError
from .runtime import load_runtime

__all__ = ["main"]


def _devices(_: argparse.Namespace) -> int:
    found = discover()
    try:
        runtime = load_runtime().label
    except EdgeTpuError as error:
        runtime = f"none ({error})"
    print(f"runtime: {runtime}")
    print(f"libedgetpu: {found.libedgetpu or 'not loaded'}", end="")
    if found.libedgetpu_version:
        print(f" ({found.libedgetpu_version}, build {found.libedgetpu_build or 'unknown'})", end="")
    print()
    governor = cpu_governor()
    print(
        f"cpu: cpu:0 ({platform.machine()}, {cpu_model()}"
        + (f", governor {governor}" if governor else "")
        + ")"
    )
    if found.devices:
        rows = [
            {
                "device": tpu.device_string,
                "path": tpu.path,
                "link": tpu.link,
                "dfu": "yes" if tpu.dfu_mode else "",
                "temperature": f"{tpu.temperature_c:.1f} °C"
                if tpu.temperature_c is not None
                else "",
                "found by": tpu.source,
            }
            for tpu in found.devices
        ]
        print(pd.DataFrame(rows).to_string(index=False))
    else:
        print("Edge TPUs: none attached; --edgetpu-device=auto runs on the CPU (cpu:0)")
    for note in found.notes:
        print(f"note: {note}")
    return 0


def _show(args: argparse.Namespace) -> int:
    store = BaselineStore(Path(args.baseline_dir))
    rows = [
        {
            "test": test_id,
            "profile": key,
            "metric": entry.metric,
            "p50 ms": entry.summary_ms.get("p50"),
            "p90 ms": entry.summary_ms.get("p90"),
            "p99 ms": entry.summary_ms.get("p99"),
            "instances": len(entry.instance_values_ms),
            "recorded": entry.recorded[:10],
            "model sha256": (entry.model_sha256 or "")[:12],
        }
        for key, baseline in store.files.items()
        for test_id, entry in sorted(baseline.entries.items())
    ]
    if not rows:
        print(f"no baselines in {args.baseline_dir}")
        return 0
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-edgetpu", description="Latency baselines and devices of pytest-edgetpu."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    devices = commands.add_parser("devices", help="List attached Edge TPUs and the runtime")
    devices.set_defaults(handler=_devices)
    show = commands.add_parser("show", help="Show the baselines as a table")
    show.add_argument(
        "--baseline-dir",
        default="baselines",
        help="Directory of the baselines (default: baselines)",
    )
    show.set_defaults(handler=_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except EdgeTpuError as error:
        print(f"pytest-edgetpu: error: {error}", file=sys.stderr)
        return 2
    return status
