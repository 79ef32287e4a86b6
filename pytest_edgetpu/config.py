"""Settings: every option, ini key and marker argument resolved in one place.

Precedence, for every value: marker argument > command-line option > ini key > default. Each
resolved value remembers where it came from, so an error names that source (``--edgetpu-
threshold``, ``ini edgetpu_threshold``, ``tpu_bench(threshold=...) on test_x``). The values and
their parsers are :mod:`pytest_edgetpu.options`'s table. No pytest import:
:mod:`pytest_edgetpu.plugin` feeds this module plain values.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from .core.errors import ConfigError
from .device.selection import DeviceRequest, parse_device_spec
from .engine.measurement import MeasureSettings
from .engine.memory import MemoryPolicy
from .options import MARKER_ARGS, OPTIONS, OPTIONS_BY_NAME

__all__ = [
    "SessionSettings",
    "Sourced",
    "TestSettings",
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


def _resolve(
    name: str, cli: Mapping[str, object], ini: Mapping[str, object], ini_where: str
) -> Sourced[Any]:
    option = OPTIONS_BY_NAME[name]
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
    #: Stored baselines recorded and gated in fresh processes (``--edgetpu-processes=fresh``),
    #: not in this one (``one``).
    fresh_processes: bool = True
    #: Relative mode's git revision (``--edgetpu-against``); None: gate against stored baselines.
    against: str | None = None
    #: Exit as ``git bisect run`` reads it (``--edgetpu-bisect``).
    bisect: bool = False
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
    against, bisect = resolved["against"], resolved["bisect"]
    if bisect.value and against.value is None:
        raise ConfigError(
            f"{bisect.source}: git bisect's exit codes judge a commit against another one, which "
            "relative mode measures; add --edgetpu-against=GOOD, or drop the setting"
        )
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
        fresh_processes=value("processes") == "fresh",
        against=against.value,
        bisect=bool(bisect.value),
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
#: of the host that outlasts the recording (``benchmarks/experiments/replay.py``, third table).
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
