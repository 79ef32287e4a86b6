"""Hostile files, numbers, paths and a shared lease directory (issue 14's red-team cases).

Each case is what a careless user or another local user of the host can do: plant a symlink
where the plugin writes, name a FIFO or a device like a file it reads, write 1e999 or 1e300
into a JSON file, put a newline or a NUL in a path, ask for a million threads. Each ends in one
line naming the file or option, with nothing followed, hung on, overwritten or lost. The tests
run as root in CI, so "another user" is a file or directory chowned to an unused uid.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import entry, record, result
from hypothesis import given
from hypothesis import strategies as st

from pytest_edgetpu.cli import main
from pytest_edgetpu.core import jsonio
from pytest_edgetpu.core.errors import BaselineError, DeviceBusyError, DeviceError, ModelError
from pytest_edgetpu.core.limits import MAX_DURATION_MS, MIN_LATENCY_MS
from pytest_edgetpu.core.stats import shift
from pytest_edgetpu.device import leases
from pytest_edgetpu.device.leases import acquire
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.judge.baselines import dumps, load_file, write_entries
from pytest_edgetpu.judge.results_file import result_json
from pytest_edgetpu.model.inspection import inspect_model

#: A uid no account on the test host has: the "other user" of these tests.
OTHER_UID = 54321
NOT_CLEAN = ("Traceback", "INTERNALERROR", "node down", "During handling", "pytest_edgetpu/")
TIMEOUT_S = 60

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="making a file another user's needs root (chown); CI runs as root",
)


def assert_clean(result: pytest.RunResult) -> None:
    output = result.stdout.str() + result.stderr.str()
    for words in NOT_CLEAN:
        assert words not in output, words


def bench_file(marker: str = 'model="models/tiny_dense.tflite"', call: str = "") -> str:
    return (
        "import pytest\n\n\n"
        f"@pytest.mark.tpu_bench({marker})\n"
        f"def test_a(tpu_bench):\n    tpu_bench({call})\n"
    )


# ---------------------------------------------------------------------------------------------
# 1, 2: the lease directory and its lock files


@pytest.fixture
def lease_root(tmp_path: Path) -> Path:
    """A stand-in for /tmp: a root-owned sticky directory anyone may write."""
    root = tmp_path / "tmp"
    root.mkdir()
    os.chmod(root, 0o1777)
    return root


def test_a_planted_symlink_lock_file_is_refused_and_its_target_untouched(
    lease_root: Path, tmp_path: Path
) -> None:
    directory = lease_root / "pytest-edgetpu-leases"
    directory.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (directory / "cpu-0.lock").symlink_to(victim)
    with pytest.raises(DeviceError) as caught:
        acquire("cpu:0", directory)
    assert str(caught.value) == (
        f"the lease file {directory}/cpu-0.lock is a symbolic link, which another user may have"
        f" planted; remove it, or set {leases.LEASE_DIR_ENV} to a directory of your own, or"
        " have an administrator create a shared one owned by root with mode 1777"
        " (docs/guarantees.md)"
    )
    assert not isinstance(caught.value, DeviceBusyError)
    assert victim.read_text() == "precious\n"


def test_a_dangling_symlink_lock_file_creates_nothing(lease_root: Path, tmp_path: Path) -> None:
    directory = lease_root / "leases"
    directory.mkdir(mode=0o700)
    elsewhere = tmp_path / "created-elsewhere"
    (directory / "cpu-0.lock").symlink_to(elsewhere)
    with pytest.raises(DeviceError, match="is a symbolic link"):
        acquire("cpu:0", directory)
    assert not elsewhere.exists()


def test_a_hard_link_or_fifo_lock_file_is_refused(lease_root: Path, tmp_path: Path) -> None:
    directory = lease_root / "leases"
    directory.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.link(victim, directory / "cpu-0.lock")
    os.mkfifo(directory / "cpu-1.lock")
    for device in ("cpu:0", "cpu:1"):
        with pytest.raises(DeviceError, match="is not a plain file of its own"):
            acquire(device, directory)
    assert victim.read_text() == "precious\n"


def test_a_symlinked_lease_directory_is_refused_and_its_target_keeps_its_mode(
    lease_root: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    planted = lease_root / "pytest-edgetpu-leases"
    planted.symlink_to(home)
    with pytest.raises(DeviceError, match=r"the lease directory .* is a symbolic link"):
        acquire("cpu:0", planted)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert list(home.iterdir()) == []


def test_no_directory_the_plugin_did_not_create_changes_its_mode(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    os.chmod(checkout, 0o755)
    acquire("cpu:0", checkout).release()
    assert stat.S_IMODE(checkout.stat().st_mode) == 0o755
    locked_away = tmp_path / "locked"
    locked_away.mkdir()
    os.chmod(locked_away, 0o000)
    try:
        # Root may still use it, a user may not (one line); either way its mode stays.
        with contextlib.suppress(DeviceError):
            acquire("cpu:0", locked_away).release()
        assert stat.S_IMODE(locked_away.stat().st_mode) == 0o000
    finally:
        os.chmod(locked_away, 0o700)


def test_a_missing_lease_directory_is_created_private(lease_root: Path) -> None:
    directory = lease_root / "pytest-edgetpu-leases"
    acquire("cpu:0", directory).release()
    assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0
    lock = directory / "cpu-0.lock"
    assert lock.read_text() == str(os.getpid())
    assert stat.S_IMODE(lock.stat().st_mode) & 0o022 == 0


@needs_root
def test_a_lease_directory_of_another_user_is_refused_in_one_line(lease_root: Path) -> None:
    directory = lease_root / "pytest-edgetpu-leases"
    directory.mkdir(mode=0o755)
    os.chown(directory, OTHER_UID, OTHER_UID)
    with pytest.raises(DeviceError) as caught:
        acquire("cpu:0", directory)
    assert str(caught.value).startswith(
        f"the lease directory {directory} belongs to uid {OTHER_UID}, who could replace its lock"
        f" files; set {leases.LEASE_DIR_ENV} to a directory of your own"
    )
    assert list(directory.iterdir()) == []


def lease_as_other_user(directory: Path, device: str = "cpu:0") -> str:
    """What ``acquire(device, directory)`` does in a process of another user: ``busy``,
    ``free`` or the DeviceError's text. The process drops root after its imports (root's home,
    where this Python lives, is closed to other users)."""
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pytest_edgetpu.core.errors import DeviceBusyError, DeviceError\n"
        "from pytest_edgetpu.device.leases import acquire\n"
        f"os.setgroups([]); os.setgid({OTHER_UID}); os.setuid({OTHER_UID})\n"
        "try:\n"
        "    acquire(sys.argv[2], Path(sys.argv[1]))\n"
        "except DeviceBusyError:\n"
        "    print('busy')\n"
        "except DeviceError as error:\n"
        "    print(error)\n"
        "else:\n"
        "    print('free')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(directory), device],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def reachable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory other users can reach (pytest's own tmp folders are root's alone)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="pytest-edgetpu-hostile-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


@needs_root
def test_a_lock_file_another_user_planted_in_ones_own_directory_is_refused(
    reachable: Path,
) -> None:
    directory = reachable / "users-leases"
    directory.mkdir(mode=0o700)
    os.chown(directory, OTHER_UID, OTHER_UID)
    (directory / "cpu-0.lock").write_text("")  # root's: "another user" for the user
    assert lease_as_other_user(directory) == (
        f"the lease file {directory}/cpu-0.lock belongs to user root (uid 0); remove it, or set"
        f" {leases.LEASE_DIR_ENV} to a directory of your own, or have an administrator create a"
        " shared one owned by root with mode 1777 (docs/guarantees.md)"
    )


@needs_root
def test_two_users_share_one_lease_in_a_root_owned_sticky_directory(reachable: Path) -> None:
    # The host-wide lease of docs/guarantees.md, across two real uids.
    shared = reachable / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    assert lease_as_other_user(shared, "usb:0") == "free"  # creates the user's lock file
    lock = shared / "usb-0.lock"
    assert lock.stat().st_uid == OTHER_UID
    held = acquire("usb:0", shared)  # root locks the user's file, and writes nothing into it
    try:
        assert lock.read_text() != str(os.getpid())
        assert lease_as_other_user(shared, "usb:0") == "busy"
    finally:
        held.release()
    mine = acquire("cpu:0", shared)
    try:
        assert lease_as_other_user(shared, "cpu:0") == "busy"  # root's lock file, read-only
    finally:
        mine.release()


def test_a_world_writable_lease_directory_that_is_not_sticky_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "open"
    directory.mkdir()
    os.chmod(directory, 0o777)
    with pytest.raises(DeviceError, match=r"is writable by others and not sticky \(mode 777\)"):
        acquire("cpu:0", directory)


def test_a_regular_file_as_lease_directory_is_not_called_busy(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_dir = tmp_path / "leases-file"
    not_a_dir.write_text("")
    monkeypatch.setenv(leases.LEASE_DIR_ENV, str(not_a_dir))
    project.makepyfile(test_a=bench_file())
    result = project.runpytest("--edgetpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: the lease directory {not_a_dir} is not a directory; *"])
    result.stderr.no_fnmatch_line("*in use*")
    assert_clean(result)


# ---------------------------------------------------------------------------------------------
# 3: reads are bounded, and only of regular files


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_read_regular_refuses_fifos_devices_and_directories(fifo: Path, tmp_path: Path) -> None:
    import socket

    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "socket"))
    for path, kind in (
        (fifo, "a FIFO (named pipe)"),
        (tmp_path / "socket", "a socket"),
        (Path("/dev/zero"), "a character device"),
        (tmp_path, "a directory"),
    ):
        with pytest.raises(jsonio.NotRegularFileError) as caught:
            jsonio.read_regular(path, 100)
        assert str(caught.value) == f"it is {kind}, not a regular file"


def test_read_regular_reads_at_most_the_limit_plus_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 10)
    assert jsonio.read_regular(path, 10) == b"x" * 10
    with pytest.raises(ValueError, match="10 bytes is more than 9"):
        jsonio.read_regular(path, 9)
    with pytest.raises(ValueError, match="holds a NUL byte"):
        jsonio.read_regular(tmp_path / "a\0b", 9)


def test_a_fifo_or_dev_zero_named_like_a_baseline_file_stops_the_run_in_one_line(
    project: pytest.Pytester,
) -> None:
    baselines = project.path / "baselines"
    baselines.mkdir()
    project.makepyfile(test_a=bench_file())
    for planted, words in (
        (lambda p: os.mkfifo(p), "it is a FIFO (named pipe), not a regular file"),
        (lambda p: p.symlink_to("/dev/zero"), "it is a character device, not a regular file"),
    ):
        path = baselines / "cpu-x.json"
        planted(path)
        result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist", timeout=TIMEOUT_S)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {path} is not a readable baseline file ({words});*"])
        assert_clean(result)
        path.unlink()


def test_compare_and_accept_of_a_device_or_fifo_exit_2(
    fifo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for source in ("/dev/zero", str(fifo)):
        for command in ("compare", "accept"):
            assert main([command, source, "--baseline-dir", str(tmp_path / "b")]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"pytest-edgetpu: error: {source} is not a readable results")
            assert "not a regular file" in err


def test_a_model_is_refused_after_its_first_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sparse = tmp_path / "huge.tflite"
    with sparse.open("wb") as handle:
        handle.truncate(3 * 1024**3)  # 3 GB of zeros, no disk used
    read: list[int] = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(ModelError, match="no 'TFL3' flatbuffer identifier"):
        inspect_model(sparse)
    assert sum(read) <= 200
    with sparse.open("r+b") as handle:
        handle.write(b"\0\0\0\0TFL3")
    read.clear()
    with pytest.raises(ModelError, match="3221225472 bytes is more than 2147483647"):
        inspect_model(sparse)
    assert sum(read) <= 200


def test_a_fifo_or_device_model_fails_its_test_in_one_line(
    project: pytest.Pytester, fifo: Path
) -> None:
    project.makepyfile(
        test_a=(
            "import pytest\n\n"
            f"@pytest.mark.parametrize('path', [{str(fifo)!r}, '/dev/zero'])\n"
            "def test_a(tpu_bench, path):\n    tpu_bench(path)\n"
        )
    )
    result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist", timeout=TIMEOUT_S)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            f"{fifo} is not a TFLite model (it is a FIFO (named pipe), not a regular file);"
            " give the .tflite file",
            "/dev/zero is not a TFLite model (it is a character device, not a regular file);"
            " give the .tflite file",
        ],
        consecutive=False,
    )
    assert_clean(result)


# ---------------------------------------------------------------------------------------------
# 4, 5: numbers are finite and in range before any statistic sees them


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
    project.makepyfile(test_a=bench_file())
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


def commit_everything(directory: Path, message: str) -> None:
    """A new git repository at ``directory`` with every file in one commit."""
    names = {
        f"GIT_{who}_{what}": "t" for who in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL")
    }
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", message]):
        subprocess.run(["git", *args], cwd=directory, check=True, env={**os.environ, **names})


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


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


# ---------------------------------------------------------------------------------------------
# 6, 9: any character in a model path


def test_a_newline_in_a_model_path_keeps_the_probe_in_step(
    project: pytest.Pytester, coral_models: Path
) -> None:
    models = project.path / "models"
    shutil.copy(models / "tiny_conv.tflite", models / "good\nname.tflite")
    # A model that segfaults LiteRT (test_probe.py): were the probe one answer behind, the
    # session would load it itself and die with SIGSEGV.
    damaged = bytearray((coral_models / "split_concat.tflite").read_bytes())
    damaged[208] = 0xFF
    (models / "damaged.tflite").write_bytes(bytes(damaged))
    project.makepyfile(
        test_paths=(
            "import pytest\n\n"
            "@pytest.mark.parametrize('name', ['good\\nname', 'damaged'])\n"
            "def test_model(tpu_bench, name):\n    tpu_bench(f'models/{name}.tflite')\n"
        )
    )
    result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist", timeout=TIMEOUT_S * 2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*models/damaged.tflite: the probe process running * SIGSEGV*"])


def test_a_nul_in_a_model_path_is_one_line(project: pytest.Pytester) -> None:
    project.makepyfile(test_call=bench_file(marker="", call="'models/tiny\\0conv.tflite'"))
    called = project.runpytest("--edgetpu")
    called.assert_outcomes(failed=1)
    called.stdout.fnmatch_lines(
        [
            "*cannot read model file */models/tiny\\x00conv.tflite: the path * holds a NUL"
            " byte, which no file name can"
        ]
    )
    assert_clean(called)
    project.makepyfile(test_call=bench_file(marker="model='models/tiny\\0conv.tflite'"))
    marked = project.runpytest("--edgetpu")
    marked.assert_outcomes(errors=1)
    marked.stdout.fnmatch_lines(
        [
            "tpu_bench(model=...) on test_call.py::test_a: 'models/tiny\\x00conv.tflite' holds"
            " a NUL byte, which no path can"
        ]
    )
    assert_clean(marked)


def test_an_error_naming_a_path_with_a_newline_or_escape_is_one_line(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_a=bench_file(marker="", call="'models/no\\nsuch\\x1b[2J.tflite'"))
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*model file not found: */models/no\\nsuch\\x1b[2J.tflite (*"])
    assert "\x1b[2J" not in result.stdout.str()


# ---------------------------------------------------------------------------------------------
# 7: settings that would take the host down


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
    project.makepyfile(test_m=bench_file(marker=f'"models/tiny_dense.tflite", {marker}'))
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*interrupted: no baselines*")
    assert_clean(result)


def test_a_number_of_a_hundred_thousand_digits_is_one_short_line(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nedgetpu_warmup = " + "9" * 100_000 + "\n")
    project.makepyfile(test_a=bench_file())
    result = project.runpytest("--edgetpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines == [
        f"ERROR: ini edgetpu_warmup in {project.path}/tox.ini: a value of 100000 characters is"
        " out of range",
        "",
    ]


def test_an_unbounded_ini_value_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nedgetpu_num_threads = 1000000\n")
    project.makepyfile(test_a=bench_file())
    result = project.runpytest("--edgetpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: ini edgetpu_num_threads in */tox.ini: 1000000 is above the largest allowed"
            " value 256 (more threads than any host has cores; each one is a real thread)"
        ]
    )


# ---------------------------------------------------------------------------------------------
# 8: devices held by another session, under xdist


def test_xdist_against_devices_another_session_holds_is_one_line(
    project: pytest.Pytester, private_lease_dir: Path
) -> None:
    project.makepyfile(test_a=bench_file())
    held = [acquire("cpu:0", private_lease_dir), acquire("cpu:1", private_lease_dir)]
    try:
        both = project.runpytest("--edgetpu", "-n", "2", "--edgetpu-device=cpu:0,cpu:1")
        assert both.ret == pytest.ExitCode.USAGE_ERROR
        both.stderr.fnmatch_lines(
            [
                "ERROR: every selected device is in use (cpu:0, cpu:1 held by another"
                " pytest-edgetpu session); wait for it to finish"
            ]
        )
        assert_clean(both)
        held.pop().release()
        one = project.runpytest("--edgetpu", "-n", "2", "--edgetpu-device=cpu:0,cpu:1")
        assert one.ret == pytest.ExitCode.USAGE_ERROR
        one.stderr.fnmatch_lines(
            [
                "ERROR: 2 xdist workers but only 1 of the 2 selected device(s) are free: cpu:0"
                " held by another pytest-edgetpu session; wait for it to finish, or use -n 1"
            ]
        )
        assert_clean(one)
        # -n 1 takes the free device.
        free = project.runpytest("--edgetpu", "-n", "1", "--edgetpu-device=cpu:0,cpu:1")
        free.assert_outcomes(passed=1)
    finally:
        for lease in held:
            lease.release()


# ---------------------------------------------------------------------------------------------
# also seen: outputs that would overwrite a baseline, writes that fail, escapes, plots


def test_an_output_into_the_baseline_directory_is_refused(project: pytest.Pytester) -> None:
    path = record(project, "test_a.py::test_a")
    before = path.read_bytes()
    project.makepyfile(test_a=bench_file())
    for args in (
        [f"--edgetpu-json={path}"],
        ["--edgetpu-json=baselines/results.json"],
        ["--edgetpu-json=out.md", "--edgetpu-report=out.md"],
    ):
        result = project.runpytest("--edgetpu", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        assert_clean(result)
    result.stderr.fnmatch_lines(
        [
            "ERROR: --edgetpu-report: */out.md is also the path of --edgetpu-json; give each output"
            " a file of its own"
        ]
    )
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_failed_update_write_reports_nothing_as_recorded(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_a=bench_file())

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = project.runpytest("--edgetpu-update-baselines", "--edgetpu-report=r.md")
    monkeypatch.undo()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert "RECORDED" not in output
    assert "1 baseline(s) recorded" not in output
    result.stdout.fnmatch_lines(
        [
            "0 baseline(s) recorded, 1 not recorded (the baseline file could not be written)",
            "test_a.py::test_a: not recorded: p50 * ms; its baseline file could not be written"
            " (the ERROR line below says why)",
            "edgetpu: ERROR: cannot write */baselines/cpu-*.json: * No space left on device;*",
        ]
    )


def test_show_escapes_control_characters_of_test_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_entries(tmp_path, Profile({"device": "cpu"}), {"t\x1b]0;pwned\x07\nx": entry(1.0)})
    assert main(["show", "--baseline-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "t\\x1b]0;pwned\\x07\\nx" in out


def test_plots_replace_a_planted_symlink_and_a_failed_write_leaves_no_file(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Imported here, not first inside an in-process run, whose end would unload half of it.
    pytest.importorskip("matplotlib.figure")
    pytest.importorskip("matplotlib.backends.backend_agg")
    project.makepyfile(test_a=bench_file())
    plots = project.path / "plots"
    plots.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (plots / "test_a.py_test_a.png").symlink_to(victim)
    result = project.runpytest("--edgetpu", "--edgetpu-plot=plots")
    result.stdout.fnmatch_lines(["edgetpu: 1 plot(s) written to plots"])
    assert victim.read_text() == "precious\n"
    (png,) = plots.iterdir()
    assert not png.is_symlink() and png.read_bytes().startswith(b"\x89PNG")
    png.unlink()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    failed = project.runpytest("--edgetpu", "--edgetpu-plot=plots")
    monkeypatch.undo()
    failed.stdout.fnmatch_lines(
        [f"edgetpu: ERROR: cannot write the plot {plots}/test_a.py_test_a.png: No space left*"]
    )
    assert list(plots.iterdir()) == []


def test_an_output_that_is_a_device_or_fifo_is_refused(
    project: pytest.Pytester, fifo: Path
) -> None:
    project.makepyfile(test_a=bench_file())
    for target, kind in ((fifo, "a FIFO (named pipe)"), (Path("/dev/null"), "a character device")):
        result = project.runpytest("--edgetpu", f"--edgetpu-json={target}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                f"ERROR: --edgetpu-json: {target} is {kind}, not a regular file; give the path of a"
                " file"
            ]
        )


def test_a_fifo_as_the_job_summary_is_one_line_not_a_hang(
    project: pytest.Pytester, fifo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_a=bench_file())
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(fifo))
    result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist", timeout=TIMEOUT_S)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [f"edgetpu: ERROR: cannot write {fifo}: it is a FIFO (named pipe), not a regular file"]
    )


@needs_git
def test_diff_sizes_a_revisions_baseline_before_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "cpu.json").write_bytes(b" " * (jsonio.MAX_BYTES + 1))
    commit_everything(tmp_path, "huge")
    (baselines / "cpu.json").write_text(dumps(Profile({"device": "cpu"}), {"t": entry(1.0)}))
    monkeypatch.chdir(tmp_path)
    assert main(["diff", "HEAD"]) == 2
    assert capsys.readouterr().err == (
        f"pytest-edgetpu: error: HEAD:baselines/cpu.json: {jsonio.MAX_BYTES + 1} bytes is too"
        f" large for a baseline file (at most {jsonio.MAX_BYTES})\n"
    )
