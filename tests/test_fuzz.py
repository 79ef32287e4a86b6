"""Property tests: every parser of outside input returns a value or raises its one error type.

Each loader and parser here meets arbitrary input (bytes, JSON-ish documents, valid documents
with one part replaced by anything, marker arguments and option values of any type) and must
either accept it as a well-formed value or raise the error the plugin turns into one clear
line: BaselineError, ResultsError or ConfigError. Anything else (a TypeError, a KeyError, a
RecursionError) would reach the user as a traceback or an INTERNALERROR.

The device-spec and threshold grammars have their own property tests in test_config.py.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from factories import result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_edgetpu import cli
from pytest_edgetpu import config as config_module
from pytest_edgetpu.config import session_settings
from pytest_edgetpu.core.errors import BaselineError, ConfigError, ResultsError
from pytest_edgetpu.core.jsonio import MAX_DEPTH, loads_limited
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.judge.baselines import BaselineEntry, BaselineFile, dumps, load_file, parse_text
from pytest_edgetpu.judge.results_file import load_results, result_json
from pytest_edgetpu.options import MARKER_ARGS, OPTIONS

T = TypeVar("T")
E = TypeVar("E", bound=Exception)
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
#: Anything ``json.loads`` can return, a little deeper than the files allow.
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=24,
)

PROFILE = Profile({"device": "cpu", "arch": "x86_64", "cpu_model": "AMD EPYC", "runtime": "litert"})
ENTRY = BaselineEntry(
    metric="p50",
    instance_values_ms=(1.0, 1.1, 1.2),
    summary_ms={"n": 30, "min": 0.9, "p50": 1.1, "p90": 1.3, "p99": 1.5, "max": 2.0, "mean": 1.1},
    load_ms=3.0,
    first_inference_ms=2.0,
    num_threads=1,
    workers=1,
    recorded="2026-11-27T00:00:00+00:00",
    model_sha256="ab" * 32,
    model_path="models/m.tflite",
    environment={"python": "3.11.7"},
)
VALID_BASELINE: dict[str, Any] = json.loads(dumps(PROFILE, {"tests/test_a.py::test_a": ENTRY}))


def _paths(value: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position inside a JSON document: the keys and indices that lead to it."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def damaged(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """``valid`` with one to three of its parts replaced by anything JSON can hold, or
    removed: the shape of a file edited by hand or by another tool."""
    document: Any = copy.deepcopy(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        position = draw(st.sampled_from(_paths(document)))
        if not position:
            return draw(JSONISH)
        parent = document
        for step in position[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[position[-1]]
        else:
            parent[position[-1]] = draw(JSONISH)
    return document


def outcome(call: Callable[[], T], error: type[E]) -> T | E:
    """What ``call()`` gives: its value, or the ``error`` it raised (any other exception
    propagates and fails the test)."""
    try:
        return call()
    except error as exc:
        return exc


def _parse_baseline(text: str) -> BaselineFile | BaselineError:
    path = Path("baselines/cpu.json")
    parsed = outcome(lambda: parse_text(text, path), BaselineError)
    if isinstance(parsed, BaselineError):
        assert str(parsed).startswith(str(path))
        return parsed
    assert parsed.path == path
    for entry in parsed.entries.values():
        assert len(entry.instance_values_ms) >= 2
        assert all(v > 0 and math.isfinite(v) for v in entry.instance_values_ms)
        assert entry.num_threads >= 1 and entry.workers >= 1
        assert isinstance(entry.value_ms, float)
    return parsed


@FUZZ
@given(st.binary(max_size=600))
def test_baseline_loader_on_arbitrary_bytes(tmp_path_factory: Any, data: bytes) -> None:
    path = tmp_path_factory.mktemp("bytes") / "cpu.json"
    path.write_bytes(data)
    result = outcome(lambda: load_file(path), BaselineError)
    if isinstance(result, BaselineError):
        assert str(result).startswith(str(path))


@FUZZ
@given(JSONISH)
def test_baseline_loader_on_arbitrary_json(document: object) -> None:
    _parse_baseline(json.dumps(document))


@FUZZ
@given(damaged(VALID_BASELINE))
def test_baseline_loader_on_damaged_files(document: object) -> None:
    result = _parse_baseline(json.dumps(document))
    if isinstance(result, BaselineFile):
        # What was accepted can be written again; once written (sorted, rounded) it is stable.
        once = parse_text(dumps(result.profile, result.entries), result.path)
        assert parse_text(dumps(once.profile, once.entries), once.path) == once


@FUZZ
@given(st.text(max_size=300))
def test_json_limits_on_arbitrary_text(text: str) -> None:
    document = outcome(lambda: loads_limited(text), ValueError)
    if isinstance(document, ValueError):
        return

    def depth(value: object) -> int:
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, (dict, list)):
            return 1 + max((depth(c) for c in children), default=0)
        return 0

    assert depth(document) <= MAX_DEPTH + 1


# ---------------------------------------------------------------------------------------------
# the marker and the options

MARKER_VALUES = st.one_of(
    SCALARS,
    st.sampled_from(["5%", "p99", "models/m.tflite", "0.5", "2s", "-1", "1e3", " 3 ", "%"]),
    st.lists(SCALARS, max_size=2),
)


@FUZZ
@given(
    st.lists(MARKER_VALUES, max_size=2),
    st.dictionaries(
        st.one_of(st.sampled_from(sorted(MARKER_ARGS)), st.text(max_size=10)),
        MARKER_VALUES,
        max_size=4,
    ),
)
def test_marker_parser_returns_settings_or_a_config_error(
    args: list[object], kwargs: dict[str, object]
) -> None:
    session = session_settings({}, {}, Path("/repo"), "/repo/pytest.ini")
    test = "tests/test_x.py::test_x"
    resolved = outcome(
        lambda: config_module.test_settings(session, tuple(args), kwargs, test), ConfigError
    )
    if isinstance(resolved, ConfigError):
        assert str(resolved).startswith("tpu_bench(") and f" on {test}: " in str(resolved)
        return
    assert 0 < resolved.threshold.value < 10
    assert resolved.num_threads >= 1
    assert resolved.measure.max_time_s > 0 and resolved.measure.min_runs >= 1


@FUZZ
@given(
    st.dictionaries(st.sampled_from([o.name for o in OPTIONS if o.cli]), MARKER_VALUES),
    st.dictionaries(st.sampled_from([o.name for o in OPTIONS]), st.text(max_size=12)),
)
def test_options_and_ini_values_give_settings_or_a_config_error_naming_them(
    cli_values: dict[str, object], ini_values: dict[str, str]
) -> None:
    result = outcome(
        lambda: session_settings(cli_values, ini_values, Path("/repo"), "/repo/pytest.ini"),
        ConfigError,
    )
    if isinstance(result, ConfigError):
        assert str(result).startswith(("--edgetpu", "ini edgetpu")), str(result)


# ---------------------------------------------------------------------------------------------
# results files and the command that reads them

VALID_RECORD: dict[str, Any] = {
    **result_json(
        result("tests/test_a.py::test_a", "PASS", 1.1, baseline=1.1, change=(0.0, -0.01, 0.01))
    ),
    "profile": PROFILE.key,
    "baseline_entry": VALID_BASELINE["entries"]["tests/test_a.py::test_a"],
}
VALID_RESULTS: dict[str, Any] = {
    "format": "pytest-edgetpu-results",
    "schema_version": 1,
    "profiles": {PROFILE.key: dict(PROFILE.fields)},
    "results": [VALID_RECORD],
}


def _run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, err.getvalue()


@FUZZ
@given(damaged(VALID_RESULTS))
def test_results_loader_and_command_on_damaged_files(
    tmp_path_factory: Any, document: object
) -> None:
    directory = tmp_path_factory.mktemp("results")
    path = directory / "results.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    loaded = outcome(lambda: load_results(path), ResultsError)
    if isinstance(loaded, ResultsError):
        assert str(loaded).startswith(str(path))
    baselines = str(directory / "baselines")
    for command in ("compare", "accept"):
        status, err = _run_cli([command, str(path), "--baseline-dir", baselines])
        assert status in (0, 1, 2)
        if status == 2:
            assert err.startswith("pytest-edgetpu: error: ") and err.count("\n") == 1


def test_the_valid_documents_are_valid(tmp_path: Path) -> None:
    """The fuzzers start from documents that load, so their damage is what they test."""
    assert isinstance(_parse_baseline(json.dumps(VALID_BASELINE)), BaselineFile)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(VALID_RESULTS), encoding="utf-8")
    assert _run_cli(["accept", str(path), "--baseline-dir", str(tmp_path / "b")])[0] == 0
    assert _run_cli(["compare", str(path), "--baseline-dir", str(tmp_path / "b")])[0] == 0
