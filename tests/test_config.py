"""Unit tests of pytest_edgetpu.config and the device grammar: parsing, precedence, errors."""

from __future__ import annotations

import errno
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from factories import (
    assert_clean,
    bench_file,
    record,
    single_bench_file,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# Imported as a module: a bare ``test_settings`` name here would be collected as a test.
from pytest_edgetpu import config, options
from pytest_edgetpu.config import Sourced, session_settings
from pytest_edgetpu.core.errors import (
    ConfigError,
)
from pytest_edgetpu.device.selection import DeviceRequest, parse_device_spec
from pytest_edgetpu.engine.measurement import MeasureSettings
from pytest_edgetpu.options import MARKER_ARGS, OPTIONS, parse_threshold

ROOT = Path("/repo")
INI = "/repo/pytest.ini"
TEST = "tests/test_x.py::test_latency"
T = TypeVar("T")


def outcome(parse: Callable[[Any, str], T], raw: Any) -> T | ConfigError:
    """What ``parse(raw, "w")`` gives: its value, or the ConfigError it raised (any other
    exception propagates and fails the test)."""
    try:
        return parse(raw, "w")
    except ConfigError as exc:
        return exc


# ---------------------------------------------------------------------------------------------
# parse_threshold


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5%", 0.05),
        ("5", 0.05),
        (5, 0.05),
        (5.0, 0.05),
        ("2.5 %", 0.025),
        ("0.5%", 0.005),
        (" 12 % ", 0.12),
        ("1", 0.01),
        ("999.9%", 9.999),
        (".5%", 0.005),
    ],
    ids=["pct", "bare", "int", "float", "space", "half", "padded", "one", "max", "no-lead-zero"],
)
def test_parse_threshold(raw: object, expected: float) -> None:
    assert parse_threshold(raw, "--edgetpu-threshold") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "0.05",
            "threshold '0.05' is ambiguous (a fraction or a percentage?); write '5%' for 5 "
            "percent or '0.05%'",
        ),
        (
            0.05,
            "threshold 0.05 is ambiguous (a fraction or a percentage?); write '5%' for 5 "
            "percent or '0.05%'",
        ),
        (
            "0.5",
            "threshold '0.5' is ambiguous (a fraction or a percentage?); write '50%' for 50 "
            "percent or '0.5%'",
        ),
        ("abc", "threshold 'abc' is not a percentage; write it like '5%' or 5"),
        ("-5%", "threshold '-5%' must be above 0% and below 1000%"),
        (-5, "threshold -5 must be above 0% and below 1000%"),
        ("5%%", "threshold '5%%' is not a percentage; write it like '5%' or 5"),
        ("", "threshold '' is not a percentage; write it like '5%' or 5"),
        (None, "threshold None is not a percentage; write it like '5%' or 5"),
        (True, "threshold True is not a percentage; write it like '5%' or 5"),
        (False, "threshold False is not a percentage; write it like '5%' or 5"),
        ("0%", "threshold '0%' must be above 0% and below 1000%"),
        ("1000%", "threshold '1000%' must be above 0% and below 1000%"),
        (1000, "threshold 1000 must be above 0% and below 1000%"),
    ],
    ids=[
        "fraction-text",
        "fraction-float",
        "half",
        "abc",
        "negative",
        "negative-int",
        "double-pct",
        "empty",
        "none",
        "true",
        "false",
        "zero",
        "too-big",
        "too-big-int",
    ],
)
def test_parse_threshold_errors(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_threshold(raw, "--edgetpu-threshold")
    assert str(info.value) == f"--edgetpu-threshold: {message}"


def test_parse_threshold_bare_zero() -> None:
    with pytest.raises(ConfigError) as info:
        parse_threshold("0", "--edgetpu-threshold")
    assert str(info.value) == (
        "--edgetpu-threshold: threshold '0' must be above 0% and below 1000%"
    )


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=20),
        st.from_regex(r"\s*-?[0-9]{0,5}(\.[0-9]{0,4})?\s*%?\s*", fullmatch=True),
        st.integers(min_value=-(10**6), max_value=10**6),
        st.floats(),
        st.booleans(),
        st.none(),
    )
)
def test_parse_threshold_returns_a_fraction_or_raises_config_error(raw: object) -> None:
    result = outcome(parse_threshold, raw)
    if isinstance(result, ConfigError):
        assert str(result).startswith("w: threshold ")
    else:
        assert 0.0 < result < 10.0


# ---------------------------------------------------------------------------------------------
# parse_device_spec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auto", [("auto", None, "auto")]),
        ("cpu", [("cpu", None, "cpu")]),
        ("usb", [("usb", None, "usb")]),
        ("pci", [("pci", None, "pci")]),
        ("usb:0", [("usb", 0, "usb:0")]),
        ("pci:1", [("pci", 1, "pci:1")]),
        ("cpu:1", [("cpu", 1, "cpu:1")]),
        (":2", [("any", 2, ":2")]),
        ("usb:10", [("usb", 10, "usb:10")]),
        ("usb:0, pci:1", [("usb", 0, "usb:0"), ("pci", 1, "pci:1")]),
        ("  cpu ,usb:0,:1 ", [("cpu", None, "cpu"), ("usb", 0, "usb:0"), ("any", 1, ":1")]),
        ("cpu-builtin", [("cpu-builtin", None, "cpu-builtin")]),
        ("cpu-builtin:1", [("cpu-builtin", 1, "cpu-builtin:1")]),
        ("litert-cpu:0", [("litert-cpu", 0, "litert-cpu:0")]),
        (
            "litert-gpu,litert-npu",
            [("litert-gpu", None, "litert-gpu"), ("litert-npu", None, "litert-npu")],
        ),
    ],
    ids=[
        "auto",
        "cpu",
        "usb",
        "pci",
        "usb:0",
        "pci:1",
        "cpu:1",
        "any:2",
        "two-digits",
        "comma-list",
        "padded-list",
        "cpu-builtin",
        "cpu-builtin:1",
        "litert-cpu:0",
        "litert-accelerators",
    ],
)
def test_parse_device_spec(text: str, expected: list[tuple[str, int | None, str]]) -> None:
    assert parse_device_spec(text, "--edgetpu-device") == tuple(
        DeviceRequest(kind, index, item) for kind, index, item in expected
    )


EXPECTED_FORMS = (
    "expected auto, cpu, cpu-builtin, usb, pci, litert-cpu, litert-gpu, litert-npu (each but "
    "the last two also with :N), :N, delegate:PATH, or a comma list of them"
)


@pytest.mark.parametrize(
    ("text", "item", "hint"),
    [
        ("USB:0", "USB:0", " (device strings are lower-case: 'usb:0')"),
        ("Cpu", "Cpu", " (device strings are lower-case: 'cpu')"),
        ("usb:", "usb:", " (did you mean 'usb'?)"),
        ("usb:-1", "usb:-1", ""),
        ("0", "0", ""),
        ("/dev/apex_0", "/dev/apex_0", ""),
        ("gpu", "gpu", " (did you mean 'litert-gpu'?)"),
        ("cpu-bultin", "cpu-bultin", " (did you mean 'cpu-builtin'?)"),
        ("xnnpack", "xnnpack", " (did you mean 'cpu'?)"),
        ("litert-gpu:0", "litert-gpu:0", " (did you mean 'litert-gpu'?)"),
        ("", "", ""),
        ("usb:0,", "", ""),
        ("usb:0,,pci", "", ""),
        ("auto:0", "auto:0", " (did you mean 'auto'?)"),
        ("usb 0", "usb 0", ""),
        ("usb:0:1", "usb:0:1", ""),
    ],
    ids=[
        "upper-case",
        "mixed-case",
        "no-index",
        "negative",
        "bare-number",
        "dev-path",
        "gpu",
        "typo",
        "xnnpack",
        "gpu-index",
        "empty",
        "trailing-comma",
        "empty-item",
        "auto-index",
        "space",
        "two-indices",
    ],
)
def test_parse_device_spec_rejects(text: str, item: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_device_spec(text, "--edgetpu-device")
    assert str(info.value) == (
        f"--edgetpu-device: unknown device {item!r} in {text!r}{hint}; {EXPECTED_FORMS}"
    )


def test_parse_device_spec_rejects_non_ascii_digits() -> None:
    with pytest.raises(ConfigError, match=r"unknown device"):
        parse_device_spec("usb:\u0663", "--edgetpu-device")


def test_parse_device_spec_huge_index_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_device_spec("usb:" + "9" * 5000, "--edgetpu-device")


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=30),
        st.from_regex(r"\s*(auto|cpu|usb|pci|[A-Za-z]*:-?[0-9]{0,3})\s*(,.*)?", fullmatch=True),
    )
)
def test_parse_device_spec_returns_requests_or_raises_config_error(text: str) -> None:
    result = outcome(parse_device_spec, text)
    if isinstance(result, ConfigError):
        assert str(result).startswith("w: unknown device ")
    else:
        assert len(result) == len(text.split(","))
        for request in result:
            assert request.kind in {"auto", "cpu", "usb", "pci", "any"}
            assert request.index is None or request.index >= 0


# ---------------------------------------------------------------------------------------------
# session_settings


def resolve(cli: dict[str, object] | None = None, ini: dict[str, object] | None = None) -> Any:
    return session_settings(cli or {}, ini or {}, ROOT, INI)


def test_session_defaults() -> None:
    session = resolve()
    assert session.enabled is False
    assert session.devices == (DeviceRequest("auto", None, "auto"),)
    assert session.sources["device"] == "--edgetpu-device (default)"
    assert session.baseline_dir == ROOT / "baselines"
    assert session.update is False
    assert session.json_path is None
    assert session.report_path is None
    assert session.strict is False
    assert dict(session.test_defaults) == {
        "threshold": Sourced(0.05, "--edgetpu-threshold (default)"),
        "metric": Sourced("p50", "ini edgetpu_metric (default)"),
        "warmup": Sourced(3, "ini edgetpu_warmup (default)"),
        "min_runs": Sourced(100, "ini edgetpu_min_runs (default)"),
        "max_time": Sourced(1.5, "ini edgetpu_max_time (default)"),
        "num_threads": Sourced(1, "ini edgetpu_num_threads (default)"),
        "fully_delegated": Sourced(False, "--edgetpu-fully-delegated (default)"),
    }


@pytest.mark.parametrize(
    ("cli", "ini", "value", "source"),
    [
        ({"threshold": "10%"}, {"threshold": "20%"}, 0.10, "--edgetpu-threshold"),
        ({}, {"threshold": "20%"}, 0.20, f"ini edgetpu_threshold in {INI}"),
        ({"threshold": None}, {"threshold": "20"}, 0.20, f"ini edgetpu_threshold in {INI}"),
        ({}, {"threshold": ""}, 0.05, "--edgetpu-threshold (default)"),
        ({}, {}, 0.05, "--edgetpu-threshold (default)"),
    ],
    ids=["cli-over-ini", "ini", "cli-unset", "ini-empty", "default"],
)
def test_session_threshold_precedence(
    cli: dict[str, object], ini: dict[str, object], value: float, source: str
) -> None:
    threshold = resolve(cli, ini).test_defaults["threshold"]
    assert threshold.value == pytest.approx(value, rel=1e-12)
    assert threshold.source == source


@pytest.mark.parametrize(
    ("cli", "ini", "devices", "source"),
    [
        ({"device": "usb:0"}, {"device": "pci"}, ("usb:0",), "--edgetpu-device"),
        ({}, {"device": "pci, cpu"}, ("pci", "cpu"), f"ini edgetpu_device in {INI}"),
        ({}, {}, ("auto",), "--edgetpu-device (default)"),
    ],
    ids=["cli", "ini", "default"],
)
def test_session_device_precedence(
    cli: dict[str, object], ini: dict[str, object], devices: tuple[str, ...], source: str
) -> None:
    session = resolve(cli, ini)
    assert tuple(d.text for d in session.devices) == devices
    assert session.sources["device"] == source


@pytest.mark.parametrize(
    ("cli", "ini", "enabled", "update", "strict"),
    [
        ({"": True}, {}, True, False, False),
        ({}, {"": "true"}, True, False, False),
        ({"update_baselines": True}, {}, True, True, False),
        ({}, {"update_baselines": "yes"}, True, True, False),
        ({"": True, "strict": True}, {}, True, False, True),
        ({"": True}, {"strict": "on"}, True, False, True),
        ({"": True, "strict": False}, {"strict": "on"}, True, False, False),
        ({}, {"": "0", "strict": "off"}, False, False, False),
    ],
    ids=[
        "cli-flag",
        "ini-flag",
        "update-enables",
        "ini-update",
        "cli-strict",
        "ini-strict",
        "cli-false-beats-ini",
        "ini-off",
    ],
)
def test_session_flags(
    cli: dict[str, object], ini: dict[str, object], enabled: bool, update: bool, strict: bool
) -> None:
    session = resolve(cli, ini)
    assert (session.enabled, session.update, session.strict) == (enabled, update, strict)


def test_session_paths_are_under_the_rootdir() -> None:
    session = resolve(
        {"baseline_dir": "perf/baselines", "json": "out/results.json"},
        {"report": "/tmp/report.md", "baseline_dir": "ignored"},
    )
    assert session.baseline_dir == ROOT / "perf" / "baselines"
    assert session.json_path == ROOT / "out" / "results.json"
    assert session.report_path == Path("/tmp/report.md")


def test_session_path_of_an_unknown_users_home_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as error:
        resolve({"baseline_dir": "~no-such-user-pytest-edgetpu/baselines"})
    assert str(error.value) == (
        "--edgetpu-baseline-dir: cannot expand '~no-such-user-pytest-edgetpu/baselines': there "
        "is no home directory for that user; write the path out"
    )


def test_session_ini_only_options_ignore_the_cli() -> None:
    # metric, warmup, ... have no command-line option: a value keyed by them is not a CLI value.
    session = resolve({"metric": "p99", "warmup": 7}, {"metric": "p90"})
    assert session.test_defaults["metric"] == Sourced("p90", f"ini edgetpu_metric in {INI}")
    assert session.test_defaults["warmup"] == Sourced(3, "ini edgetpu_warmup (default)")


@pytest.mark.parametrize(
    ("name", "raw", "where", "words"),
    [
        (
            "threshold",
            "abc",
            "edgetpu_threshold",
            "threshold 'abc' is not a percentage; write it like '5%' or 5",
        ),
        ("strict", "maybe", "edgetpu_strict", "'maybe' is not a boolean (true or false)"),
        (
            "metric",
            "p95",
            "edgetpu_metric",
            "unknown metric 'p95'; use one of p50, p90, p99, mean, min",
        ),
        ("warmup", "-1", "edgetpu_warmup", "-1 is below the smallest allowed value 0"),
        ("min_runs", "lots", "edgetpu_min_runs", "'lots' is not a whole number"),
        (
            "max_time",
            "forever",
            "edgetpu_max_time",
            "'forever' is not a positive number of seconds (like 2 or 0.5)",
        ),
        ("num_threads", "0", "edgetpu_num_threads", "0 is below the smallest allowed value 1"),
    ],
    ids=["threshold", "strict", "metric", "warmup", "min_runs", "max_time", "num_threads"],
)
def test_session_bad_ini_value(name: str, raw: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve({}, {name: raw})
    assert str(info.value) == f"ini {where} in {INI}: {words}"


def test_session_bad_ini_device() -> None:
    with pytest.raises(ConfigError) as info:
        resolve({}, {"device": "gpu"})
    assert str(info.value) == (
        f"ini edgetpu_device in {INI}: unknown device 'gpu' in 'gpu' (did you mean "
        f"'litert-gpu'?); {EXPECTED_FORMS}"
    )


@pytest.mark.parametrize(
    ("name", "raw", "words"),
    [
        (
            "threshold",
            "0.05",
            "threshold '0.05' is ambiguous (a fraction or a percentage?); write '5%' for 5 "
            "percent or '0.05%'",
        ),
        (
            "device",
            "USB:0",
            f"unknown device 'USB:0' in 'USB:0' (device strings are lower-case: "
            f"'usb:0'); {EXPECTED_FORMS}",
        ),
        ("json", "  ", "expected a non-empty path or string, got '  '"),
    ],
    ids=["threshold", "device", "json"],
)
def test_session_bad_cli_value(name: str, raw: str, words: str) -> None:
    flag = next(o.flag for o in OPTIONS if o.name == name)
    with pytest.raises(ConfigError) as info:
        resolve({name: raw}, {name: "10%" if name == "threshold" else "cpu"})
    assert str(info.value) == f"{flag}: {words}"


def test_option_flags_and_ini_names() -> None:
    assert [(o.flag, o.ini, o.cli) for o in OPTIONS] == [
        ("--edgetpu", "edgetpu", True),
        ("--edgetpu-device", "edgetpu_device", True),
        ("--edgetpu-delegate-options", "edgetpu_delegate_options", True),
        ("--edgetpu-fully-delegated", "edgetpu_fully_delegated", True),
        ("--edgetpu-baseline-dir", "edgetpu_baseline_dir", True),
        ("--edgetpu-update-baselines", "edgetpu_update_baselines", True),
        ("--edgetpu-accept-unstable", "edgetpu_accept_unstable", True),
        ("--edgetpu-processes", "edgetpu_processes", True),
        ("--edgetpu-prune-baselines", "edgetpu_prune_baselines", True),
        ("--edgetpu-threshold", "edgetpu_threshold", True),
        ("--edgetpu-memory-threshold", "edgetpu_memory_threshold", True),
        ("--edgetpu-memory-slack", "edgetpu_memory_slack", True),
        ("--edgetpu-against", "edgetpu_against", True),
        ("--edgetpu-bisect", "edgetpu_bisect", True),
        ("--edgetpu-json", "edgetpu_json", True),
        ("--edgetpu-report", "edgetpu_report", True),
        ("--edgetpu-plot", "edgetpu_plot", True),
        ("--edgetpu-strict", "edgetpu_strict", True),
        ("--edgetpu-performance", "edgetpu_performance", True),
        ("--edgetpu-metric", "edgetpu_metric", False),
        ("--edgetpu-warmup", "edgetpu_warmup", False),
        ("--edgetpu-min-runs", "edgetpu_min_runs", False),
        ("--edgetpu-max-time", "edgetpu_max_time", False),
        ("--edgetpu-num-threads", "edgetpu_num_threads", False),
    ]


# ---------------------------------------------------------------------------------------------
# test_settings (the marker)


def marker(
    *args: object,
    cli: dict[str, object] | None = None,
    ini: dict[str, object] | None = None,
    **kwargs: object,
) -> Any:
    return config.test_settings(resolve(cli, ini), args, kwargs, TEST)


@pytest.mark.parametrize(
    ("kwargs", "cli", "ini", "value", "source"),
    [
        (
            {"threshold": "2%"},
            {"threshold": "10%"},
            {"threshold": "20%"},
            0.02,
            f"tpu_bench(threshold=...) on {TEST}",
        ),
        ({}, {"threshold": "10%"}, {"threshold": "20%"}, 0.10, "--edgetpu-threshold"),
        ({}, {}, {"threshold": "20%"}, 0.20, f"ini edgetpu_threshold in {INI}"),
        ({}, {}, {}, 0.05, "--edgetpu-threshold (default)"),
        ({"threshold": None}, {"threshold": "10%"}, {}, 0.10, "--edgetpu-threshold"),
    ],
    ids=["marker", "cli", "ini", "default", "marker-none"],
)
def test_marker_threshold_precedence(
    kwargs: dict[str, object],
    cli: dict[str, object],
    ini: dict[str, object],
    value: float,
    source: str,
) -> None:
    settings_ = marker(cli=cli, ini=ini, **kwargs)
    assert settings_.threshold.value == pytest.approx(value, rel=1e-12)
    assert settings_.threshold.source == source


def test_marker_defaults() -> None:
    settings_ = marker()
    assert settings_.model is None
    assert settings_.num_threads == 1
    assert settings_.measure == MeasureSettings(
        metric="p50", warmup=3, min_runs=100, max_time_s=1.5
    )


def test_baselines_are_measured_for_longer() -> None:
    recording = marker(cli={"update_baselines": True}, max_time="2s")
    assert recording.measure.max_time_s == pytest.approx(2.0 * config.BASELINE_SPAN)
    assert marker(max_time="2s").measure.max_time_s == pytest.approx(2.0)


def test_marker_over_ini_for_measure_settings() -> None:
    ini = {"metric": "p90", "warmup": "5", "min_runs": "50", "max_time": "1.25", "num_threads": "2"}
    from_ini = marker(ini=ini)
    assert from_ini.num_threads == 2
    assert from_ini.measure == MeasureSettings(metric="p90", warmup=5, min_runs=50, max_time_s=1.25)
    from_marker = marker(
        ini=ini, metric="min", warmup=0, min_runs=10, max_time="0.25s", num_threads=4
    )
    assert from_marker.num_threads == 4
    assert from_marker.measure == MeasureSettings(
        metric="min", warmup=0, min_runs=10, max_time_s=0.25
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "model"),
    [
        (("models/m.tflite",), {}, "models/m.tflite"),
        ((), {"model": "models/m.tflite"}, "models/m.tflite"),
        ((Path("models/m.tflite"),), {}, "models/m.tflite"),
        ((None,), {}, None),
        ((), {"model": None}, None),
    ],
    ids=["positional", "keyword", "path", "positional-none", "keyword-none"],
)
def test_marker_model(args: tuple[object, ...], kwargs: dict[str, object], model: str) -> None:
    assert marker(*args, **kwargs).model == model


def test_marker_args_match_the_documented_signature() -> None:
    assert list(MARKER_ARGS) == [
        "model",
        "threshold",
        "metric",
        "warmup",
        "min_runs",
        "max_time",
        "num_threads",
        "fully_delegated",
    ]
    for name in MARKER_ARGS:
        assert f"{name}=" in options.MARKER_DOC


WHERE = f"tpu_bench(...) on {TEST}"
ARGUMENTS = (
    "(arguments: model, threshold, metric, warmup, min_runs, max_time, num_threads, "
    "fully_delegated)"
)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (
            (),
            {"treshold": "5%"},
            f"{WHERE}: unknown argument 'treshold'; did you mean 'threshold'? {ARGUMENTS}",
        ),
        (
            (),
            {"num_thread": 2},
            f"{WHERE}: unknown argument 'num_thread'; did you mean 'num_threads'? {ARGUMENTS}",
        ),
        ((), {"colour": "red"}, f"{WHERE}: unknown argument 'colour' {ARGUMENTS}"),
        (
            ("a.tflite", "b.tflite"),
            {},
            f"{WHERE}: takes at most one positional argument (model), got 2",
        ),
        (
            ("a.tflite",),
            {"model": "b.tflite"},
            f"{WHERE}: model given both positionally and as model=",
        ),
    ],
    ids=["typo-threshold", "typo-num-threads", "unknown", "two-positionals", "model-twice"],
)
def test_marker_usage_errors(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        marker(*args, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("name", "raw", "words"),
    [
        ("warmup", "many", "'many' is not a whole number"),
        ("warmup", -1, "-1 is below the smallest allowed value 0"),
        ("warmup", 2.5, "2.5 is not a whole number"),
        ("min_runs", 0, "0 is below the smallest allowed value 1"),
        ("max_time", -1, "-1 is not a positive number of seconds (like 2 or 0.5)"),
        ("max_time", 0, "0 is not a positive number of seconds (like 2 or 0.5)"),
        ("max_time", "inf", "'inf' is not a positive number of seconds (like 2 or 0.5)"),
        ("max_time", True, "True is not a positive number of seconds (like 2 or 0.5)"),
        ("metric", "p95", "unknown metric 'p95'; use one of p50, p90, p99, mean, min"),
        ("metric", "P50", "unknown metric 'P50'; use one of p50, p90, p99, mean, min"),
        ("num_threads", True, "True is not a whole number"),
        ("num_threads", 0, "0 is below the smallest allowed value 1"),
        ("model", 123, "expected a non-empty path or string, got 123"),
        ("model", "", "expected a non-empty path or string, got ''"),
        (
            "threshold",
            "0.05",
            "threshold '0.05' is ambiguous (a fraction or a percentage?); write '5%' for 5 "
            "percent or '0.05%'",
        ),
    ],
    ids=[
        "warmup-text",
        "warmup-negative",
        "warmup-float",
        "min_runs-zero",
        "max_time-negative",
        "max_time-zero",
        "max_time-inf",
        "max_time-bool",
        "metric-p95",
        "metric-upper",
        "num_threads-bool",
        "num_threads-zero",
        "model-int",
        "model-empty",
        "threshold-fraction",
    ],
)
def test_marker_ill_typed_values(name: str, raw: object, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        marker(**{name: raw})
    assert str(info.value) == f"tpu_bench({name}=...) on {TEST}: {words}"


def test_marker_huge_whole_number_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^tpu_bench\(warmup=\.\.\.\) on "):
        marker(warmup="9" * 5000)


# ---------------------------------------------------------------------------------------------
# bad marker arguments: a collection error naming the test and the argument


BAD_MARKERS = {
    "metric": (
        "metric='p42'",
        "tpu_bench(metric=...) on test_metric.py::test_m: unknown metric 'p42'; use one of"
        " p50, p90, p99, mean, min",
    ),
    "positional": (
        "'models/a.tflite', 'models/b.tflite'",
        "tpu_bench(...) on test_positional.py::test_m: takes at most one positional argument"
        " (model), got 2",
    ),
    "threshold": (
        "threshold=True",
        "tpu_bench(threshold=...) on test_threshold.py::test_m: threshold True is not a"
        " percentage; write it like '5%' or 5",
    ),
    "model": (
        "model=3",
        "tpu_bench(model=...) on test_model.py::test_m: expected a non-empty path or string, got 3",
    ),
    "time": (
        "max_time=-1",
        "tpu_bench(max_time=...) on test_time.py::test_m: -1 is not a positive number of"
        " seconds (like 2 or 0.5)",
    ),
}


def test_bad_marker_arguments_are_collection_errors(project: pytest.Pytester) -> None:
    project.makepyfile(
        **{f"test_{name}": bench_file("test_m", marker=m) for name, (m, _) in BAD_MARKERS.items()}
    )
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(errors=len(BAD_MARKERS))
    for name, (_, message) in BAD_MARKERS.items():
        result.stdout.fnmatch_lines([f"*ERROR collecting test_{name}.py*", message])
    assert_clean(result)


# ---------------------------------------------------------------------------------------------
# bad options and ini values: a usage error before any test runs


@pytest.fixture
def unwritable(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Directories listed here refuse new files, as a read-only directory does for a normal
    user; simulated, because permission bits do not stop root."""
    refused: list[Path] = []
    real = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if kwargs.get("dir") is not None and Path(kwargs["dir"]) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(kwargs["dir"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return refused


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (
            ["--edgetpu", "--edgetpu-prune-baselines"],
            "",
            "ERROR: --edgetpu-prune-baselines: pruning removes entries only while baselines are"
            " written, and only --edgetpu-update-baselines writes them; add it, or drop the"
            " setting",
        ),
        (
            ["--edgetpu", "--edgetpu-accept-unstable"],
            "",
            "ERROR: --edgetpu-accept-unstable: accepting unstable measurements applies only while"
            " baselines are written, and only --edgetpu-update-baselines writes them; add it,"
            " or drop the setting",
        ),
        (
            ["--edgetpu", "--edgetpu-baseline-dir=test_options.py"],
            "",
            "ERROR: --edgetpu-baseline-dir: the baseline directory */test_options.py is a file;"
            " give a directory",
        ),
        (
            ["--edgetpu"],
            "edgetpu_baseline_dir = test_options.py",
            "ERROR: ini edgetpu_baseline_dir in */tox.ini: the baseline directory"
            " */test_options.py is a file; give a directory",
        ),
        (
            ["--edgetpu-update-baselines", "--edgetpu-baseline-dir=test_options.py/baselines"],
            "",
            "ERROR: --edgetpu-baseline-dir: */test_options.py is a file, so"
            " */test_options.py/baselines cannot be created; choose another path",
        ),
        (
            ["--edgetpu", "--edgetpu-report=models"],
            "",
            "ERROR: --edgetpu-report: */models is a directory; give the path of a file",
        ),
        (
            ["--edgetpu", "--edgetpu-device="],
            "",
            "ERROR: --edgetpu-device: expected a non-empty path or string, got ''",
        ),
        (
            ["--edgetpu"],
            "edgetpu_device = usb:zero",
            "ERROR: ini edgetpu_device in */tox.ini: unknown device 'usb:zero' in 'usb:zero';"
            " expected auto, cpu, cpu-builtin, usb, pci, litert-cpu, litert-gpu, litert-npu"
            " (each but the last two also with :N), :N, delegate:PATH, or a comma list of them",
        ),
        (
            ["--edgetpu"],
            "edgetpu_warmup = many",
            "ERROR: ini edgetpu_warmup in */tox.ini: 'many' is not a whole number",
        ),
        (
            ["--edgetpu", "--edgetpu-processes=both"],
            "",
            "ERROR: --edgetpu-processes: unknown value 'both'; use fresh (4 to 8 fresh processes,"
            " the default) or one (this pytest process only)",
        ),
        (
            ["--edgetpu"],
            "edgetpu_json = test_options.py/out.json",
            "ERROR: ini edgetpu_json in */tox.ini: */test_options.py is a file, so"
            " */test_options.py/out.json cannot be created; choose another path",
        ),
    ],
    ids=[
        "prune-without-update",
        "accept-unstable-without-update",
        "baseline-dir-is-a-file",
        "ini-baseline-dir-is-a-file",
        "baseline-dir-under-a-file",
        "report-is-a-directory",
        "empty-device",
        "ini-device",
        "ini-warmup",
        "processes",
        "ini-json-under-a-file",
    ],
)
def test_bad_options_stop_the_run_naming_the_option(
    project: pytest.Pytester, short_ini: str, args: list[str], ini: str, message: str
) -> None:
    project.makeini(short_ini + ini + "\n")
    project.makepyfile(test_options=bench_file("test_a"))
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert_clean(result)
    assert not (project.path / "baselines").exists()


def test_an_unwritable_baseline_directory_stops_an_update_before_measuring(
    project: pytest.Pytester, unwritable: list[Path]
) -> None:
    path = record(project, "test_write.py::test_a")
    before = path.read_bytes()
    unwritable.append(path.parent)
    project.makepyfile(test_write=bench_file("test_a"))
    result = project.runpytest("--edgetpu-update-baselines")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --edgetpu-baseline-dir (default): cannot write {path.parent}"
            f" ({path.parent}: Permission denied); choose a writable location or fix its"
            " permissions"
        ]
    )
    assert path.read_bytes() == before
    # A gate only reads: the same directory serves it.
    project.runpytest("--edgetpu").assert_outcomes(passed=1)


# ---------------------------------------------------------------------------------------------
# settings that would take the host down


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            "num_threads=10**6",
            "tpu_bench(num_threads=...) on test_m.py::test_a: 1000000 is above the largest"
            " allowed value 256 (more threads than any host has cores; each one is a real"
            " thread)",
        ),
        (
            "warmup=10**8",
            "tpu_bench(warmup=...) on test_m.py::test_a: 100000000 is above the largest allowed"
            " value 10000 (warm-up beyond that only costs time)",
        ),
        (
            "min_runs=10**9",
            "tpu_bench(min_runs=...) on test_m.py::test_a: 1000000000 is above the largest"
            " allowed value 1000000 (the measurement stops on max_time anyway)",
        ),
        (
            "max_time=10**6",
            "tpu_bench(max_time=...) on test_m.py::test_a: 1000000 is above the largest allowed"
            " value 3600 s (an hour per measurement)",
        ),
        (
            "threshold=-5",
            "tpu_bench(threshold=...) on test_m.py::test_a: threshold -5 must be above 0% and"
            " below 1000%",
        ),
    ],
    ids=["threads", "warmup", "min_runs", "max_time", "negative-threshold"],
)
def test_unbounded_marker_arguments_are_collection_errors(
    project: pytest.Pytester, marker: str, message: str
) -> None:
    project.makepyfile(test_m=single_bench_file(marker=f'"models/tiny_dense.tflite", {marker}'))
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*interrupted: no baselines*")
    assert_clean(result)


def test_a_number_of_a_hundred_thousand_digits_is_one_short_line(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nedgetpu_warmup = " + "9" * 100_000 + "\n")
    project.makepyfile(test_a=single_bench_file())
    result = project.runpytest("--edgetpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines == [
        f"ERROR: ini edgetpu_warmup in {project.path}/tox.ini: a value of 100000 characters is"
        " out of range",
        "",
    ]


def test_an_unbounded_ini_value_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nedgetpu_num_threads = 1000000\n")
    project.makepyfile(test_a=single_bench_file())
    result = project.runpytest("--edgetpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: ini edgetpu_num_threads in */tox.ini: 1000000 is above the largest allowed"
            " value 256 (more threads than any host has cores; each one is a real thread)"
        ]
    )
