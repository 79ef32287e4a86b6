"""Host-wide exclusive leases on devices, so two pytest sessions never share one.

A lease is an ``fcntl.flock`` on a lock file per device in a directory shared by every
process of the host (``$PYTEST_EDGETPU_LEASE_DIR``, else ``<tmp>/pytest-edgetpu-leases``). The
kernel releases it when the holder exits, even when it is killed: on a USB Edge TPU a second
opener resets the stick and aborts the first process, so this must hold without cooperation.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import DeviceError

__all__ = ["LEASE_DIR_ENV", "Lease", "acquire", "lease_dir"]

LEASE_DIR_ENV = "PYTEST_EDGETPU_LEASE_DIR"


def lease_dir() -> Path:
    """Where the lock files live."""
    configured = os.environ.get(LEASE_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "pytest-edgetpu-leases"


@dataclass
class Lease:
    """A held lease; ``release()`` (or the process's exit) gives it back."""

    device_id: str
    path: Path
    handle: IO[str] | None

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file drops the flock
            self.handle = None


def acquire(device_id: str, directory: Path | None = None) -> Lease:
    """Take the lease on ``device_id`` or raise DeviceError naming who holds it."""
    directory = directory or lease_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):
            # Shared by every user of the host, like /tmp itself.
            os.chmod(directory, 0o1777)
        path = directory / (re.sub(r"[^a-z0-9]+", "-", device_id.lower()) + ".lock")
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the session
    except OSError as exc:
        raise DeviceError(
            f"cannot create the lease file for {device_id} in {directory}: {exc}; set "
            f"{LEASE_DIR_ENV} to a writable directory"
        ) from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DeviceError(
            f"{device_id} is held by another pytest-edgetpu session (pid {holder}, lease "
            f"{path}); wait for it to finish or choose another device with --edgetpu-device"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return Lease(device_id, path, handle)
