"""Unit tests of pytest_edgetpu.judge.baselines: the file format, validation, profiles, safe
writes."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import re
import stat
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgetpu.core.errors import BaselineError
from pytest_edgetpu.device.profile import Profile
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
