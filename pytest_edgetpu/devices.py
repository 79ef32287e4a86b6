"""Devices: the ``--edgetpu-device`` grammar, resolution to concrete devices, host facts.

A device is either the CPU (``cpu:N``, LiteRT's default CPU path) or one Edge TPU
(``usb:N`` / ``pci:N``, found by :mod:`pytest_edgetpu.discovery` without opening it).
"""

from __future__ import annotations

import difflib
import os
import platform
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from .errors import ConfigError, DeviceError

if TYPE_CHECKING:  # discovery pulls in ctypes: imported when a device is looked for
    from .discovery import Discovery, EdgeTpu
    from .runtime import Runtime

__all__ = [
    "PERFORMANCE_LEVELS",
    "Device",
    "DeviceRequest",
    "check_delegate_options",
    "cpu_governor",
    "cpu_model",
    "open_edgetpu_delegate",
    "parse_device_spec",
    "parse_performance",
    "resolve_devices",
]

#: The values of libedgetpu's ``Performance`` delegate option (its default is ``Max``).
PERFORMANCE_LEVELS: Final = ("Low", "Medium", "High", "Max")

DeviceKind = Literal["cpu", "usb", "pci"]

_ITEM = re.compile(
    r"^(?:(?P<kind>auto|cpu|usb|pci)|(?P<typed>cpu|usb|pci)?:(?P<index>[0-9]{1,6}))$"
)


@dataclass(frozen=True)
class DeviceRequest:
    """One item of a device spec: ``kind`` is ``auto``, ``cpu``, ``usb``, ``pci`` or ``any``
    (the ``:N`` form); ``index`` is None when the item names every device of its kind."""

    kind: str
    index: int | None
    text: str


def parse_device_spec(text: str, where: str) -> tuple[DeviceRequest, ...]:
    """Parse ``auto``, ``cpu``, ``usb``, ``pci``, ``usb:N``, ``pci:N``, ``cpu:N``, ``:N``
    and comma lists of them; ``where`` names the source of the value for the error."""
    requests = []
    for raw in text.split(","):
        item = raw.strip()
        match = _ITEM.match(item)
        if match is None:
            hint = (
                f" (device strings are lower-case: {item.lower()!r})"
                if _ITEM.match(item.lower())
                else ""
            )
            raise ConfigError(
                f"{where}: unknown device {item!r} in {text!r}{hint}; expected auto, cpu, usb, "
                "pci, usb:N, pci:N, cpu:N, :N or a comma list of them"
            )
        if match["kind"]:
            requests.append(DeviceRequest(match["kind"], None, item))
        else:
            requests.append(DeviceRequest(match["typed"] or "any", int(match["index"]), item))
    return tuple(requests)


@dataclass(frozen=True)
class Device:
    """A concrete device that measurements run on."""

    kind: DeviceKind
    id: str  # "cpu:0", "usb:0", "pci:1"
    edgetpu: EdgeTpu | None = None
    cores: tuple[int, ...] = ()  # a CPU device's cores, which a parallel worker pins itself to

    @property
    def is_edgetpu(self) -> bool:
        return self.kind != "cpu"

    def describe(self, runtime: Runtime, num_threads: int) -> str:
        """Words for a verdict line, e.g. ``cpu (x86_64, LiteRT 2.3.0, 1 thread)``."""
        threads = f"{num_threads} thread{'s' if num_threads != 1 else ''}"
        if self.edgetpu is not None:
            return f"{self.id} ({self.edgetpu.link}, {runtime.label}, {threads} for CPU ops)"
        return f"{self.kind} ({platform.machine()}, {runtime.label}, {threads})"


def resolve_devices(
    requests: tuple[DeviceRequest, ...], discovery: Discovery, where: str
) -> tuple[Device, ...]:
    """Map parsed requests to devices; a request that matches nothing is a DeviceError."""
    found = [Device(tpu.kind, tpu.device_string, tpu) for tpu in discovery.devices]
    chosen: list[Device] = []
    for request in requests:
        if request.kind == "auto":
            matches = found or _cpu_devices(request, where)
        elif request.kind == "cpu":
            matches = _cpu_devices(request, where)
        elif request.kind == "any":
            matches = found[request.index : request.index + 1] if request.index is not None else []
        else:
            of_kind = [d for d in found if d.kind == request.kind]
            matches = (
                of_kind if request.index is None else of_kind[request.index : request.index + 1]
            )
        if not matches:
            raise DeviceError(_no_match_message(request, discovery, where))
        chosen.extend(d for d in matches if d not in chosen)
    return tuple(chosen)


def _cpu_devices(request: DeviceRequest, where: str) -> list[Device]:
    """One device per usable core (``cpu``), or the one ``cpu:N`` names."""
    cores = _usable_cores()
    devices = [Device("cpu", f"cpu:{i}", cores=(core,)) for i, core in enumerate(cores)]
    if request.index is None:
        return devices
    if request.index >= len(devices):
        raise DeviceError(
            f"{where}: {request.text!r} asks for CPU device {request.index}, but this host has "
            f"{len(devices)} usable core(s) (cpu:0..cpu:{len(devices) - 1})"
        )
    return [devices[request.index]]


def _usable_cores() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _no_match_message(request: DeviceRequest, discovery: Discovery, where: str) -> str:
    attached = ", ".join(d.device_string for d in discovery.devices) or "none"
    kind = {"usb": "USB ", "pci": "PCIe ", "any": ""}.get(request.kind, "")
    reasons = "; ".join(discovery.notes)
    return (
        f"{where}: no {kind}Edge TPU matches {request.text!r} (attached: {attached})"
        + (f"; {reasons}" if reasons else "")
        + "; run `pytest-edgetpu devices` to see what is attached, or use --edgetpu-device=cpu"
    )


def parse_performance(raw: object, where: str) -> str:
    """``low``/``Low`` ... ``max``/``Max`` → libedgetpu's spelling of the level."""
    by_lower = {level.lower(): level for level in PERFORMANCE_LEVELS}
    level = by_lower.get(str(raw).strip().lower()) if isinstance(raw, str) else None
    if level is None:
        raise ConfigError(
            f"{where}: unknown Edge TPU performance level {raw!r}; use one of "
            f"{', '.join(PERFORMANCE_LEVELS)} (or leave it unset for libedgetpu's own default)"
        )
    return level


def _queue_length(value: str) -> bool:
    return value.isdigit() and int(value) <= 255


# libedgetpu's documented options (tflite/public/edgetpu.h) and what each accepts. It answers
# a bad value only with the same bare ValueError as an unplugged device, so check first.
_DELEGATE_OPTIONS: Final[Mapping[str, tuple[Callable[[str], bool], str]]] = {
    "Performance": (PERFORMANCE_LEVELS.__contains__, "one of " + ", ".join(PERFORMANCE_LEVELS)),
    "Usb.AlwaysDfu": (("True", "False").__contains__, "True or False"),
    "Usb.MaxBulkInQueueLength": (_queue_length, "a whole number from 0 to 255"),
}


def check_delegate_options(options: Mapping[str, str], where: str) -> None:
    """Raise ConfigError, naming ``where`` and the fix, for an option libedgetpu would refuse."""
    for name, value in options.items():
        if name == "device":
            raise ConfigError(
                f"{where}: the delegate option 'device' is set from --edgetpu-device (each "
                "process opens exactly its own device); remove it from the options"
            )
        known = _DELEGATE_OPTIONS.get(name)
        if known is None:
            # Compared without case and punctuation, so usb_max_bulk_in_queue_length (a name
            # libedgetpu never had) still finds Usb.MaxBulkInQueueLength.
            by_letters = {re.sub(r"[^a-z]", "", key.lower()): key for key in _DELEGATE_OPTIONS}
            close = difflib.get_close_matches(
                re.sub(r"[^a-z]", "", name.lower()), list(by_letters), n=1, cutoff=0.6
            )
            hint = f"; did you mean {by_letters[close[0]]!r}?" if close else ""
            raise ConfigError(
                f"{where}: unknown Edge TPU delegate option {name!r}{hint} (libedgetpu knows "
                f"{', '.join(_DELEGATE_OPTIONS)})"
            )
        accepts, expected = known
        if not isinstance(value, str) or not accepts(value):
            raise ConfigError(
                f"{where}: Edge TPU delegate option {name}={value!r} is invalid; use {expected}"
            )


def open_edgetpu_delegate(
    runtime: Runtime,
    device: Device,
    options: Mapping[str, str] | None = None,
    library: str | None = None,
) -> Any:
    """Load the Edge TPU delegate for ``device`` (an explicit index, never "any device").

    ``options`` are libedgetpu's delegate options (``Performance``, ``Usb.AlwaysDfu``,
    ``Usb.MaxBulkInQueueLength``), checked before the device is touched. libedgetpu reports
    every open failure as the same bare ValueError; this turns it into a message naming the
    device string, its path and the likely causes.
    """
    from .discovery import LIBEDGETPU_NAME, library_fix

    library = library or LIBEDGETPU_NAME
    given = dict(options or {})
    check_delegate_options(given, f"Edge TPU delegate options for {device.id}")
    try:
        return runtime.load_delegate(library, {"device": device.id, **given})
    except OSError as exc:
        raise DeviceError(
            f"cannot load {library} for {device.id}: {exc}; fix: {library_fix(str(exc))}"
        ) from exc
    except ValueError as exc:
        path = device.edgetpu.path if device.edgetpu else None
        if device.kind == "pci":
            causes = (
                f"held by another process, {path or '/dev/apex_N'} is not writable by you "
                "(udev rule for the apex group), or the gasket/apex driver (gasket-dkms) is "
                "not loaded"
            )
        else:
            causes = (
                "unplugged, held by another process, or not accessible to you (install the "
                "Edge TPU udev rule and join the plugdev group)"
            )
        where = f"{device.id} ({path})" if path else device.id
        raise DeviceError(
            f"the Edge TPU {where} did not open ({str(exc).strip()}): it is {causes}; run "
            "`pytest-edgetpu devices` to see what is attached"
        ) from exc


def cpu_model() -> str:
    """The CPU's model name, e.g. ``AMD EPYC 7B13``; part of a CPU device profile."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model", "Hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: fall back to what platform knows
    return platform.processor() or platform.machine() or sys.platform


def cpu_governor() -> str | None:
    """The cpufreq governor of core 0 (``performance`` is what benchmarks want)."""
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return None
