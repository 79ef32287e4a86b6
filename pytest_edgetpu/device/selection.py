"""Devices: the ``--edgetpu-device`` grammar, resolution to concrete devices, host facts.

A device is one of:

* a CPU core (``cpu:N``: LiteRT's default CPU path, its XNNPACK delegate on; ``cpu-builtin:N``:
  LiteRT's built-in kernels alone, ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``);
* one Edge TPU (``usb:N`` / ``pci:N``, found by :mod:`pytest_edgetpu.device.discovery` without
  opening it);
* a TFLite external delegate library (``delegate:PATH``, loaded with ``load_delegate(PATH,
  options)`` as benchmark_model's ``--external_delegate_path`` loads it; what it leaves runs on
  the built-in CPU kernels);
* a LiteRT CompiledModel accelerator (``litert-cpu:N``, ``litert-gpu``, ``litert-npu``,
  :mod:`pytest_edgetpu.device.accelerators`).

Several of them can be one physical device (``cpu:0``, ``cpu-builtin:0`` and ``litert-cpu:0``
are core 0): :attr:`Device.lease_id` names the physical one, which leases are taken on.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import platform
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from ..core.errors import ConfigError, DeviceError

if TYPE_CHECKING:  # discovery pulls in ctypes: imported when a device is looked for
    from .discovery import Discovery, EdgeTpu
    from .runtime import Runtime

__all__ = [
    "Device",
    "DeviceRequest",
    "ExternalDelegate",
    "cpu_governor",
    "cpu_model",
    "parse_delegate_options",
    "parse_device_spec",
    "resolve_devices",
    "usable_cores",
]


DeviceKind = Literal["cpu", "usb", "pci", "delegate", "litert"]
#: A LiteRT CompiledModel accelerator (:mod:`pytest_edgetpu.device.accelerators`).
Accelerator = Literal["cpu", "gpu", "npu"]

#: Device words with an index, and the words a whole kind goes by.
_INDEXED: Final = ("cpu", "cpu-builtin", "litert-cpu", "usb", "pci")
_WHOLE: Final = ("auto", *_INDEXED, "litert-gpu", "litert-npu")
_ITEM = re.compile(
    rf"^(?:(?P<kind>{'|'.join(_WHOLE)})|(?P<typed>{'|'.join(_INDEXED)})?:(?P<index>[0-9]{{1,6}}))$"
)
_DELEGATE_PREFIX: Final = "delegate:"
_EXPECTED: Final = (
    "expected auto, cpu, cpu-builtin, usb, pci, litert-cpu, litert-gpu, litert-npu (each but "
    "the last two also with :N), :N, delegate:PATH, or a comma list of them"
)


@dataclass(frozen=True)
class DeviceRequest:
    """One item of a device spec: ``kind`` is one of ``auto``, ``cpu``, ``cpu-builtin``,
    ``usb``, ``pci``, ``litert-cpu``, ``litert-gpu``, ``litert-npu``, ``delegate`` or ``any``
    (the ``:N`` form); ``index`` is None when the item names every device of its kind;
    ``library`` is a ``delegate:PATH`` item's path as written."""

    kind: str
    index: int | None
    text: str
    library: str | None = None


def parse_device_spec(text: str, where: str) -> tuple[DeviceRequest, ...]:
    """Parse ``auto``, ``cpu``, ``cpu-builtin``, ``usb``, ``pci``, ``litert-cpu``,
    ``litert-gpu``, ``litert-npu``, their ``:N`` forms, ``:N``, ``delegate:PATH`` and comma
    lists of them; ``where`` names the source of the value for the error."""
    requests = []
    for raw in text.split(","):
        item = raw.strip()
        if item.startswith(_DELEGATE_PREFIX):
            requests.append(_delegate_request(item, text, where))
            continue
        match = _ITEM.match(item)
        if match is None:
            raise ConfigError(
                f"{where}: unknown device {item!r} in {text!r}{_hint(item)}; {_EXPECTED}"
            )
        if match["kind"]:
            requests.append(DeviceRequest(match["kind"], None, item))
        else:
            requests.append(DeviceRequest(match["typed"] or "any", int(match["index"]), item))
    if sum(r.kind == "delegate" for r in requests) > 1:
        raise ConfigError(
            f"{where}: {text!r} names more than one external delegate; benchmark one library "
            "per run (its baselines are its own)"
        )
    return tuple(requests)


#: What people call the devices that have other names here.
_OTHER_NAMES: Final = {
    "gpu": "litert-gpu",
    "npu": "litert-npu",
    "xnnpack": "cpu",
    "cpu-xnnpack": "cpu",
    "builtin": "cpu-builtin",
    "cpu-noxnnpack": "cpu-builtin",
    "cpu-no-xnnpack": "cpu-builtin",
}


def _hint(item: str) -> str:
    if _ITEM.match(item.lower()):
        return f" (device strings are lower-case: {item.lower()!r})"
    name = _OTHER_NAMES.get(item.lower()) or next(
        iter(difflib.get_close_matches(item.lower(), _WHOLE, n=1, cutoff=0.8)), None
    )
    return f" (did you mean {name!r}?)" if name else ""


def _delegate_request(item: str, text: str, where: str) -> DeviceRequest:
    library = item.removeprefix(_DELEGATE_PREFIX)
    if not library or not library.isprintable() or "/" not in library:
        raise ConfigError(
            f"{where}: {item!r} in {text!r} does not name a delegate library; give its path, "
            "e.g. delegate:/usr/lib/libvx_delegate.so or delegate:./libmy_delegate.so"
        )
    return DeviceRequest("delegate", None, item, library)


@dataclass(frozen=True)
class ExternalDelegate:
    """A TFLite external delegate library, as found when the run starts, and the options it
    is loaded with (``--edgetpu-delegate-options``)."""

    path: Path  # absolute, as given (a symlink stays the name the user gave)
    sha256: str  # of the file the path leads to: a rebuilt library is another device
    options: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def version(self) -> str | None:
        """The version a versioned file name carries (``libfoo.so.2.1`` → ``2.1``); the TFLite
        external delegate interface has no call that says it."""
        found = re.search(r"\.so\.([0-9][0-9.]*)$", os.path.realpath(self.path))
        return found.group(1) if found else None

    @property
    def options_text(self) -> str:
        """The options in benchmark_model's ``key:value;key:value`` form, sorted by key."""
        return ";".join(f"{key}:{value}" for key, value in sorted(self.options))


#: A delegate library larger than this is refused before it is read (a real one is well below).
MAX_DELEGATE_BYTES: Final = 1 << 30


def parse_delegate_options(raw: object, where: str) -> tuple[tuple[str, str], ...]:
    """benchmark_model's ``--external_delegate_options`` form, ``key:value;key:value``."""
    text = str(raw).strip()
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        key, colon, value = item.partition(":")
        key, value = key.strip(), value.strip()
        if not colon or not key or not (key + value).isprintable():
            raise ConfigError(
                f"{where}: {item!r} in {text!r} is not a delegate option; write them as "
                "key:value;key:value (benchmark_model's --external_delegate_options form)"
            )
        if key in pairs:
            raise ConfigError(f"{where}: the delegate option {key!r} is given twice in {text!r}")
        pairs[key] = value
    return tuple(pairs.items())


@dataclass(frozen=True)
class Device:
    """A concrete device that measurements run on."""

    kind: DeviceKind
    id: str  # "cpu:0", "cpu-builtin:1", "usb:0", "pci:1", "delegate:libfoo.so", "litert-gpu"
    edgetpu: EdgeTpu | None = None
    cores: tuple[int, ...] = ()  # a CPU device's cores, which a parallel worker pins itself to
    #: A CPU device's default delegate: False for ``cpu-builtin`` (XNNPACK off).
    xnnpack: bool = True
    delegate: ExternalDelegate | None = None
    #: A LiteRT CompiledModel device's accelerator: "cpu", "gpu" or "npu".
    accelerator: Accelerator | None = None

    @property
    def is_edgetpu(self) -> bool:
        return self.kind in ("usb", "pci")

    @property
    def kind_words(self) -> str:
        """The device's words without its index (``cpu-builtin`` for ``cpu-builtin:1``): what
        a helper process of this session names to measure on the same kind of device, on the
        cores it inherits (a parallel worker's one core is its ``cpu:0``)."""
        match = _ITEM.match(self.id)
        return match["typed"] if match and match["typed"] else self.id

    @property
    def exclusive(self) -> bool:
        """Whether the hardware may be open in one process only: an Edge TPU, an external
        delegate's accelerator, a GPU or NPU (never probed in a helper, one delegate)."""
        return self.kind in ("usb", "pci", "delegate") or self.accelerator in ("gpu", "npu")

    @property
    def lease_id(self) -> str:
        """The physical device this one runs on, which its lease is taken on: a core for
        every CPU variant, the library for an external delegate."""
        if self.cores and self.kind in ("cpu", "litert"):
            # Every CPU variant numbers the usable cores alike: cpu-builtin:1 is cpu:1's core.
            return "cpu:" + self.id.rpartition(":")[2]
        if self.delegate is not None:
            return f"delegate-{self.delegate.sha256[:16]}"
        return self.id

    def describe(self, runtime: Runtime, num_threads: int) -> str:
        """Words for a verdict line, e.g. ``cpu (x86_64, LiteRT 2.3.0, 1 thread)``."""
        threads = f"{num_threads} thread{'s' if num_threads != 1 else ''}"
        if self.edgetpu is not None:
            return f"{self.id} ({self.edgetpu.link}, {runtime.label}, {threads} for CPU ops)"
        if self.delegate is not None:
            return f"{self.id} ({platform.machine()}, {runtime.label}, {threads} for CPU ops)"
        if self.kind == "litert":
            return f"litert-{self.accelerator} ({platform.machine()}, {runtime.label}, {threads})"
        words = self.kind if self.xnnpack else "cpu-builtin"
        return f"{words} ({platform.machine()}, {runtime.label}, {threads})"


def resolve_devices(
    requests: tuple[DeviceRequest, ...],
    discovery: Discovery,
    where: str,
    *,
    root: Path | None = None,
    delegate_options: tuple[tuple[str, str], ...] = (),
) -> tuple[Device, ...]:
    """Map parsed requests to devices; a request that matches nothing is a DeviceError.
    ``root`` is where a relative ``delegate:PATH`` starts (default: the working directory)."""
    found = [Device(tpu.kind, tpu.device_string, tpu) for tpu in discovery.devices]
    chosen: list[Device] = []
    for request in requests:
        if request.kind == "auto":
            matches = found or _cpu_devices(request, where)
        elif request.kind in ("cpu", "cpu-builtin", "litert-cpu"):
            matches = _cpu_devices(request, where)
        elif request.kind in ("litert-gpu", "litert-npu"):
            accelerator: Accelerator = "gpu" if request.kind == "litert-gpu" else "npu"
            matches = [Device("litert", request.kind, accelerator=accelerator)]
        elif request.library is not None:  # delegate:PATH, the one kind that names a library
            library = _delegate_library(request.library, root or Path.cwd(), where)
            matches = [
                Device(
                    "delegate",
                    f"delegate:{library.name}",
                    delegate=ExternalDelegate(library, _sha256(library, where), delegate_options),
                )
            ]
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
    _check_one_use_each(chosen, where)
    return tuple(chosen)


def _check_one_use_each(devices: list[Device], where: str) -> None:
    """Refuse a list that names one physical device twice (``cpu,cpu-builtin``): one lease
    covers it, so only one of them could ever run, and which one would be chance."""
    seen: dict[str, str] = {}
    for device in devices:
        other = seen.setdefault(device.lease_id, device.id)
        if other != device.id:
            raise ConfigError(
                f"{where}: {other} and {device.id} are the same physical device "
                f"({device.lease_id}), which one run holds once; compare them in two runs, "
                "or give each its own cores (cpu:0,cpu-builtin:1)"
            )


def _cpu_devices(request: DeviceRequest, where: str) -> list[Device]:
    """One device per usable core (``cpu``, ``cpu-builtin``, ``litert-cpu``), or the one
    ``...:N`` names."""
    cores = usable_cores()
    word = "cpu" if request.kind == "auto" else request.kind
    kind: DeviceKind = "litert" if word == "litert-cpu" else "cpu"
    devices = [
        Device(
            kind,
            f"{word}:{i}",
            cores=(core,),
            xnnpack=word != "cpu-builtin",
            accelerator="cpu" if kind == "litert" else None,
        )
        for i, core in enumerate(cores)
    ]
    if request.index is None:
        return devices
    if request.index >= len(devices):
        raise DeviceError(
            f"{where}: {request.text!r} asks for CPU device {request.index}, but this host has "
            f"{len(devices)} usable core(s) ({word}:0..{word}:{len(devices) - 1})"
        )
    return [devices[request.index]]


def _delegate_library(written: str, root: Path, where: str) -> Path:
    """The library a ``delegate:PATH`` names, checked without loading it: it must lead to a
    regular file (a FIFO would block the loader, a device file is no library)."""
    path = root / os.path.expanduser(written)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise DeviceError(
            f"{where}: the delegate library {path} cannot be read ({exc.strerror or exc}); "
            "give the path of a TFLite external delegate (a .so with "
            "tflite_plugin_create_delegate)"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise DeviceError(
            f"{where}: the delegate library {path} is not a regular file; give the path of "
            "the .so itself"
        )
    if info.st_size > MAX_DELEGATE_BYTES:
        raise DeviceError(
            f"{where}: the delegate library {path} is {info.st_size} bytes, above the "
            f"{MAX_DELEGATE_BYTES} a delegate library can be; check the path"
        )
    return path


def _sha256(path: Path, where: str) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as library:
            for block in iter(lambda: library.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise DeviceError(
            f"{where}: the delegate library {path} cannot be read ({exc.strerror or exc})"
        ) from None
    return digest.hexdigest()


def usable_cores() -> list[int]:
    """The CPU cores this process may run on."""
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
