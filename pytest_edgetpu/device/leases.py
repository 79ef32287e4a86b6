"""Host-wide exclusive leases on devices, so two pytest sessions never share one.

A lease is an ``fcntl.flock`` on a lock file per device in a directory shared by every
process of the host (``$PYTEST_EDGETPU_LEASE_DIR``, else ``<tmp>/pytest-edgetpu-leases``). The
kernel releases it when the holder exits, even when it is killed: on a USB Edge TPU a second
opener resets the stick and aborts the first process, so this must hold without cooperation.

The directory may lie where other users can reach (``/tmp``), so nothing in it is trusted:

* the directory must be a real directory (never a symlink) owned by this user or by root, and
  not writable by others unless it is sticky (as ``/tmp`` is), so nobody else can swap the lock
  files in it; the plugin creates it ``0700`` when it is missing, and changes the mode of no
  directory;
* a lock file is opened with ``O_NOFOLLOW`` and must be a regular file with one link: a planted
  symlink or hard link is refused, never written through;
* the pid is written only into a lock file this user owns; another user's lock file (in a
  root-owned sticky directory that several users share) is locked read-only.

Several users who share one Edge TPU need one lease for it: an administrator creates the shared
directory once, owned by root with mode 1777 (``install -d -m 1777 -o root DIR``), and every
user points ``PYTEST_EDGETPU_LEASE_DIR`` at it (or it is the default path).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..core.errors import DeviceBusyError, DeviceError

__all__ = ["LEASE_DIR_ENV", "Lease", "acquire", "is_free", "lease_dir"]

LEASE_DIR_ENV: Final = "PYTEST_EDGETPU_LEASE_DIR"
_PID_BYTES: Final = 32
_FIX: Final = (
    f"set {LEASE_DIR_ENV} to a directory of your own, or have an administrator create a shared "
    "one owned by root with mode 1777 (docs/guarantees.md)"
)


def lease_dir() -> Path:
    """Where the lock files live."""
    configured = os.environ.get(LEASE_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "pytest-edgetpu-leases"


@dataclass
class Lease:
    """A held lease; ``release()`` (or the process's exit) gives it back."""

    device_id: str
    path: Path
    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file drops the flock
            self.fd = None


def _owner_words(uid: int) -> str:
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _check_directory(directory: Path) -> bool:
    """Whether ``directory`` (created when missing) is shared, i.e. owned by root; raises
    DeviceError naming it when it cannot be trusted."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        try:
            directory.parent.mkdir(parents=True, exist_ok=True)
            # 0700 (umask aside): nobody else may add, remove or swap lock files here.
            os.mkdir(directory, 0o700)
        except FileExistsError:  # another session created it just now
            pass
        except OSError as exc:
            raise DeviceError(
                f"cannot create the lease directory {directory}: {exc.strerror or exc}; {_FIX}"
            ) from None
        info = os.lstat(directory)
    except OSError as exc:
        raise DeviceError(
            f"cannot use the lease directory {directory}: {exc.strerror or exc}; {_FIX}"
        ) from None
    if stat.S_ISLNK(info.st_mode):
        raise DeviceError(
            f"the lease directory {directory} is a symbolic link, which another user may have "
            f"planted; remove it, or {_FIX}"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise DeviceError(f"the lease directory {directory} is not a directory; {_FIX}")
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise DeviceError(
            f"the lease directory {directory} belongs to {_owner_words(info.st_uid)}, who could "
            f"replace its lock files; {_FIX}"
        )
    others_write = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if others_write and not info.st_mode & stat.S_ISVTX:
        raise DeviceError(
            f"the lease directory {directory} is writable by others and not sticky (mode "
            f"{stat.S_IMODE(info.st_mode):o}), so anyone could replace its lock files; make it "
            f"chmod 700 (or 1777 if shared), or {_FIX}"
        )
    # Root's directory may hold other users' lock files: that is how users share a device.
    return info.st_uid == 0


def _open_lock_file(path: Path, shared: bool) -> tuple[int, bool]:
    """The lock file's descriptor, and whether it is this user's (so the pid may go in)."""
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd, own = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o644), True
    except PermissionError:
        # Another user's lock file in a shared directory: a read-only descriptor takes a flock.
        fd, own = os.open(path, os.O_RDONLY | flags), False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise DeviceError(
                f"the lease file {path} is not a plain file of its own (a device, FIFO or hard "
                f"link someone planted); remove it, or {_FIX}"
            )
        if info.st_uid != os.geteuid() and not shared:
            raise DeviceError(
                f"the lease file {path} belongs to {_owner_words(info.st_uid)}; remove it, or "
                f"{_FIX}"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, own and info.st_uid == os.geteuid()


def acquire(device_id: str, directory: Path | None = None) -> Lease:
    """Take the lease on ``device_id``; raises DeviceBusyError naming who holds it, or
    DeviceError when the lease directory or file cannot be used safely."""
    directory = directory or lease_dir()
    shared = _check_directory(directory)
    path = directory / (re.sub(r"[^a-z0-9]+", "-", device_id.lower()) + ".lock")
    try:
        fd, own = _open_lock_file(path, shared)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DeviceError(
                f"the lease file {path} is a symbolic link, which another user may have "
                f"planted; remove it, or {_FIX}"
            ) from None
        raise DeviceError(
            f"cannot open the lease file for {device_id} ({path}): {exc.strerror or exc}; {_FIX}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, _PID_BYTES, 0).decode("ascii", "replace").strip()
        os.close(fd)
        shown = holder if holder.isdigit() else "unknown"
        raise DeviceBusyError(
            f"{device_id} is held by another pytest-edgetpu session (pid {shown}, lease "
            f"{path}); wait for it to finish or choose another device with --edgetpu-device"
        ) from None
    if own:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
    return Lease(device_id, path, fd)


def is_free(device_id: str, directory: Path | None = None) -> bool:
    """Whether ``device_id``'s lease could be taken now (it is taken and given back at once);
    raises DeviceError when the lease directory cannot be used."""
    try:
        acquire(device_id, directory).release()
    except DeviceBusyError:
        return False
    return True
