"""Settings: every option, ini key and marker argument, parsed and validated in one place.

Precedence, for every value: marker argument > command-line option > ini key > default. Each
resolved value remembers where it came from, so an error names that source (``--edgetpu-
threshold``, ``ini edgetpu_threshold``, ``tpu_bench(threshold=...) on test_x``).

The option table :data:`OPTIONS` and the marker table :data:`MARKER_ARGS` generate the
command-line options, the ini keys, their help texts and the marker's documentation line, so
parser and help cannot drift apart. No pytest import: :mod:`pytest_edgetpu.plugin` feeds this
module plain values.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from .core.errors import ConfigError
from .core.limits import (
    MAX_MAX_TIME_S,
    MAX_MEMORY_KIB,
    MAX_MIN_RUNS,
    MAX_NUM_THREADS,
    MAX_WARMUP,
    METRICS,
)
from .device.selection import (
    PERFORMANCE_LEVELS,
    DeviceRequest,
    parse_delegate_options,
    parse_device_spec,
    parse_performance,
)
from .engine.memory import MemoryPolicy
from .engine.timing import MeasureSettings

__all__ = [
    "MARKER_ARGS",
    "MARKER_DOC",
    "OPTIONS",
    "Option",
    "SessionSettings",
    "Sourced",
    "TestSettings",
    "option_help",
    "parse_memory_slack",
    "parse_threshold",
    "session_settings",
    "test_settings",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A resolved value and the words naming where it came from, ready to start an error:
    ``--edgetpu-threshold``, ``ini edgetpu_threshold in tox.ini``, ``--edgetpu-threshold
    (default)``, ``tpu_bench(threshold=...) on test_x``."""

    value: T
    source: str


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
        "Smallest growth of a model's memory, in any phase, that fails its test, as a "
        "percentage of the baseline's figure (default: 10%); it must also exceed "
        "--edgetpu-memory-slack",
        "PCT",
        "10%",
        parse_threshold,
    ),
    Option(
        "memory_slack",
        "Growth of a memory figure, in KiB, that never fails a test whatever its percentage "
        "(default: 512: the interpreter's Python objects make resident figures move by a few "
        "hundred KiB when anything else in the process changes)",
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

_BY_NAME: Final = {o.name: o for o in OPTIONS}


def option_help(name: str) -> str:
    """The help text of the option ``name`` (``"threshold"``), for other front ends."""
    return _BY_NAME[name].help


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


def _resolve(
    name: str, cli: Mapping[str, object], ini: Mapping[str, object], ini_where: str
) -> Sourced[Any]:
    option = _BY_NAME[name]
    if option.cli and cli.get(name) is not None:
        where = option.flag
        return Sourced(option.parse(cli[name], where), where)
    raw_ini = ini.get(name)
    if raw_ini not in (None, ""):
        where = f"ini {option.ini} in {ini_where}"
        return Sourced(option.parse(raw_ini, where), where)
    where = f"{option.flag if option.cli else 'ini ' + option.ini} (default)"
    return Sourced(None if option.default is None else option.parse(option.default, where), where)


@dataclass(frozen=True)
class SessionSettings:
    """Everything the run as a whole was told, each value with its source."""

    enabled: bool
    devices: tuple[DeviceRequest, ...]
    baseline_dir: Path
    update: bool
    json_path: Path | None
    report_path: Path | None
    strict: bool
    plot_dir: Path | None
    accept_unstable: bool
    test_defaults: Mapping[str, Sourced[Any]]  # threshold, metric, warmup, ...
    performance: str | None = None  # libedgetpu's "Performance" delegate option; None: unset
    #: The ``delegate:PATH`` library's options (``--edgetpu-delegate-options``), in order.
    delegate_options: tuple[tuple[str, str], ...] = ()
    memory_policy: MemoryPolicy = field(default_factory=MemoryPolicy)
    prune: bool = False
    #: Relative mode's git revision (``--edgetpu-against``); None: gate against stored baselines.
    against: str | None = None
    #: Where each setting came from, by option name (``device``, ``baseline_dir``, ...): the
    #: words its errors start with (:class:`Sourced`).
    sources: Mapping[str, str] = field(default_factory=dict)


def session_settings(
    cli: Mapping[str, object], ini: Mapping[str, object], rootdir: Path, ini_where: str
) -> SessionSettings:
    """Resolve the run's settings from parsed CLI values and raw ini values, keyed by the
    option name without prefix (``""`` for ``--edgetpu`` itself)."""

    resolved = {option.name: _resolve(option.name, cli, ini, ini_where) for option in OPTIONS}

    def value(name: str) -> Any:
        return resolved[name].value

    def path(name: str) -> Path | None:
        raw = value(name)
        if raw is None:
            return None
        try:
            return rootdir / Path(raw).expanduser()
        except RuntimeError:  # "~name" of a user this system does not know
            raise ConfigError(
                f"{resolved[name].source}: cannot expand {raw!r}: there is "
                "no home directory for that user; write the path out"
            ) from None

    device = resolved["device"]
    update = bool(value("update_baselines"))
    prune, accept_unstable = resolved["prune_baselines"], resolved["accept_unstable"]
    for setting, what in (
        (prune, "pruning removes entries"),
        (accept_unstable, "accepting unstable measurements applies"),
    ):
        # Both only act while baselines are written; silently ignoring them would mislead.
        if setting.value and not update:
            raise ConfigError(
                f"{setting.source}: {what} only while baselines are written, and only "
                "--edgetpu-update-baselines writes them; add it, or drop the setting"
            )
    against = resolved["against"]
    if against.value is not None and update:
        raise ConfigError(
            f"{against.source}: relative mode gates against a revision measured now and writes "
            "no baselines, so it cannot go with --edgetpu-update-baselines; drop one of them"
        )
    devices = parse_device_spec(device.value, device.source)
    delegate_options = resolved["delegate_options"]
    if delegate_options.value and not any(r.kind == "delegate" for r in devices):
        raise ConfigError(
            f"{delegate_options.source}: delegate options are given to a delegate:PATH "
            f"library, and {device.source} names none ({device.value!r}); add "
            "--edgetpu-device=delegate:PATH, or drop the options"
        )
    test_level = (
        "threshold",
        "metric",
        "warmup",
        "min_runs",
        "max_time",
        "num_threads",
        "fully_delegated",
    )
    baseline_dir = path("baseline_dir") or rootdir / "baselines"
    outputs = {name: path(name) for name in ("json", "report")}
    _check_output_paths(baseline_dir, outputs, lambda name: resolved[name].source)
    return SessionSettings(
        enabled=bool(value("")) or update or against.value is not None,
        devices=devices,
        baseline_dir=baseline_dir,
        update=update,
        json_path=outputs["json"],
        report_path=outputs["report"],
        strict=bool(value("strict")),
        plot_dir=path("plot"),
        accept_unstable=bool(accept_unstable.value),
        performance=value("performance"),
        delegate_options=delegate_options.value or (),
        memory_policy=MemoryPolicy(value("memory_threshold"), float(value("memory_slack"))),
        prune=bool(prune.value),
        against=against.value,
        sources={name: setting.source for name, setting in resolved.items()},
        test_defaults={name: resolved[name] for name in test_level},
    )


def _check_output_paths(
    baseline_dir: Path, outputs: Mapping[str, Path | None], source: Callable[[str], str]
) -> None:
    """Refuse output files that would overwrite a baseline file, or each other."""
    baselines = baseline_dir.resolve()
    seen: dict[Path, str] = {}
    for name, output in outputs.items():
        if output is None:
            continue
        target = output.resolve()
        if target.parent == baselines and target.suffix == ".json":
            raise ConfigError(
                f"{source(name)}: {output} lies in the baseline directory, where it would "
                "replace a baseline file or be read as one; write it elsewhere"
            )
        if target in seen:
            raise ConfigError(
                f"{source(name)}: {output} is also the path of {seen[target]}; give each "
                "output a file of its own"
            )
        seen[target] = source(name)


#: Baselines are measured for this many times ``max_time``: a baseline serves every later run, so
#: its precision is worth a longer recording. It buys more instances for slow models (mobilenet_v2
#: here: about 12 instead of 8) and little else; it does not save a baseline from a busy stretch
#: of the host that outlasts the recording (``benchmarks/replay.py``, third table).
BASELINE_SPAN = 1.5


@dataclass(frozen=True)
class TestSettings:
    """One test's settings after the marker had its say."""

    model: str | None
    threshold: Sourced[float]
    num_threads: int
    measure: MeasureSettings
    #: Fail when the model is not fully delegated, naming where that was asked.
    fully_delegated: Sourced[bool] = Sourced(False, "--edgetpu-fully-delegated (default)")


def test_settings(
    session: SessionSettings, args: tuple[object, ...], kwargs: Mapping[str, object], test: str
) -> TestSettings:
    """Validate a ``tpu_bench`` marker's arguments and merge them over the session's."""
    where = f"tpu_bench(...) on {test}"
    if len(args) > 1:
        raise ConfigError(
            f"{where}: takes at most one positional argument (model), got {len(args)}"
        )
    unknown = [name for name in kwargs if name not in MARKER_ARGS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(MARKER_ARGS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{where}: unknown argument {unknown[0]!r}{hint} (arguments: {', '.join(MARKER_ARGS)})"
        )
    given = dict(kwargs)
    if args:
        if "model" in given:
            raise ConfigError(f"{where}: model given both positionally and as model=")
        given["model"] = args[0]
    resolved: dict[str, Sourced[Any]] = dict(session.test_defaults)
    for name, raw in given.items():
        if raw is None:
            continue
        arg_where = f"tpu_bench({name}=...) on {test}"
        resolved[name] = Sourced(MARKER_ARGS[name](raw, arg_where), arg_where)
    model = resolved.get("model")
    return TestSettings(
        model=model.value if model else None,
        threshold=resolved["threshold"],
        num_threads=resolved["num_threads"].value,
        fully_delegated=resolved["fully_delegated"],
        measure=MeasureSettings(
            metric=resolved["metric"].value,
            warmup=resolved["warmup"].value,
            min_runs=resolved["min_runs"].value,
            max_time_s=resolved["max_time"].value * (BASELINE_SPAN if session.update else 1.0),
        ),
    )
