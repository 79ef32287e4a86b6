"""libedgetpu, the Edge TPU runtime library: found, loaded and described without opening a
device.

Which build it is (``libedgetpu1-max`` runs USB at full clock, ``-std`` throttles it), where the
dynamic loader found it, and its version; a library that does not load is a note that says
which package to install, never an exception (``docs/devices.md#edge-tpu-setup``).
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..core.jsonio import read_regular

__all__ = ["LIBEDGETPU_NAME", "Libedgetpu", "libedgetpu_build", "library_fix", "load_libedgetpu"]


# The names pycoral loads (pycoral/utils/edgetpu.py, _EDGETPU_SHARED_LIB).
_LIBEDGETPU_NAMES: Final = {
    "linux": "libedgetpu.so.1",
    "darwin": "libedgetpu.1.dylib",
    "win32": "edgetpu.dll",
}


LIBEDGETPU_NAME: Final = _LIBEDGETPU_NAMES.get(sys.platform, "libedgetpu.so.1")
"""The Edge TPU runtime library's name on this platform, as ``dlopen`` finds it."""


_INSTALL_RUNTIME: Final = "install the Edge TPU runtime (libedgetpu1-std or libedgetpu1-max)"


_INSTALL_LIBUSB: Final = "apt-get install libusb-1.0-0"


#: libedgetpu is about 1.5 MB; a file far larger is not it, and is not read whole.
_MAX_LIBRARY_BYTES: Final = 64 * 1024 * 1024
"""The apex driver's default first trip point (``trip_point0_temp`` = 85000 milli-°C)."""


def libedgetpu_build(library_path: Path) -> str | None:
    """Which libedgetpu build a library file is: ``"direct"``, ``"throttled"`` or None.

    The two Debian packages ship different binaries (libedgetpu1-max = direct,
    libedgetpu1-std = throttled: USB runs at "High" instead of "Max"); the build embeds the
    string ``PERFORMANCE=DIRECT`` or ``PERFORMANCE=THROTTLED``. None when the file cannot be
    read or carries neither (or, impossibly, both).
    """
    try:
        data = read_regular(library_path, _MAX_LIBRARY_BYTES)
    except (OSError, ValueError):
        return None
    direct = b"PERFORMANCE=DIRECT" in data
    throttled = b"PERFORMANCE=THROTTLED" in data
    if direct == throttled:
        return None
    return "direct" if direct else "throttled"


class _CDevice(ctypes.Structure):
    # struct edgetpu_device { enum edgetpu_device_type type; const char* path; }
    _fields_ = (("type", ctypes.c_int), ("path", ctypes.c_char_p))


class _DlInfo(ctypes.Structure):
    _fields_ = (
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    )


@dataclass(frozen=True)
class Libedgetpu:
    handle: ctypes.CDLL
    path: str
    version: str | None
    build: str | None


def load_libedgetpu(name: str, notes: list[str]) -> Libedgetpu | None:
    """Load libedgetpu (this opens no device) and describe it; None with a note on failure."""
    try:
        handle = ctypes.CDLL(name)
    except OSError as error:
        notes.append(_load_failure_note(name, str(error)))
        return None
    try:
        handle.edgetpu_list_devices.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
        handle.edgetpu_list_devices.restype = ctypes.POINTER(_CDevice)
        handle.edgetpu_free_devices.argtypes = [ctypes.POINTER(_CDevice)]
        handle.edgetpu_free_devices.restype = None
        handle.edgetpu_version.argtypes = []
        handle.edgetpu_version.restype = ctypes.c_char_p
    except AttributeError as error:
        notes.append(f"{name} loaded but is not libedgetpu ({error})")
        return None
    raw_version = handle.edgetpu_version()
    version = raw_version.decode("utf-8", "replace") if raw_version else None
    path = _loaded_from(handle) or name
    build = libedgetpu_build(Path(path)) if os.path.isabs(path) else None
    return Libedgetpu(handle, path, version, build)


def library_fix(message: str) -> str:
    """The fix for an ``OSError`` that loading libedgetpu raised with ``message``."""
    return _INSTALL_LIBUSB if "libusb-1.0" in message else _INSTALL_RUNTIME


def _load_failure_note(name: str, message: str) -> str:
    if "libusb-1.0" in message:
        return f"libusb-1.0.so.0 missing: {library_fix(message)} ({name} needs it)"
    lowered = message.lower()
    if any(s in lowered for s in ("no such file", "not found", "could not find")):
        return f"{name} not found: {library_fix(message)}"
    return f"{name} could not be loaded: {message}"


def _loaded_from(handle: ctypes.CDLL) -> str | None:
    """The file a loaded library came from, so a bare soname becomes a path to scan."""
    if sys.platform == "win32":
        return None  # no dladdr: the name stands in, and the build stays unknown
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except (AttributeError, OSError):
        return None
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    address = ctypes.cast(handle.edgetpu_version, ctypes.c_void_p)
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.fsdecode(info.dli_fname)
