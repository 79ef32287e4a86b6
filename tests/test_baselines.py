"""Unit tests of pytest_edgetpu.judge.baselines: the file format, validation, profiles, safe
writes."""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from factories import (
    RECORDING_UPDATE,
    TIMEOUT_S,
    assert_clean,
    bench_file,
    commit_everything,
    cpu_profile,
    default_sigint,
    entries_of,
    entry,
    needs_git,
    record,
    result,
    single_bench_file,
    snapshot,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgetpu.cli import main
from pytest_edgetpu.core.errors import BaselineError
from pytest_edgetpu.core.jsonio import write_text
from pytest_edgetpu.core.limits import MAX_DURATION_MS, MIN_LATENCY_MS
from pytest_edgetpu.core.stats import shift
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.engine.host_reference import HostReading
from pytest_edgetpu.judge.baselines import (
    FORMAT,
    SCHEMA_VERSION,
    BaselineEntry,
    BaselineStore,
    Lookup,
    dumps,
    load_file,
    write_entries,
)
from pytest_edgetpu.judge.results_file import result_json

GOLDEN = Path(__file__).parent / "golden" / "baselines_v1.json"

PROFILE = Profile(
    {"runtime": "litert", "device": "cpu", "arch": "x86_64", "cpu_model": "AMD EPYC 7B13"}
)
ENTRY_A = BaselineEntry(
    metric="p50",
    instance_values_ms=(1.3333333, 1.23456, 1.19999, 1.2501),
    summary_ms={
        "n": 400,
        "min": 1.1,
        "p50": 1.234567,
        "p90": 1.4,
        "p99": 1.9876543,
        "max": 2.5,
        "mean": 1.2500001,
    },
    load_ms=12.3456,
    first_inference_ms=45.678,
    num_threads=1,
    workers=1,
    recorded="2026-11-20T10:00:00Z",
    model_sha256="cb27" + "0f" * 30,
    model_path="models/classifier.tflite",
    environment={"python": "3.11.7", "plugin": "0.1.0", "governor": "performance"},
)
ENTRY_B = BaselineEntry(
    metric="p90",
    instance_values_ms=(0.0000123456, 0.0001, 12345.678),
    summary_ms={"n": 50, "p90": 0.00021999},
    load_ms=0.5,
    first_inference_ms=0.25,
    num_threads=2,
    workers=2,
    recorded="2026-11-21T00:00:00Z",
)
ENTRIES = {"tests/test_b.py::test_y[usb:0]": ENTRY_B, "tests/test_a.py::test_x": ENTRY_A}


def rounded(entry: BaselineEntry) -> BaselineEntry:
    """What reading a written entry gives back: values rounded to 4 digits, sorted, floats."""

    def r(value: float) -> float:
        return float(f"{value:.4g}")

    return replace(
        entry,
        instance_values_ms=tuple(sorted(r(v) for v in entry.instance_values_ms)),
        summary_ms={k: float(v) if k == "n" else r(v) for k, v in entry.summary_ms.items()},
        load_ms=r(entry.load_ms),
        first_inference_ms=r(entry.first_inference_ms),
        environment=dict(entry.environment),
    )


def small_entry(value: float = 1.0, *, metric: str = "p50") -> BaselineEntry:
    return BaselineEntry(
        metric=metric,
        instance_values_ms=(value, value * 1.01),
        summary_ms={"n": 10, metric: value},
        load_ms=1.0,
        first_inference_ms=2.0,
        num_threads=1,
        workers=1,
        recorded="2026-11-20T00:00:00Z",
    )


def document(**entry_overrides: Any) -> dict[str, Any]:
    """A valid file's JSON document with one entry 't', whose fields can be overridden."""
    doc: dict[str, Any] = json.loads(dumps(PROFILE, {"t": ENTRY_A}))
    doc["entries"]["t"].update(entry_overrides)
    return doc


def write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------
# format


def test_dumps_matches_the_golden_file() -> None:
    assert dumps(PROFILE, ENTRIES).encode("utf-8") == GOLDEN.read_bytes()


def test_dumps_does_not_depend_on_insertion_order() -> None:
    reordered = Profile(dict(reversed(list(PROFILE.fields.items()))))
    entries = dict(reversed(list(ENTRIES.items())))
    assert dumps(reordered, entries) == dumps(PROFILE, ENTRIES)


def test_golden_file_is_readable() -> None:
    text = GOLDEN.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")
    # Number lists on one line, sorted, four significant digits (also in exponent form).
    assert '"instance_values_ms": [1.2, 1.235, 1.25, 1.333],' in text
    assert '"instance_values_ms": [1.235e-05, 0.0001, 12350.0],' in text
    assert '"n": 400,' in text  # the sample count stays an integer
    # Keys sorted at every level.
    keys = re.findall(r'^\s*"([^"]+)":', text, flags=re.MULTILINE)
    top = [k for k in keys if k in {"entries", "format", "profile", "schema_version"}]
    assert top == sorted(top)
    assert keys.index("tests/test_a.py::test_x") < keys.index("tests/test_b.py::test_y[usb:0]")
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION == 1
    assert json.loads(text)["format"] == FORMAT


def test_round_trip(tmp_path: Path) -> None:
    path = write_entries(tmp_path, PROFILE, ENTRIES)
    assert path == tmp_path / "cpu-x86_64-amd-epyc-7b13-litert.json"
    loaded = load_file(path)
    assert loaded.path == path
    assert loaded.profile == PROFILE
    assert dict(loaded.entries) == {k: rounded(v) for k, v in ENTRIES.items()}
    assert loaded.entries["tests/test_a.py::test_x"].value_ms == 1.235
    # Writing what was read gives the same bytes: re-recording is a stable diff.
    assert dumps(loaded.profile, loaded.entries) == path.read_text(encoding="utf-8")


def test_the_hosts_reading_round_trips(tmp_path: Path) -> None:
    reading = HostReading("dict-format-1 cpython-3.11.7", (0.0323456, 0.0312, 0.031987))
    path = write_entries(tmp_path, PROFILE, {"t": replace(ENTRY_A, host_reference=reading)})
    assert '"values_ms": [0.0312, 0.03199, 0.03235]' in path.read_text(encoding="utf-8")
    loaded = load_file(path).entries["t"].host_reference
    assert loaded == HostReading(reading.kernel, (0.0312, 0.03199, 0.03235))
    # An entry without one (recorded before, or on an Edge TPU) writes none.
    assert "host_reference" not in dumps(PROFILE, {"t": ENTRY_A})


@pytest.mark.parametrize(
    ("reading", "words"),
    [
        ([0.03, 0.031], "has a 'host_reference' of the wrong type"),
        ({"values_ms": [0.03, 0.031]}, "host_reference has no 'kernel'"),
        ({"kernel": 7, "values_ms": [0.03, 0.031]}, "host_reference has a 'kernel' of the wrong"),
        ({"kernel": "k", "values_ms": [0.03]}, "has a host_reference whose kernel is over 100"),
        ({"kernel": "k" * 101, "values_ms": [0.03, 0.031]}, "whose kernel is over 100"),
        ({"kernel": "k", "values_ms": [0.03, -1]}, "has a host_reference value that is not"),
        ({"kernel": "k", "values_ms": [0.03, "0.031"]}, "has a host_reference value that is not"),
        ({"kernel": "k", "values_ms": [0.03, 1e300]}, "has a host_reference value that is not"),
    ],
)
def test_a_damaged_host_reading_names_the_file(tmp_path: Path, reading: object, words: str) -> None:
    path = write_json(tmp_path / "cpu.json", document(host_reference=reading))
    with pytest.raises(BaselineError, match=re.escape(words)) as info:
        load_file(path)
    assert str(path) in str(info.value)


def test_an_infinite_host_reading_names_the_file(tmp_path: Path) -> None:
    text = json.dumps(document(host_reference={"kernel": "k", "values_ms": [0.03, 0.5]}))
    path = tmp_path / "cpu.json"
    path.write_text(text.replace("0.5]", "1e999]"), encoding="utf-8")
    with pytest.raises(BaselineError) as info:
        load_file(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------
# profiles

KEY_RE = re.compile(r"^[a-z0-9._-]+$")


@pytest.mark.parametrize(
    "fields",
    [
        {"device": "cpu", "arch": "x86_64", "cpu_model": "AMD EPYC", "runtime": "litert"},
        {"runtime": "litert", "cpu_model": "AMD EPYC", "arch": "x86_64", "device": "cpu"},
        {"cpu_model": "AMD EPYC", "device": "cpu", "runtime": "litert", "arch": "x86_64"},
    ],
    ids=["file-order", "reversed", "shuffled"],
)
def test_profile_key(fields: dict[str, str]) -> None:
    assert Profile(fields).key == "cpu-x86_64-amd-epyc-litert"


def test_profile_key_puts_unknown_fields_last_by_name() -> None:
    profile = Profile({"zeta": "z", "device": "usb", "alpha": "a", "libedgetpu": "16.0"})
    assert profile.key == "usb-16.0-a-z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("../../etc/passwd", "etc-passwd"),
        ("/abs/path", "abs-path"),
        ("a\x00b", "a-b"),
        ("  Spaces  Everywhere ", "spaces-everywhere"),
        ("..", "profile"),
        (".hidden", "hidden"),
        ("", "profile"),
        ("Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz", "intel-r-core-tm-i7-8650u-cpu-1.90ghz"),
    ],
    ids=["dotdot", "absolute", "nul", "spaces", "only-dots", "leading-dot", "empty", "intel"],
)
def test_profile_key_is_a_safe_file_name(value: str, expected: str) -> None:
    key = Profile({"device": value}).key
    assert key == expected
    assert KEY_RE.match(key)


def test_profile_key_of_a_very_long_name_is_truncated() -> None:
    key = Profile({"device": "cpu", "cpu_model": "x" * 500}).key
    assert len(key) == 120
    assert key == ("cpu-" + "x" * 500)[:120]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), st.text(max_size=200), max_size=6))
def test_profile_key_never_escapes(fields: dict[str, str]) -> None:
    key = Profile(fields).key
    assert KEY_RE.match(key), key
    assert not key.startswith(".")
    assert key not in {".", ".."}
    assert len(key) <= 120
    assert Path(f"{key}.json").name == f"{key}.json"


def test_profile_differences() -> None:
    other = Profile({"device": "cpu", "arch": "aarch64", "runtime": "litert", "extra": "1"})
    assert PROFILE.differences(other) == [
        "arch 'x86_64' vs 'aarch64'",
        "cpu_model 'AMD EPYC 7B13' vs '-'",
        "extra '-' vs '1'",
    ]
    assert PROFILE.differences(PROFILE) == []


# ---------------------------------------------------------------------------------------------
# load_file errors

RESTORE = "restore it from git (git checkout -- <file>) or delete it and record again with"


@pytest.mark.parametrize(
    ("content", "fix"),
    [
        ('{"format": "pytest-edgetpu-baselines", ', RESTORE),
        (dumps(PROFILE, ENTRIES)[:200], RESTORE),
        ("", RESTORE),
        ("not json at all", RESTORE),
        (b"\xff\xfe\x00garbage", RESTORE),
        ("[1, 2, 3]", "move it out of the baseline directory, or use another baseline directory"),
        ('{"name": "package.json"}', "move it out of the baseline directory"),
        ('"pytest-edgetpu-baselines"', "move it out of the baseline directory"),
        ('{"format": "pytest-benchmark"}', "move it out of the baseline directory"),
    ],
    ids=[
        "invalid-json",
        "truncated",
        "empty",
        "text",
        "not-utf8",
        "json-list",
        "foreign-object",
        "json-string",
        "other-format",
    ],
)
def test_load_file_rejects_unreadable_or_foreign_files(
    tmp_path: Path, content: str | bytes, fix: str
) -> None:
    path = tmp_path / "cpu.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(BaselineError) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert fix in message


def test_load_file_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(BaselineError, match=r"is not a readable baseline file"):
        load_file(path)


def test_load_file_future_schema_version(tmp_path: Path) -> None:
    path = write_json(tmp_path / "cpu.json", {**document(), "schema_version": 99})
    with pytest.raises(BaselineError) as info:
        load_file(path)
    assert str(info.value) == (
        f"{path} has schema version 99, newer than this pytest-edgetpu reads (1); "
        "upgrade pytest-edgetpu"
    )


@pytest.mark.parametrize(
    ("version", "shown"),
    [(0, "0"), (-1, "-1"), ("1", "'1'"), (1.0, "1.0"), (None, "None")],
    ids=["zero", "negative", "string", "float", "null"],
)
def test_load_file_invalid_schema_version(tmp_path: Path, version: object, shown: str) -> None:
    path = write_json(tmp_path / "cpu.json", {**document(), "schema_version": version})
    with pytest.raises(BaselineError) as info:
        load_file(path)
    assert str(info.value) == f"{path}: invalid schema_version {shown}; restore it from git"


def test_load_file_missing_schema_version(tmp_path: Path) -> None:
    doc = document()
    del doc["schema_version"]
    path = write_json(tmp_path / "cpu.json", doc)
    with pytest.raises(BaselineError, match=r"invalid schema_version None; restore it from git"):
        load_file(path)


def test_load_file_boolean_schema_version(tmp_path: Path) -> None:
    path = write_json(tmp_path / "cpu.json", {**document(), "schema_version": True})
    with pytest.raises(BaselineError, match=r"invalid schema_version True"):
        load_file(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("profile", ["cpu"]),
        ("profile", {"device": 1}),
        ("profile", None),
        ("entries", []),
        ("entries", None),
    ],
    ids=["profile-list", "profile-number", "profile-missing", "entries-list", "entries-missing"],
)
def test_load_file_malformed_profile_or_entries(tmp_path: Path, key: str, value: object) -> None:
    path = write_json(tmp_path / "cpu.json", {**document(), key: value})
    with pytest.raises(BaselineError) as info:
        load_file(path)
    assert str(info.value) == (
        f'{path}: "profile" must map names to strings and "entries" must be an object; '
        "restore the file from git"
    )


def entry_error(path: Path, what: str) -> str:
    return (
        f"{path}: entry 't' {what}; restore the file from git or record the test again with "
        "--edgetpu-update-baselines"
    )


REQUIRED = (
    "metric",
    "instance_values_ms",
    "summary_ms",
    "load_ms",
    "first_inference_ms",
    "num_threads",
    "workers",
    "recorded",
)


@pytest.mark.parametrize("name", REQUIRED)
def test_load_file_entry_missing_a_required_field(tmp_path: Path, name: str) -> None:
    doc = document()
    del doc["entries"]["t"][name]
    path = write_json(tmp_path / "cpu.json", doc)
    with pytest.raises(BaselineError) as info:
        load_file(path)
    assert str(info.value) == entry_error(path, f"has no {name!r}")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("metric", 50),
        ("instance_values_ms", "1.0, 2.0"),
        ("summary_ms", [1.0]),
        ("load_ms", "12"),
        ("first_inference_ms", True),
        ("num_threads", 1.5),
        ("workers", False),
        ("recorded", 20261120),
    ],
    ids=list(REQUIRED),
)
def test_load_file_entry_field_of_the_wrong_type(tmp_path: Path, name: str, value: object) -> None:
    path = write_json(tmp_path / "cpu.json", document(**{name: value}))
    with pytest.raises(BaselineError) as info:
        load_file(path)
    assert str(info.value) == entry_error(path, f"has a {name!r} of the wrong type")


@pytest.mark.parametrize(
    "values",
    [[], [1.0], [1.0, -1.0], [1.0, 0], [1.0, "2"], [1.0, True], [1.0, None]],
    ids=["empty", "one", "negative", "zero", "string", "bool", "null"],
)
def test_load_file_bad_instance_values(tmp_path: Path, values: list[object]) -> None:
    path = write_json(tmp_path / "cpu.json", document(instance_values_ms=values))
    with pytest.raises(BaselineError) as info:
        load_file(path)
    assert str(info.value) == entry_error(
        path,
        "needs at least two instance_values_ms, each a latency from 1 ns to 1 h in milliseconds",
    )


def test_load_file_summary_without_the_metric(tmp_path: Path) -> None:
    path = write_json(tmp_path / "cpu.json", document(summary_ms={"p90": 1.0}))
    with pytest.raises(BaselineError) as info:
        load_file(path)
    assert str(info.value) == entry_error(path, "has no summary_ms value for its metric 'p50'")


@pytest.mark.parametrize(
    ("summary", "words"),
    [
        ({"p50": "1.0"}, "'p50' of '1.0', which is not a latency from 1 ns to 1 h in milliseconds"),
        ({"p50": None}, "'p50' of None, which is not a latency from 1 ns to 1 h in milliseconds"),
        ({"p50": True}, "'p50' of True, which is not a latency from 1 ns to 1 h in milliseconds"),
        ({"p50": 0}, "'p50' of 0, which is not a latency from 1 ns to 1 h in milliseconds"),
        (
            {"p50": 1.0, "p90": 1e300},
            "'p90' of 1e+300, which is not a latency from 1 ns to 1 h in milliseconds",
        ),
        ({"p50": 1.0, "n": 2.5}, "'n' of 2.5, which is not a whole number of samples"),
        ({"p50": 1.0, "n": -1}, "'n' of -1, which is not a whole number of samples"),
    ],
    ids=["string", "null", "bool", "zero", "huge", "n-float", "n-negative"],
)
def test_load_file_bad_summary(tmp_path: Path, summary: dict[str, object], words: str) -> None:
    path = write_json(tmp_path / "cpu.json", document(summary_ms=summary))
    with pytest.raises(BaselineError) as info:
        load_file(path)
    assert str(info.value) == entry_error(path, f"has a summary_ms {words}")


def test_load_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    with path.open("wb") as handle:
        handle.truncate(16 * 1024 * 1024 + 1)  # sparse: no 16 MiB written
    with pytest.raises(BaselineError) as info:
        load_file(path)
    assert str(info.value).startswith(
        f"{path} is not a readable baseline file (16777217 bytes is more than 16777216)"
    )


# ---------------------------------------------------------------------------------------------
# write_entries


def test_write_entries_creates_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "baselines"
    path = write_entries(directory, PROFILE, {"t": small_entry()})
    assert path.parent == directory
    assert load_file(path).entries == {"t": rounded(small_entry())}


def test_write_entries_merges_with_other_tests(tmp_path: Path) -> None:
    write_entries(tmp_path, PROFILE, {"a": small_entry(1.0), "b": small_entry(2.0)})
    path = write_entries(tmp_path, PROFILE, {"c": small_entry(3.0)})
    assert load_file(path).entries == {
        "a": rounded(small_entry(1.0)),
        "b": rounded(small_entry(2.0)),
        "c": rounded(small_entry(3.0)),
    }


def test_write_entries_replaces_the_same_test(tmp_path: Path) -> None:
    write_entries(tmp_path, PROFILE, {"a": small_entry(1.0), "b": small_entry(2.0)})
    path = write_entries(tmp_path, PROFILE, {"a": small_entry(5.0, metric="p90")})
    assert load_file(path).entries == {
        "a": rounded(small_entry(5.0, metric="p90")),
        "b": rounded(small_entry(2.0)),
    }


def test_write_entries_refuses_a_file_of_another_profile(tmp_path: Path) -> None:
    # Different fields that slug to the same file name, cpu-x86.
    mine = Profile({"device": "cpu-x86"})
    theirs = Profile({"device": "cpu", "arch": "x86"})
    assert mine.key == theirs.key == "cpu-x86"
    path = write_entries(tmp_path, theirs, {"a": small_entry()})
    before = path.read_bytes()
    with pytest.raises(BaselineError) as info:
        write_entries(tmp_path, mine, {"b": small_entry()})
    assert str(info.value) == (
        f"{path} holds the profile {{'arch': 'x86', 'device': 'cpu'}}, not "
        "{'device': 'cpu-x86'}; move the file aside before recording"
    )
    assert path.read_bytes() == before
    assert temp_files(tmp_path) == []


def test_write_entries_refuses_to_overwrite_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / f"{PROFILE.key}.json"
    path.write_text("{ half a file", encoding="utf-8")
    with pytest.raises(BaselineError, match=r"is not a readable baseline file"):
        write_entries(tmp_path, PROFILE, {"a": small_entry()})
    assert path.read_text(encoding="utf-8") == "{ half a file"


def test_write_entries_leaves_no_temp_files(tmp_path: Path) -> None:
    for value in (1.0, 2.0, 3.0):
        write_entries(tmp_path, PROFILE, {f"t{value}": small_entry(value)})
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [f"{PROFILE.key}.json"]


def test_write_entries_file_mode_follows_the_umask(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = write_entries(tmp_path, PROFILE, {"a": small_entry()})
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_write_entries_read_only_directory(tmp_path: Path) -> None:
    path = write_entries(tmp_path, PROFILE, {"a": small_entry()})
    before = path.read_bytes()
    tmp_path.chmod(0o555)
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("chmod does not make a directory read-only for this user (root)")
        with pytest.raises(BaselineError) as info:
            write_entries(tmp_path, PROFILE, {"b": small_entry()})
    finally:
        tmp_path.chmod(0o755)
    message = str(info.value)
    assert message.startswith(f"cannot write {path}: ")
    assert message.endswith("; the previous file is unchanged")
    assert path.read_bytes() == before


def test_write_entries_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a read-only directory does for a non-root user, simulated so it runs as root too.
    path = write_entries(tmp_path, PROFILE, {"a": small_entry()})
    before = path.read_bytes()

    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(BaselineError) as info:
        write_entries(tmp_path, PROFILE, {"b": small_entry()})
    assert str(info.value) == (
        f"cannot write {path}: [Errno 13] Permission denied: '{tmp_path}'; "
        "the previous file is unchanged"
    )
    assert path.read_bytes() == before


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_write_entries_disk_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = write_entries(tmp_path, PROFILE, {"a": small_entry()})
    before = path.read_bytes()

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, full)
    with pytest.raises(BaselineError) as info:
        write_entries(tmp_path, PROFILE, {"b": small_entry()})
    monkeypatch.undo()
    assert str(info.value) == (
        f"cannot write {path}: [Errno 28] No space left on device; the previous file is unchanged"
    )
    assert isinstance(info.value.__cause__, OSError)
    assert path.read_bytes() == before
    assert temp_files(tmp_path) == []


def test_write_entries_interrupted_write_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_entries(tmp_path, PROFILE, {"a": small_entry()})
    before = path.read_bytes()

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_entries(tmp_path, PROFILE, {"b": small_entry()})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert temp_files(tmp_path) == []


def _write_many(directory: str, prefix: str, count: int) -> None:
    for i in range(count):
        write_entries(Path(directory), PROFILE, {f"{prefix}{i}": small_entry(1.0 + i)})


def test_concurrent_writers_keep_each_others_entries(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    writers = [
        context.Process(target=_write_many, args=(str(tmp_path), prefix, 20))
        for prefix in ("a", "b")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    assert [w.exitcode for w in writers] == [0, 0]
    entries = load_file(tmp_path / f"{PROFILE.key}.json").entries
    assert sorted(entries) == sorted(f"{p}{i}" for p in "ab" for i in range(20))
    assert temp_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# BaselineStore

USB = Profile({"device": "usb", "libedgetpu": "16.0", "runtime": "litert"})


def test_store_lookup(tmp_path: Path) -> None:
    write_entries(tmp_path, PROFILE, {"t": small_entry(1.0), "only-cpu": small_entry(2.0)})
    write_entries(tmp_path, USB, {"t": small_entry(3.0), "only-usb": small_entry(4.0)})
    store = BaselineStore(tmp_path, "--edgetpu-baseline-dir")
    assert sorted(store.files) == [PROFILE.key, USB.key]

    # Another profile is named with what sets it apart, as the INCOMPARABLE line shows it.
    usb = f"{USB.key} ({', '.join(USB.differences(PROFILE))})"
    assert usb.startswith(f"{USB.key} (arch '-' vs ")
    assert store.lookup("t", PROFILE) == Lookup(
        tmp_path / f"{PROFILE.key}.json", rounded(small_entry(1.0)), (usb,)
    )
    assert store.lookup("only-cpu", PROFILE) == Lookup(
        tmp_path / f"{PROFILE.key}.json", rounded(small_entry(2.0)), ()
    )
    assert store.lookup("only-usb", PROFILE) == Lookup(
        tmp_path / f"{PROFILE.key}.json", None, (usb,)
    )
    assert store.lookup("nowhere", PROFILE) == Lookup(tmp_path / f"{PROFILE.key}.json", None, ())


def test_store_lookup_for_a_profile_without_a_file(tmp_path: Path) -> None:
    write_entries(tmp_path, PROFILE, {"t": small_entry()})
    store = BaselineStore(tmp_path, "--edgetpu-baseline-dir")
    cpu = f"{PROFILE.key} ({', '.join(PROFILE.differences(USB))})"
    assert store.lookup("t", USB) == Lookup(tmp_path / f"{USB.key}.json", None, (cpu,))
    assert store.path_for(USB) == tmp_path / "usb-16.0-litert.json"


def test_store_lookup_never_uses_another_profiles_file(tmp_path: Path) -> None:
    # "AMD EPYC 7B13" and "amd-epyc-7b13" are different profiles with the same file name.
    theirs = Profile({"device": "cpu", "cpu_model": "AMD EPYC 7B13"})
    mine = Profile({"device": "cpu", "cpu_model": "amd-epyc-7b13"})
    assert mine.key == theirs.key
    write_entries(tmp_path, theirs, {"t": small_entry()})
    assert BaselineStore(tmp_path, "--edgetpu-baseline-dir").lookup("t", mine).entry is None


def test_store_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "absent", "--edgetpu-baseline-dir")
    assert store.files == {}
    assert store.lookup("t", PROFILE) == Lookup(
        tmp_path / "absent" / f"{PROFILE.key}.json", None, ()
    )


def test_a_copy_of_a_profiles_file_says_which_file_already_holds_it(tmp_path: Path) -> None:
    write_entries(tmp_path, PROFILE, {"t": small_entry()})
    copy = tmp_path / "old.json"
    copy.write_text((tmp_path / f"{PROFILE.key}.json").read_text())
    with pytest.raises(BaselineError) as info:
        BaselineStore(tmp_path, "--edgetpu-baseline-dir")
    assert str(info.value) == (
        f"{copy} holds the baselines of profile {PROFILE.key!r}, which {PROFILE.key}.json "
        "beside it holds too; move the entries you want into that file and delete this one"
    )


def test_store_ignores_files_that_are_not_json(tmp_path: Path) -> None:
    write_entries(tmp_path, PROFILE, {"t": small_entry()})
    (tmp_path / "README.md").write_text("# baselines\n", encoding="utf-8")
    assert sorted(BaselineStore(tmp_path, "--edgetpu-baseline-dir").files) == [PROFILE.key]


@pytest.mark.parametrize(
    ("content", "words"),
    [("{", "is not a readable baseline file"), ("[]", "is not a pytest-edgetpu baseline file")],
    ids=["corrupt", "foreign"],
)
def test_store_refuses_a_bad_file_at_construction(tmp_path: Path, content: str, words: str) -> None:
    write_entries(tmp_path, PROFILE, {"t": small_entry()})
    bad = tmp_path / "zz-broken.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(BaselineError) as info:
        BaselineStore(tmp_path, "--edgetpu-baseline-dir")
    assert str(info.value).startswith(str(bad))
    assert words in str(info.value)


# ---------------------------------------------------------------------------------------------
# bad baseline files: the run stops naming the file, and the file is never overwritten


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda doc: json.dumps(doc)[:200],
            "ERROR: {path} is not a readable baseline file (*line 1 column 201 (char 200));"
            " restore it from git (git checkout -- <file>) or delete it and record again with"
            " --edgetpu-update-baselines",
        ),
        (
            lambda doc: json.dumps({**doc, "schema_version": 2}),
            "ERROR: {path} has schema version 2, newer than this pytest-edgetpu reads (1);"
            " upgrade pytest-edgetpu",
        ),
        (
            lambda doc: json.dumps({**doc, "profile": {**doc["profile"], "cpu_model": "Other"}}),
            "ERROR: {path} holds the baselines of profile 'cpu-*-other-litert'; rename it to"
            " cpu-*-other-litert.json (the name selects the profile)",
        ),
        (
            lambda doc: json.dumps(
                {
                    **doc,
                    "entries": {
                        "test_files.py::test_a": {
                            k: v
                            for k, v in doc["entries"]["test_files.py::test_a"].items()
                            if k != "instance_values_ms"
                        }
                    },
                }
            ),
            "ERROR: {path}: entry 'test_files.py::test_a' has no 'instance_values_ms'; restore"
            " the file from git or record the test again with --edgetpu-update-baselines",
        ),
        (
            lambda doc: "\x00\xff binary",
            "ERROR: {path} is not a readable baseline file (Expecting value: line 1 column 1"
            " (char 0)); restore it from git (git checkout -- <file>) or delete it and record"
            " again with --edgetpu-update-baselines",
        ),
    ],
    ids=["truncated", "future-schema", "other-profile", "missing-field", "binary"],
)
def test_bad_baseline_files_stop_the_run_naming_the_file(
    project: pytest.Pytester, damage: Any, message: str
) -> None:
    path = record(project, "test_files.py::test_a")
    path.write_text(damage(json.loads(path.read_text(encoding="utf-8"))), encoding="utf-8")
    before = path.read_bytes()
    project.makepyfile(test_files=bench_file("test_a"))
    for args in (["--edgetpu"], ["--edgetpu-update-baselines"]):
        result = project.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([message.format(path=path)])
        assert_clean(result)
    assert path.read_bytes() == before


def test_a_baseline_of_another_profile_is_never_compared(project: pytest.Pytester) -> None:
    other = Profile({**cpu_profile().fields, "cpu_model": "Other CPU"})
    write_entries(project.path / "baselines", other, {"test_files.py::test_a": entry(1.0)})
    project.makepyfile(test_files=bench_file("test_a"))
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_files.py::test_a: INCOMPARABLE p50 * ms on cpu (*): baselines exist only for"
            " other device profiles: cpu-*-other-cpu-litert (cpu_model 'Other CPU' vs *);"
            " never compared with cpu-*; record one for this device with"
            " --edgetpu-update-baselines"
        ]
    )


# ---------------------------------------------------------------------------------------------
# writing: disk full, unsafe test ids, gates that only read


def test_disk_full_while_writing_keeps_the_previous_file(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = record(project, "test_disk.py::test_a")
    before = path.read_bytes()
    project.makepyfile(test_disk=bench_file("test_a"))

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = project.runpytest("--edgetpu-update-baselines")
    gate = project.runpytest("--edgetpu", "--edgetpu-json=out/r.json")
    monkeypatch.undo()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"edgetpu: ERROR: cannot write {path}: [Errno 28] No space left on device; the"
            " previous file is unchanged"
        ]
    )
    assert_clean(result)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert gate.ret == pytest.ExitCode.TESTS_FAILED
    gate.stdout.fnmatch_lines(
        [f"edgetpu: ERROR: cannot write {project.path}/out/r.json: No space left on device"]
    )
    assert list((project.path / "out").iterdir()) == []


UNSAFE_IDS = ["../../../etc/passwd", "a/b\\c:d*?<>|", "new\nline", "ünï😀", "\udc80", ""]


def test_test_ids_unsafe_in_file_names_stay_keys_in_one_file(
    project: pytest.Pytester, short_ini: str
) -> None:
    # Unescaped ids, the rawest a test id gets (pytest escapes non-ASCII ones by default).
    project.makeini(
        short_ini + "disable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n"
    )
    project.makepyfile(
        test_ids=f"""
        import pytest

        @pytest.mark.parametrize("x", {UNSAFE_IDS!r})
        @pytest.mark.tpu_bench(model="models/tiny_dense.tflite")
        def test_id(tpu_bench, x):
            tpu_bench()
        """
    )
    # pytest's own cache cannot store a raw lone surrogate: that is pytest's to solve.
    recorded = project.runpytest("--edgetpu-update-baselines", "-p", "no:cacheprovider")
    recorded.assert_outcomes(passed=len(UNSAFE_IDS))
    assert_clean(recorded)
    (path,) = (project.path / "baselines").iterdir()
    assert path.name == f"{cpu_profile().key}.json"
    assert len(load_file(path).entries) == len(UNSAFE_IDS)
    gated = project.runpytest(
        "--edgetpu", "--edgetpu-json=r.json", "--edgetpu-threshold=900%", "-p", "no:cacheprovider"
    )
    gated.assert_outcomes(passed=len(UNSAFE_IDS))
    results = json.loads((project.path / "r.json").read_text(encoding="utf-8"))["results"]
    # Every test found its own entry again.
    assert "NO_BASELINE" not in {r["verdict"]["status"] for r in results}


def test_a_gate_run_never_modifies_the_baselines(project: pytest.Pytester) -> None:
    # A baseline a thousand times faster than the model: the gate finds a regression.
    record(project, "test_gate.py::test_a", value_ms=0.0001)
    before = snapshot(project.path / "baselines")
    project.makepyfile(test_gate=bench_file("test_a", "test_b"))
    result = project.runpytest("--edgetpu", "--edgetpu-json=r.json", "--edgetpu-report=r.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*REGRESSION p50 (compared p5) *confirmed*"])
    assert snapshot(project.path / "baselines") == before


# ---------------------------------------------------------------------------------------------
# updates keep what did not run, unless asked to prune


def test_an_update_keeps_entries_of_tests_that_did_not_run(project: pytest.Pytester) -> None:
    path = record(
        project, "test_keep.py::test_a", "test_keep.py::test_skipped", "test_gone.py::test_x"
    )
    project.makepyfile(
        test_keep=bench_file("test_a", "test_b")
        + "\n\n@pytest.mark.skip(reason='not today')\ndef test_skipped(tpu_bench):\n"
        "    tpu_bench()\n"
    )
    result = project.runpytest("--edgetpu-update-baselines", "-k", "test_a or test_skipped")
    result.assert_outcomes(passed=1, skipped=1, deselected=1)
    result.stdout.fnmatch_lines(
        ["test_gone.py::test_x: kept (not run)", "test_keep.py::test_skipped: kept (not run)"],
        consecutive=False,
    )
    assert entries_of(path) == [
        "test_gone.py::test_x",
        "test_keep.py::test_a",
        "test_keep.py::test_skipped",
    ]


def test_prune_removes_entries_of_tests_that_did_not_run(project: pytest.Pytester) -> None:
    path = record(
        project,
        "test_prune.py::test_a",
        "test_prune.py::test_a#2",
        "test_prune.py::test_failing",
        "test_prune.py::test_skipped",
        "test_prune.py::test_deselected",
        "test_gone.py::test_x",
    )
    project.makepyfile(
        test_prune=bench_file("test_a", "test_deselected")
        + "\n\n@pytest.mark.skip(reason='not today')\ndef test_skipped(tpu_bench):\n"
        "    tpu_bench()\n\n\ndef test_failing(tpu_bench):\n    assert False\n"
    )
    # Both runs record whatever the host's noise: the second one re-records test_a against what
    # the first measured, and an UNSTABLE comparison would leave the file unwritten (CI saw it).
    update = (
        "--edgetpu-update-baselines",
        "--edgetpu-accept-unstable",
        "--edgetpu-prune-baselines",
    )
    stopped = project.runpytest(*update, "-x")
    stopped.stdout.fnmatch_lines(["edgetpu: not pruned: the run stopped early (-x or --maxfail)"])
    assert len(entries_of(path)) == 6
    result = project.runpytest(*update, "-k", "not test_deselected")
    result.assert_outcomes(passed=1, failed=1, skipped=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "edgetpu: pruned from baselines/*.json (not measured in this run):"
            " test_gone.py::test_x, test_prune.py::test_a#2, test_prune.py::test_deselected,"
            " test_prune.py::test_skipped"
        ]
    )
    assert [line for line in result.stdout.lines if "kept" in line] == [
        "test_prune.py::test_failing: kept (not run)"
    ]
    # A failing test is broken, not gone: its entry stays.
    assert entries_of(path) == ["test_prune.py::test_a", "test_prune.py::test_failing"]


# ---------------------------------------------------------------------------------------------
# processes: concurrent updates, a SIGKILL mid-update

#: Loaded into the pytest processes below: a test waits for a file before it ends, and with
#: SLOW_WRITE every baseline write holds the lock a moment, so two writers must meet there.
PROCESS_CONFTEST = """
import os
import time
from pathlib import Path

import pytest

_replace = os.replace


def _slow_replace(src, dst):
    # Between the complete temporary file and the rename, with the directory locked.
    if Path(dst).parent.name == "baselines":
        Path(os.environ["MARK_DIR"], f"writing-{os.getpid()}").touch()
        time.sleep(float(os.environ["SLOW_WRITE"]))
    _replace(src, dst)


os.replace = _slow_replace


@pytest.fixture
def meet():
    def wait_for(name):
        marks = Path(os.environ["MARK_DIR"])
        (marks / f"{os.environ['ME']}-{name}").touch()
        deadline = time.monotonic() + 60
        while not (marks / f"go-{name}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    return wait_for
"""


def start_pytest(
    project: pytest.Pytester, me: str, *args: str, slow_write: float, own_group: bool = False
) -> subprocess.Popen[str]:
    """A pytest process in the project; ``me`` names it in its marker files. With
    ``own_group`` it leads a process group of its own, as a shell's foreground job does, which
    a Ctrl-C reaches as a whole."""
    marks = project.path / "marks"
    env = {
        **os.environ,
        "ME": me,
        "MARK_DIR": str(marks),
        "SLOW_WRITE": str(slow_write),
        # Each process its own leases: both may measure on cpu:0, even on a one-core host.
        "PYTEST_EDGETPU_LEASE_DIR": str(marks / f"leases-{me}"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=own_group,
        # A shell starts background jobs with SIGINT ignored, and Python then installs no
        # KeyboardInterrupt handler: give the child the default a foreground job has.
        preexec_fn=default_sigint if own_group else None,
    )


def wait_for_files(*paths: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"timed out waiting for {paths}"
        time.sleep(0.05)


#: An update whose measurement must be recorded however busy the host is: these processes
#: measure side by side on purpose, and the test is about the write, not the measurement.
WAITING_TEST = """
import pytest


@pytest.mark.tpu_bench(model="models/tiny_dense.tflite")
def test_{name}(tpu_bench, meet):
    tpu_bench()
    meet("measured")
"""


def test_two_concurrent_updates_keep_both_runs_entries(project: pytest.Pytester) -> None:
    project.makeconftest(PROCESS_CONFTEST)
    (project.path / "marks").mkdir()
    path = record(project, "test_earlier.py::test_x")
    project.makepyfile(
        test_one=WAITING_TEST.format(name="one"), test_two=WAITING_TEST.format(name="two")
    )
    runs = [
        start_pytest(project, name, f"test_{name}.py", *RECORDING_UPDATE, slow_write=0.5)
        for name in ("one", "two")
    ]
    try:
        # Both measured; released together, both write at once and meet at the lock.
        marks = project.path / "marks"
        wait_for_files(marks / "one-measured", marks / "two-measured")
        (marks / "go-measured").touch()
        outputs = [run.communicate(timeout=TIMEOUT_S)[0] for run in runs]
    finally:
        for run in runs:
            run.kill()
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert len(list(marks.glob("writing-*"))) == 2
    assert entries_of(path) == [
        "test_earlier.py::test_x",
        "test_one.py::test_one",
        "test_two.py::test_two",
    ]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("moment", ["measuring", "writing"])
def test_sigkill_mid_update_leaves_the_previous_file_intact(
    project: pytest.Pytester, moment: str
) -> None:
    project.makeconftest(PROCESS_CONFTEST)
    marks = project.path / "marks"
    marks.mkdir()
    path = record(project, "test_killed.py::test_killed")
    before = path.read_bytes()
    project.makepyfile(test_killed=WAITING_TEST.format(name="killed"))
    run = start_pytest(project, "victim", *RECORDING_UPDATE, slow_write=TIMEOUT_S)
    try:
        if moment == "measuring":
            wait_for_files(marks / "victim-measured")
        else:
            (marks / "go-measured").touch()
            wait_for_files(marks / f"writing-{run.pid}")
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=TIMEOUT_S)
    finally:
        run.kill()
    assert run.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    if moment == "writing":
        # Killed between the complete temporary file and the rename: a hidden leftover.
        (leftover,) = leftovers
        assert leftover.startswith(f".{path.name}.") and leftover.endswith(".tmp")
    else:
        assert leftovers == []
    # The next write removes what the killed writer left.
    write_entries(path.parent, cpu_profile(), {"test_next.py::test_y": entry(2.0)})
    assert entries_of(path) == ["test_killed.py::test_killed", "test_next.py::test_y"]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_ctrl_c_under_xdist_writes_nothing(project: pytest.Pytester) -> None:
    project.makeconftest(PROCESS_CONFTEST)
    marks = project.path / "marks"
    marks.mkdir()
    path = record(project, "test_earlier.py::test_x")
    before = path.read_bytes()
    project.makepyfile(
        test_one=WAITING_TEST.format(name="one"), test_two=WAITING_TEST.format(name="two")
    )
    run = start_pytest(
        project,
        "ctrl-c",
        "-n",
        "2",
        "--edgetpu-update-baselines",
        "--edgetpu-json=r.json",
        slow_write=0,
        own_group=True,
    )
    try:
        # Both workers measured and wait in their tests: the controller holds both records.
        wait_for_files(marks / "ctrl-c-measured")
        time.sleep(0.5)
        os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends the foreground job
        output = run.communicate(timeout=TIMEOUT_S)[0]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "edgetpu: interrupted: no baselines, results or report written" in output
    assert "INTERNALERROR" not in output
    assert path.read_bytes() == before
    assert not (project.path / "r.json").exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_results_write_removes_only_the_temporary_files_of_dead_writers(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    # Above Linux's largest pid (4194304): a writer that can no longer exist.
    dead = tmp_path / ".results.json.999999999.k1ll3d.tmp"
    live = tmp_path / f".results.json.{os.getpid()}.wr1t1ng.tmp"
    other = tmp_path / ".report.md.999999999.k1ll3d.tmp"
    for leftover in (dead, live, other):
        leftover.write_text("{", encoding="utf-8")
    write_text(path, "{}\n")
    assert path.read_text(encoding="utf-8") == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, live.name, other.name])


# ---------------------------------------------------------------------------------------------
# numbers are finite and in range before any statistic sees them


def baseline_text(**overrides: Any) -> str:
    document = json.loads(dumps(Profile({"device": "cpu"}), {"t": entry(1.0)}))
    document["entries"]["t"].update(overrides)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('"load_ms": 1e999', "1e999 is not a finite number"),
        ('"load_ms": -1e999', "-1e999 is not a finite number"),
        ('"n": 1e999', "1e999 is not a finite number"),
        ('"load_ms": ' + "9" * 5000, "an integer of 5000 digits is out of range"),
    ],
    ids=["inf", "minus-inf", "n-inf", "5000-digits"],
)
def test_non_finite_and_huge_literals_are_refused_when_parsed(
    tmp_path: Path, raw: str, words: str
) -> None:
    path = tmp_path / "cpu.json"
    text = baseline_text().replace('"load_ms": 1.0', raw.replace('"n"', '"load_ms"'))
    path.write_text(text)
    with pytest.raises(BaselineError) as caught:
        load_file(path)
    assert f"is not a readable baseline file ({words})" in str(caught.value)
    assert "set_int_max_str_digits" not in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"instance_values_ms": [1e300, 1.0]}, "needs at least two instance_values_ms"),
        ({"instance_values_ms": [1e-320, 1.0]}, "needs at least two instance_values_ms"),
        ({"load_ms": 1e300}, "has a load_ms or first_inference_ms that is negative or over"),
        ({"num_threads": 10**6}, "needs num_threads of 1..256"),
        ({"workers": 10**9}, "needs num_threads of 1..256 and workers of 1..4096"),
    ],
    ids=["huge-instance", "subnormal-instance", "huge-load", "threads", "workers"],
)
def test_out_of_range_numbers_are_refused_naming_the_entry(
    tmp_path: Path, overrides: dict[str, Any], words: str
) -> None:
    path = tmp_path / "cpu.json"
    path.write_text(baseline_text(**overrides))
    with pytest.raises(BaselineError, match=f"entry 't' {words}"):
        load_file(path)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    path.write_text(baseline_text().replace('"load_ms": 1.0', '"load_ms": 1.0, "load_ms": 9.0'))
    with pytest.raises(BaselineError, match="the key 'load_ms' appears twice in one object"):
        load_file(path)


latencies = st.floats(min_value=MIN_LATENCY_MS, max_value=MAX_DURATION_MS)


@given(st.lists(latencies, min_size=2, max_size=12), st.lists(latencies, min_size=2, max_size=12))
def test_the_shift_is_total_over_every_latency_validation_lets_through(
    baseline: list[float], current: list[float]
) -> None:
    change = shift(baseline, current)
    for figure in (change.estimate, change.low, change.high, change.resolution):
        assert figure == figure and abs(figure) < float("inf")


def test_an_update_next_to_a_corrupt_number_stops_before_measuring_and_loses_nothing(
    project: pytest.Pytester,
) -> None:
    path = record(project, "test_a.py::test_other")
    path.write_text(path.read_text().replace('"load_ms": 1.0', '"load_ms": 1e999'))
    before = path.read_bytes()
    project.makepyfile(test_a=single_bench_file())
    result = project.runpytest("--edgetpu-update-baselines")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {path} is not a readable baseline file (1e999 is not a finite number); *"]
    )
    assert path.read_bytes() == before
    assert_clean(result)


def test_compare_and_accept_refuse_out_of_range_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = result_json(result("t", "PASS", 1.0))
    bad_values = {**base, "instance_values_ms": [1e300, 1.0]}
    bad_entry = {
        **base,
        "baseline_entry": {**entry(1.0).to_json(), "instance_values_ms": [1e-320, 1.0]},
    }
    for record_, words in (
        (bad_values, "t has no usable instance_values_ms"),
        (bad_entry, "entry 't' needs at least two instance_values_ms"),
    ):
        document = {
            "format": "pytest-edgetpu-results",
            "schema_version": 1,
            "profiles": {record_["profile"]: {"device": "cpu"}},
            "results": [record_],
        }
        results = tmp_path / "r.json"
        results.write_text(json.dumps(document))
        for command in ("compare", "accept"):
            assert main([command, str(results), "--baseline-dir", str(tmp_path / "b")]) == 2
            assert words in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@needs_git
def test_diff_against_a_revision_whose_value_is_zero_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    baselines = tmp_path / "baselines"
    path = write_entries(baselines, Profile({"device": "cpu"}), {"t": entry(1.0)})
    zero = json.loads(path.read_text())
    zero["entries"]["t"]["summary_ms"]["p50"] = 0
    path.write_text(json.dumps(zero))
    commit_everything(tmp_path, "zero")
    path.write_text(dumps(Profile({"device": "cpu"}), {"t": entry(2.0)}))
    monkeypatch.chdir(tmp_path)
    assert main(["diff", "HEAD"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pytest-edgetpu: error: HEAD:baselines/cpu.json: entry 't' has a")
    assert "'p50' of 0, which is not a latency" in err
