"""The option table: every command-line option, ini key and marker argument, with its parser.

:data:`OPTIONS` and :data:`MARKER_ARGS` generate the command-line options, the ini keys, their
help texts and the marker's documentation line, so parser and help cannot drift apart. Every
parser takes ``where``, the source of the value (``--edgetpu-threshold``, ``ini
edgetpu_threshold in pytest.ini``, ``tpu_bench(threshold=...) on test_x``), and its error
starts with it. :mod:`pytest_edgetpu.config` resolves them, in order of precedence.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .core.errors import ConfigError
from .core.limits import (
    MAX_MAX_TIME_S,
    MAX_MEMORY_KIB,
    MAX_MIN_RUNS,
    MAX_NUM_THREADS,
    MAX_WARMUP,
    METRICS,
)
from .device.delegates import PERFORMANCE_LEVELS, parse_performance
from .device.selection import parse_delegate_options

__all__ = [
    "MARKER_ARGS",
    "MARKER_DOC",
    "OPTIONS",
    "OPTIONS_BY_NAME",
    "Option",
    "option_help",
    "parse_memory_slack",
    "parse_threshold",
]


def parse_threshold(raw: object, where: str) -> float:
    """``5%``, ``5`` or ``2.5 %`` → 0.05 / 0.025; a bare number below 1 is ambiguous."""
    text = str(raw).strip()
    match = re.fullmatch(r"([-+]?[0-9]*\.?[0-9]+)\s*(%?)", text)
    if isinstance(raw, bool) or match is None:
        raise ConfigError(
            f"{where}: threshold {raw!r} is not a percentage; write it like '5%' or 5"
        )
    number = float(match.group(1))
    if not 0 < number < 1000:
        raise ConfigError(f"{where}: threshold {raw!r} must be above 0% and below 1000%")
    if not match.group(2) and number < 1:
        raise ConfigError(
            f"{where}: threshold {raw!r} is ambiguous (a fraction or a percentage?); write "
            f"'{number * 100:g}%' for {number * 100:g} percent or '{number:g}%'"
        )
    return number / 100.0


def _parse_int(minimum: int, maximum: int, why: str) -> Callable[[object, str], int]:
    """A whole number within ``minimum..maximum``; ``why`` says why the maximum is there."""

    def parse(raw: object, where: str) -> int:
        text = str(raw).strip()
        # A length cap before int(): a million digits would cost seconds to convert.
        if len(text) > 40:
            raise ConfigError(f"{where}: a value of {len(text)} characters is out of range")
        if isinstance(raw, bool) or not re.fullmatch(r"[-+]?[0-9]+", text):
            raise ConfigError(f"{where}: {raw!r} is not a whole number")
        value = int(text)
        if value < minimum:
            raise ConfigError(f"{where}: {value} is below the smallest allowed value {minimum}")
        if value > maximum:
            raise ConfigError(
                f"{where}: {value} is above the largest allowed value {maximum} ({why})"
            )
        return value

    return parse


_parse_warmup = _parse_int(0, MAX_WARMUP, "warm-up beyond that only costs time")


_parse_min_runs = _parse_int(1, MAX_MIN_RUNS, "the measurement stops on max_time anyway")


parse_memory_slack = _parse_int(0, MAX_MEMORY_KIB, "a TiB: more than any host has")


_parse_num_threads = _parse_int(
    1, MAX_NUM_THREADS, "more threads than any host has cores; each one is a real thread"
)


def _parse_seconds(raw: object, where: str) -> float:
    text = str(raw).strip().removesuffix("s").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if isinstance(raw, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: {raw!r} is not a positive number of seconds (like 2 or 0.5)")
    if value > MAX_MAX_TIME_S:
        raise ConfigError(
            f"{where}: {raw!r} is above the largest allowed value {MAX_MAX_TIME_S:g} s (an hour "
            "per measurement)"
        )
    return value


def _parse_metric(raw: object, where: str) -> str:
    if raw not in METRICS:
        raise ConfigError(f"{where}: unknown metric {raw!r}; use one of {', '.join(METRICS)}")
    return str(raw)


def _parse_bool(raw: object, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{where}: {raw!r} is not a boolean (true or false)")


#: Where a CPU benchmark is measured against stored baselines (``--edgetpu-processes``).
PROCESS_PLACES: Final = ("fresh", "one")


def _parse_processes(raw: object, where: str) -> str:
    text = str(raw).strip().lower()
    if text not in PROCESS_PLACES:
        raise ConfigError(
            f"{where}: unknown value {raw!r}; use fresh (4 to 8 fresh processes, the default) "
            "or one (this pytest process only)"
        )
    return text


def _parse_text(raw: object, where: str) -> str:
    if not isinstance(raw, (str, os.PathLike)) or not str(raw).strip():
        raise ConfigError(f"{where}: expected a non-empty path or string, got {raw!r}")
    if "\0" in str(raw):
        raise ConfigError(f"{where}: {str(raw)!r} holds a NUL byte, which no path can")
    return str(raw).strip()


def _parse_revision(raw: object, where: str) -> str:
    text = _parse_text(raw, where)
    if text.startswith("-") or not text.isprintable() or len(text) > 256:
        raise ConfigError(
            f"{where}: {text!r} is not a git revision; give one like origin/main, HEAD~1, a tag "
            "or a commit hash"
        )
    return text


@dataclass(frozen=True)
class Option:
    """One setting that has a command-line option (unless ``cli`` is False) and an ini key."""

    name: str  # "device" → --edgetpu-device and ini edgetpu_device
    help: str
    metavar: str | None  # None: a flag
    default: object
    parse: Callable[[object, str], Any]
    cli: bool = True

    @property
    def flag(self) -> str:
        return "--edgetpu" + (f"-{self.name.replace('_', '-')}" if self.name else "")

    @property
    def ini(self) -> str:
        return "edgetpu" + (f"_{self.name}" if self.name else "")


OPTIONS: Final = (
    Option("", "Run latency benchmarks and gate them against baselines", None, False, _parse_bool),
    Option(
        "device",
        "Devices to run on: auto (every Edge TPU found, else the CPU), cpu (XNNPACK on, "
        "LiteRT's default), cpu-builtin (XNNPACK off), usb, pci, litert-cpu, litert-gpu, "
        "litert-npu (LiteRT CompiledModel accelerators), the :N forms (usb:N, pci:N, cpu:N, "
        "cpu-builtin:N, litert-cpu:N, :N), delegate:PATH (a TFLite external delegate "
        "library), or a comma list (default: auto)",
        "SPEC",
        "auto",
        _parse_text,
    ),
    Option(
        "delegate_options",
        "Options of the delegate:PATH library, as benchmark_model's "
        "--external_delegate_options: key:value;key:value; part of the baseline's device "
        "profile",
        "OPTS",
        None,
        parse_delegate_options,
    ),
    Option(
        "fully_delegated",
        "Fail a benchmark whose model is not fully delegated (ops left on the CPU), naming "
        "those ops; marker argument fully_delegated=True asks it of one test",
        None,
        False,
        _parse_bool,
    ),
    Option(
        "baseline_dir",
        "Directory of the baseline files (default: baselines under the rootdir)",
        "DIR",
        "baselines",
        _parse_text,
    ),
    Option(
        "update_baselines",
        "Write baselines from this run instead of gating against them",
        None,
        False,
        _parse_bool,
    ),
    Option(
        "accept_unstable",
        "With --edgetpu-update-baselines, also record measurements that are UNSTABLE against "
        "the old baseline or BUSY (taken on a contended host); by default the old entry is kept",
        None,
        False,
        _parse_bool,
    ),
    Option(
        "processes",
        "Where a CPU benchmark is recorded and gated against stored baselines: fresh (default: "
        "4 to 8 fresh helper processes that run its test, so that the verdict holds how its "
        "speed moves between processes) or one (this pytest process only: faster, but a figure "
        "from another process can differ by several percent, by far more for microsecond "
        "work); relative mode is not affected",
        "WHERE",
        "fresh",
        _parse_processes,
    ),
    Option(
        "prune_baselines",
        "With --edgetpu-update-baselines, also remove from each baseline file written the "
        "entries of tests that did not run (deleted, renamed, deselected or skipped)",
        None,
        False,
        _parse_bool,
    ),
    Option(
        "threshold",
        "Smallest slowdown that counts as a regression, as a percentage (default: 5%); "
        "measured slowdowns count from four fifths of it, so that one of this size is caught",
        "PCT",
        "5%",
        parse_threshold,
    ),
    Option(
        "memory_threshold",
        "Smallest growth of a model's private memory, in any phase, that fails its test, as a "
        "percentage of the baseline's figure (default: 10%); it must also exceed "
        "--edgetpu-memory-slack",
        "PCT",
        "10%",
        parse_threshold,
    ),
    Option(
        "memory_slack",
        "Growth of a memory figure, in KiB, that never fails a test whatever its percentage "
        "(default: 512: private figures move by a few pages, and by tens of KiB when anything "
        "else in the process changes)",
        "KIB",
        512,
        parse_memory_slack,
    ),
    Option(
        "against",
        "Relative mode: gate every benchmark against the same benchmark at git revision REV "
        "(a branch, tag or commit; HEAD with uncommitted changes: the last commit), measured "
        "now on the same device in interleaved pairs; needs no stored baseline",
        "REV",
        None,
        _parse_revision,
    ),
    Option(
        "bisect",
        "With --edgetpu-against, exit as git bisect run reads it: 0 when no benchmark regressed, "
        "1 on a confirmed regression, 125 (cannot test this commit) when a benchmark was not "
        "decided or not compared, or the run failed for another reason",
        None,
        False,
        _parse_bool,
    ),
    Option("json", "Write machine-readable results of the run to PATH", "PATH", None, _parse_text),
    Option("report", "Write a Markdown report of the run to PATH", "PATH", None, _parse_text),
    Option(
        "plot",
        "Write a PNG per benchmark to DIR: its latency against the baseline's (needs matplotlib)",
        "DIR",
        None,
        _parse_text,
    ),
    Option(
        "strict",
        "Fail tests whose baseline is missing or incomparable or whose measurement is unstable",
        None,
        False,
        _parse_bool,
    ),
    Option(
        "performance",
        f"Edge TPU clock (libedgetpu's Performance option): {', '.join(PERFORMANCE_LEVELS)} "
        "(default: unset, libedgetpu's own); part of the baseline's device profile",
        "LEVEL",
        None,
        parse_performance,
    ),
    Option(
        "metric",
        f"Default metric gated on: {', '.join(METRICS)} (default: p50)",
        None,
        "p50",
        _parse_metric,
        cli=False,
    ),
    Option(
        "warmup",
        f"Default warm-up invokes per interpreter instance, 0..{MAX_WARMUP} (default: 3)",
        None,
        3,
        _parse_warmup,
        cli=False,
    ),
    Option(
        "min_runs",
        f"Default minimum number of timed invokes per measurement, 1..{MAX_MIN_RUNS} "
        "(default: 100)",
        None,
        100,
        _parse_min_runs,
        cli=False,
    ),
    Option(
        "max_time",
        "Default time budget in seconds of one measurement's steady state, at most "
        f"{MAX_MAX_TIME_S:g}; a gate stops sooner once its verdict is settled (default: 1.5)",
        None,
        1.5,
        _parse_seconds,
        cli=False,
    ),
    Option(
        "num_threads",
        f"Default CPU threads of the interpreter, 1..{MAX_NUM_THREADS} (default: 1)",
        None,
        1,
        _parse_num_threads,
        cli=False,
    ),
)


OPTIONS_BY_NAME: Final = {o.name: o for o in OPTIONS}


def option_help(name: str) -> str:
    """The help text of the option ``name`` (``"threshold"``), for other front ends."""
    return OPTIONS_BY_NAME[name].help


#: Marker arguments and how each is parsed; ``model`` may also be given positionally.
MARKER_ARGS: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "model": _parse_text,
    "threshold": parse_threshold,
    "metric": _parse_metric,
    "warmup": _parse_warmup,
    "min_runs": _parse_min_runs,
    "max_time": _parse_seconds,
    "num_threads": _parse_num_threads,
    "fully_delegated": _parse_bool,
}


#: How the marker's signature shows each argument's default (None: the session's setting).
_MARKER_DEFAULTS_SHOWN: Final = {"metric": "'p50'"}


MARKER_DOC: Final = (
    "tpu_bench(model=None, *, "
    + ", ".join(
        f"{name}={_MARKER_DEFAULTS_SHOWN.get(name, 'None')}"
        for name in MARKER_ARGS
        if name != "model"
    )
    + "): benchmark this test's model or callable on the Edge TPU (or CPU) and gate its "
    "latency against the stored baseline"
)
