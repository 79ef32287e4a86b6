"""Find the attached Edge TPUs without opening them.

Opening an Edge TPU resets it (USB) or claims it for this process (PCIe), so the pytest
controller must only *enumerate* and leave opening to the worker that will use the device
(``docs/devices.md``). Three sources are asked, in this order:

1. pycoral's ``list_edge_tpus()``, when Google's pycoral is importable;
2. libedgetpu's C API (``edgetpu_list_devices``) through ctypes;
3. sysfs alone: ``/sys/class/apex/apex_N`` for PCIe, ``/sys/bus/usb/devices/*`` for USB.

Whichever answers, sysfs adds what the library does not say: USB link speed, DFU mode and the
PCIe chip temperature. Every device gets the ``usb:N`` / ``pci:N`` index that libedgetpu's
``load_delegate(..., {"device": ...})`` understands. When something expected is missing,
:attr:`Discovery.notes` says why and how to fix it, instead of raising.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from .libedgetpu import LIBEDGETPU_NAME, load_libedgetpu

__all__ = [
    "DEFAULT_TRIP_POINT_C",
    "Discovery",
    "EdgeTpu",
    "discover",
    "read_apex_temperature",
    "read_apex_trip_point",
]


Kind = Literal["usb", "pci"]

# USB ids libedgetpu matches, in the order it lists them (beagle_usb_driver_provider.cc).
_USB_DFU_ID: Final = ("1a6e", "089a")  # Global Unichip: no firmware loaded yet
_USB_APP_ID: Final = ("18d1", "9302")  # Google: firmware loaded

# Devices (not root hubs "usb1" nor interfaces "2-1:1.0") are named <bus>-<port>[.<port>...].
_USB_DEVICE_NAME: Final = re.compile(r"[0-9]+-[0-9]+(?:\.[0-9]+)*")
_APEX_NAME: Final = re.compile(r"apex_([0-9]+)")

# Below any real operating temperature: what a dead or wedged chip reports (≈ -87.9 °C,
# google-coral/edgetpu#843).
_DEAD_CHIP_BELOW_C: Final = -40.0


DEFAULT_TRIP_POINT_C: Final = 85.0


@dataclass(frozen=True)
class EdgeTpu:
    """One Edge TPU as enumeration sees it, never opened."""

    kind: Kind
    index: int
    """N in ``usb:N`` / ``pci:N``: position among devices of this kind in libedgetpu's order."""
    path: str
    """The sysfs directory for USB (``/sys/bus/usb/devices/2-1``), ``/dev/apex_N`` for PCIe."""
    source: str
    """Who listed it: ``"pycoral"``, ``"libedgetpu"`` or ``"sysfs"``."""
    usb_speed_mbps: int | None = None
    """USB link speed from sysfs (480 = USB 2, 5000 = USB 3); None for PCIe or when unknown."""
    dfu_mode: bool = False
    """A USB stick still without firmware (``1a6e:089a``); its first open loads it and it
    re-enumerates as ``18d1:9302``, which can shift the ``usb:N`` of the others."""
    temperature_c: float | None = None
    """PCIe chip temperature from ``/sys/class/apex/apex_N/temp``; None for USB or when absent."""
    apex_dir: Path | None = None
    """A PCIe chip's sysfs directory (``/sys/class/apex/apex_N``), where its temperature and
    trip points are read; None for USB."""

    @property
    def device_string(self) -> str:
        """The ``device`` option value that selects this TPU, e.g. ``"usb:0"``."""
        return f"{self.kind}:{self.index}"

    @property
    def link(self) -> str:
        """The link in words: ``"PCIe"``, ``"USB 3 (5000 Mbit/s)"``, ``"USB 2 (480 Mbit/s)"``."""
        if self.kind == "pci":
            return "PCIe"
        speed = self.usb_speed_mbps
        if speed is None:
            return "USB (speed unknown)"
        if speed >= 5000:
            generation = "USB 3"
        elif speed >= 480:
            generation = "USB 2"
        else:
            generation = "USB 1.1"
        return f"{generation} ({speed} Mbit/s)"


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found: devices, the runtime library, and why anything is missing."""

    devices: tuple[EdgeTpu, ...]
    """In libedgetpu's enumeration order: PCIe, then USB (DFU-mode sticks before the others)."""
    libedgetpu: str | None
    """Path (or name, when unresolvable) of the libedgetpu that loaded; None if none did."""
    libedgetpu_version: str | None
    """``edgetpu_version()``, e.g. ``"BuildLabel(...), RuntimeVersion(14)"``."""
    libedgetpu_build: str | None
    """``"direct"`` (libedgetpu1-max), ``"throttled"`` (libedgetpu1-std), or None when unknown."""
    notes: tuple[str, ...]
    """One line each: why something expected is missing, and how to fix it."""


def read_apex_temperature(apex_dir: Path) -> float | None:
    """The chip temperature in °C from ``<apex_dir>/temp`` (milli-°C), or None.

    None when the file is absent (old apex drivers lack it) or unreadable. A reading near
    -87.9 °C is returned as is: it is what a dead chip reports, and hiding it would hide that.
    """
    return _read_millicelsius(apex_dir / "temp")


def read_apex_trip_point(apex_dir: Path) -> float:
    """The first trip point in °C (``<apex_dir>/trip_point0_temp``): at or above it the apex
    driver lowers the chip's clock. :data:`DEFAULT_TRIP_POINT_C` when the file is absent or
    unreadable, as the driver then runs with its default."""
    trip = _read_millicelsius(apex_dir / "trip_point0_temp")
    return DEFAULT_TRIP_POINT_C if trip is None else trip


@dataclass(frozen=True)
class Thermal:
    """A PCIe Edge TPU's chip temperature around one measurement (USB sticks have no sensor)."""

    before_c: float | None
    after_c: float | None
    trip_point_c: float
    """The first trip point (``trip_point0_temp``), where the apex driver starts throttling."""

    @property
    def peak_c(self) -> float | None:
        readings = [t for t in (self.before_c, self.after_c) if t is not None]
        return max(readings) if readings else None

    @property
    def throttled(self) -> bool:
        """Whether the driver ran the chip at a lowered clock during the measurement: it
        throttles at or above the first trip point (it polls every 5 s, so a reading at either
        end is the best evidence sysfs offers)."""
        peak = self.peak_c
        return peak is not None and peak >= self.trip_point_c

    @property
    def note(self) -> str | None:
        """Why the figures may be slower than the chip, when it was throttled."""
        if not self.throttled:
            return None
        return (
            f"the Edge TPU reached {self.peak_c:.1f} °C, at or above its first trip point "
            f"{self.trip_point_c:.1f} °C (trip_point0_temp), so the apex driver throttled its "
            "clock during this measurement; cool the card and measure again"
        )


def _read_millicelsius(path: Path) -> float | None:
    try:
        return int(path.read_text(encoding="ascii").strip()) / 1000.0
    except (OSError, ValueError):
        return None


def discover(
    *,
    sysfs_root: Path = Path("/sys"),
    dev_root: Path = Path("/dev"),
    library: str | None = None,
    use_pycoral: bool = True,
    is_char_device: Callable[[Path], bool] | None = None,
) -> Discovery:
    """Enumerate Edge TPUs without opening any.

    ``library`` is the libedgetpu to load (a name for ``dlopen`` or a path; default
    :data:`LIBEDGETPU_NAME`). ``use_pycoral=False`` skips pycoral. ``sysfs_root``,
    ``dev_root`` and ``is_char_device`` (default: ``os.stat`` + ``S_ISCHR``) exist so tests
    can point discovery at a fake tree. Never raises for a missing runtime, bus or driver:
    the reason goes to :attr:`Discovery.notes`.
    """
    check_char_device = is_char_device or _is_char_device
    notes: list[str] = []

    from_sysfs = _scan_sysfs(sysfs_root, dev_root, check_char_device, notes)
    runtime = load_libedgetpu(library or LIBEDGETPU_NAME, notes)

    listed: list[tuple[Kind, str]] | None = None
    source = "sysfs"
    if use_pycoral:
        listed = _list_with_pycoral(notes)
        source = "pycoral"
    if listed is None and runtime is not None:
        listed = _list_with_c_api(runtime.handle, notes)
        source = "libedgetpu"

    if listed is None:
        devices = from_sysfs
    else:
        devices = _describe(listed, source, sysfs_root)
        notes.extend(_unlisted(from_sysfs, devices, source))

    for device in devices:
        if device.temperature_c is not None and device.temperature_c < _DEAD_CHIP_BELOW_C:
            notes.append(
                f"{device.device_string} ({device.path}) reads {device.temperature_c:.1f} °C: "
                "a reading this low means a dead or wedged chip, not a cold one "
                "(google-coral/edgetpu#843)"
            )

    return Discovery(
        devices=tuple(devices),
        libedgetpu=runtime.path if runtime is not None else None,
        libedgetpu_version=runtime.version if runtime is not None else None,
        libedgetpu_build=runtime.build if runtime is not None else None,
        notes=tuple(notes),
    )


# --- sysfs ------------------------------------------------------------------------------


def _is_char_device(path: Path) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def _scan_sysfs(
    sysfs_root: Path,
    dev_root: Path,
    is_char_device: Callable[[Path], bool],
    notes: list[str],
) -> list[EdgeTpu]:
    """Devices as libedgetpu would list them, from sysfs and /dev alone."""
    pci_paths: list[str] = []
    apex_class = sysfs_root / "class" / "apex"
    if not apex_class.is_dir():
        notes.append(f"no {apex_class}: PCIe driver (gasket-dkms) not loaded")
    else:
        # libedgetpu takes readdir() order, which no one guarantees; sorting by N makes
        # pci:N stable and matches readdir on every system we know of.
        for _, name in sorted(_apex_entries(apex_class)):
            node = dev_root / name
            if is_char_device(node):
                pci_paths.append(str(node))
            elif node.exists():
                notes.append(f"{name}: {node} is not a character device, so libedgetpu skips it")
            else:
                notes.append(f"{name} has no {node}: pass --device {node} to the container")

    usb_devices = sysfs_root / "bus" / "usb" / "devices"
    usb: list[tuple[bool, str]] = []
    if not usb_devices.is_dir():
        notes.append(
            f"no USB bus visible at {usb_devices} (container without --device /dev/bus/usb?)"
        )
    else:
        for name in sorted(_usb_entries(usb_devices), key=_usb_sort_key):
            ids = _usb_ids(usb_devices / name)
            if ids in (_USB_DFU_ID, _USB_APP_ID):
                usb.append((ids == _USB_DFU_ID, name))
        # DFU-mode sticks first, as libedgetpu matches 1a6e:089a before 18d1:9302;
        # sort() is stable, so each group keeps its order by sysfs name.
        usb.sort(key=lambda entry: not entry[0])
        usb_nodes = dev_root / "bus" / "usb"
        if usb and not usb_nodes.is_dir():
            notes.append(
                f"USB Edge TPU found in sysfs but no {usb_nodes}: "
                f"pass --device {usb_nodes} to the container (libusb opens it there)"
            )

    listed: list[tuple[Kind, str]] = [("pci", p) for p in pci_paths]
    listed += [("usb", str(usb_devices / name)) for _, name in usb]
    return _describe(listed, "sysfs", sysfs_root)


def _apex_entries(apex_class: Path) -> list[tuple[int, str]]:
    entries = []
    for entry in apex_class.iterdir():
        match = _APEX_NAME.fullmatch(entry.name)
        if match is not None:
            entries.append((int(match.group(1)), entry.name))
    return entries


def _usb_entries(usb_devices: Path) -> list[str]:
    return [e.name for e in usb_devices.iterdir() if _USB_DEVICE_NAME.fullmatch(e.name)]


def _usb_sort_key(name: str) -> tuple[int, ...]:
    # Numeric, so that 1-2 sorts before 1-10 and a hub's 1-1.2 before 1-1.10.
    bus, ports = name.split("-", 1)
    return (int(bus), *(int(p) for p in ports.split(".")))


def _read_sysfs_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _usb_ids(device_dir: Path) -> tuple[str, str] | None:
    vendor = _read_sysfs_text(device_dir / "idVendor")
    product = _read_sysfs_text(device_dir / "idProduct")
    if vendor is None or product is None:
        return None
    return vendor.lower(), product.lower()


def _usb_speed(device_dir: Path) -> int | None:
    text = _read_sysfs_text(device_dir / "speed")
    # Low speed reads "1.5"; the Edge TPU driver refuses it, so "unknown" is close enough.
    if text is None or not text.isdigit():
        return None
    return int(text)


def _describe(listed: list[tuple[Kind, str]], source: str, sysfs_root: Path) -> list[EdgeTpu]:
    """Number the listed devices per kind and add what sysfs knows about each."""
    devices = []
    counts = {"usb": 0, "pci": 0}
    for kind, path in listed:
        name = PurePosixPath(path).name
        index = counts[kind]
        counts[kind] += 1
        if kind == "pci":
            apex_dir = sysfs_root / "class" / "apex" / name if _APEX_NAME.fullmatch(name) else None
            temperature = read_apex_temperature(apex_dir) if apex_dir is not None else None
            devices.append(
                EdgeTpu("pci", index, path, source, temperature_c=temperature, apex_dir=apex_dir)
            )
            continue
        speed = None
        dfu = False
        # The library reports /sys/bus/usb/devices/<name>; look that name up under our root.
        if _USB_DEVICE_NAME.fullmatch(name):
            device_dir = sysfs_root / "bus" / "usb" / "devices" / name
            speed = _usb_speed(device_dir)
            dfu = _usb_ids(device_dir) == _USB_DFU_ID
        devices.append(EdgeTpu("usb", index, path, source, usb_speed_mbps=speed, dfu_mode=dfu))
    return devices


def _unlisted(from_sysfs: list[EdgeTpu], listed: list[EdgeTpu], source: str) -> list[str]:
    """Notes for devices sysfs shows but the library did not list (no access, stale driver)."""
    seen = {(d.kind, PurePosixPath(d.path).name) for d in listed}
    missing = [d for d in from_sysfs if (d.kind, PurePosixPath(d.path).name) not in seen]
    return [
        f"{d.path} is an Edge TPU in sysfs but {source} did not list it "
        "(no access to its device node, or another process re-enumerating it?)"
        for d in missing
    ]


# --- pycoral ----------------------------------------------------------------------------


def _list_with_pycoral(notes: list[str]) -> list[tuple[Kind, str]] | None:
    try:
        edgetpu = importlib.import_module("pycoral.utils.edgetpu")
        list_edge_tpus = edgetpu.list_edge_tpus
    except (ImportError, AttributeError):
        # Absent is normal: Google's pycoral needs Python <= 3.9, and the PyPI package named
        # "pycoral" is an unrelated project without pycoral.utils.edgetpu.
        return None
    entries = list_edge_tpus()
    listed: list[tuple[Kind, str]] = []
    for entry in entries:
        kind = entry.get("type") if isinstance(entry, Mapping) else None
        path = entry.get("path") if isinstance(entry, Mapping) else None
        if kind not in ("usb", "pci") or not isinstance(path, str):
            notes.append(
                f"pycoral.utils.edgetpu.list_edge_tpus() returned {entry!r}, not "
                "{'type': 'usb'|'pci', 'path': str}: ignored pycoral"
            )
            return None
        listed.append(("usb" if kind == "usb" else "pci", path))
    return listed


# --- libedgetpu C API -------------------------------------------------------------------


def _list_with_c_api(handle: ctypes.CDLL, notes: list[str]) -> list[tuple[Kind, str]]:
    count = ctypes.c_size_t(0)
    array = handle.edgetpu_list_devices(ctypes.byref(count))
    listed: list[tuple[Kind, str]] = []
    if not array:  # NULL with *num_devices = 0: nothing attached
        return listed
    try:
        for i in range(count.value):
            entry = array[i]
            path = os.fsdecode(entry.path) if entry.path else ""
            if entry.type == 0:
                listed.append(("pci", path))
            elif entry.type == 1:
                listed.append(("usb", path))
            else:
                notes.append(f"libedgetpu listed {path!r} with unknown device type {entry.type}")
    finally:
        handle.edgetpu_free_devices(array)
    return listed
