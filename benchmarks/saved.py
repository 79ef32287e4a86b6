"""What every benchmark script does with its result: stamp it, print it, save it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_edgetpu.device.selection import cpu_model

ROOT = Path(__file__).resolve().parent.parent


def _from_root(argument: str) -> str:
    """``argument``, relative to the repository when it is a path inside it (a script run from
    elsewhere by its full path), so that the command reproduces from a checkout anywhere."""
    path = Path(argument)
    if path.is_absolute() and path.resolve().is_relative_to(ROOT):
        return path.resolve().relative_to(ROOT).as_posix()
    return argument


def stamped(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` after the date, the command that produced them (write_results.py shows
    the command as the way to reproduce the file) and the CPU they were measured on."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(_from_root(argument) for argument in sys.argv),
        "cpu_model": cpu_model(),
        **fields,
    }


def save(fields: dict[str, Any], out: Path | None) -> None:
    """Print the stamped result as JSON and write it to ``out`` when given."""
    text = json.dumps(stamped(fields), indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")


def measure_or_report(
    doc: str,
    count: str,
    default: int,
    measure: Callable[[int], dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
) -> None:
    """The command line of a script that measures ``--COUNT`` repetitions into ``--out``, or
    prints the table of a saved file with ``--report``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(f"--{count}", type=int, default=default)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path, help="print the table of a saved results file")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return
    save(measure(getattr(args, count)), args.out)
