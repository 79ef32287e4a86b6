"""Device leases on a shared host: the lease directory and its lock files, against symlinks,
FIFOs, hard links, directories of other users and world-writable ones (device room).

"Another user" is a file or directory chowned to an unused uid: the tests run as root in CI."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import (
    OTHER_UID,
    TIMEOUT_S,
    assert_clean,
    needs_root,
    single_bench_file,
)

from pytest_edgetpu.core.errors import DeviceBusyError, DeviceError
from pytest_edgetpu.device import leases
from pytest_edgetpu.device.leases import acquire

# ---------------------------------------------------------------------------------------------
# the lease directory and its lock files


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
    project.makepyfile(test_a=single_bench_file())
    result = project.runpytest("--edgetpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: the lease directory {not_a_dir} is not a directory; *"])
    result.stderr.no_fnmatch_line("*in use*")
    assert_clean(result)
