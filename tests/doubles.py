"""The test doubles: stand-ins for what this machine has not got (an Edge TPU, libedgetpu, a
host's /sys and /dev) and for time, shared by every test file that needs one.

Everything else the tests run is real: LiteRT, the models, git, pytest processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_edgetpu.device.discovery import Discovery, EdgeTpu, discover
from pytest_edgetpu.device.libedgetpu import LIBEDGETPU_NAME
from pytest_edgetpu.device.runtime import Runtime, load_runtime


class FakeHost:
    """Test double for a host's /sys and /dev: directories and text files under tmp_path.

    /dev/apex_N nodes are regular files here; ``is_char_device`` stands in for the
    ``S_ISCHR`` check, which only root could satisfy with real nodes.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sys = root / "sys"
        self.dev = root / "dev"
        self.sys.mkdir()
        self.dev.mkdir()
        # A path that never loads, so these tests ignore a libedgetpu installed on the machine.
        self.no_library = str(root / "absent" / LIBEDGETPU_NAME)

    @property
    def usb_devices(self) -> Path:
        return self.sys / "bus" / "usb" / "devices"

    def usb_bus(self) -> None:
        """A USB bus with a root hub, a keyboard and an interface directory: none are TPUs."""
        if self.usb_devices.is_dir():
            return
        self.usb_devices.mkdir(parents=True)
        (self.dev / "bus" / "usb").mkdir(parents=True)
        self._usb_dir("usb1", "1d6b", "0002", "480")
        self._usb_dir("1-3", "046d", "c52b", "12")
        (self.usb_devices / "1-3:1.0").mkdir()

    def usb_stick(self, name: str, *, speed: str = "5000", dfu: bool = False) -> None:
        self.usb_bus()
        vendor, product = ("1a6e", "089a") if dfu else ("18d1", "9302")
        self._usb_dir(name, vendor, product, speed)

    def _usb_dir(self, name: str, vendor: str, product: str, speed: str) -> None:
        device = self.usb_devices / name
        device.mkdir()
        (device / "idVendor").write_text(vendor + "\n")
        (device / "idProduct").write_text(product + "\n")
        (device / "speed").write_text(speed + "\n")

    def apex(self, n: int, *, temp: str | None = None, dev_node: bool = True) -> None:
        apex_dir = self.sys / "class" / "apex" / f"apex_{n}"
        apex_dir.mkdir(parents=True)
        if temp is not None:
            (apex_dir / "temp").write_text(temp + "\n")
        if dev_node:
            (self.dev / f"apex_{n}").write_text("")

    def discover(self, **kwargs: Any) -> Discovery:
        options: dict[str, Any] = {
            "sysfs_root": self.sys,
            "dev_root": self.dev,
            "library": self.no_library,
            "use_pycoral": False,
            "is_char_device": Path.is_file,
        }
        options.update(kwargs)
        return discover(**options)


USB3 = EdgeTpu("usb", 0, "/sys/bus/usb/devices/2-1", "sysfs", usb_speed_mbps=5000)


USB2 = EdgeTpu("usb", 0, "/sys/bus/usb/devices/2-1", "sysfs", usb_speed_mbps=480)


PCIE = EdgeTpu("pci", 0, "/dev/apex_0", "sysfs", apex_dir=Path("/sys/class/apex/apex_0"))


class FakeDelegate:
    """Test double for a loaded Edge TPU delegate: it only remembers its device."""

    def __init__(self, device: str) -> None:
        self.device = device


class FakeLoadDelegate:
    """Test double for the runtime's ``load_delegate``: stands in for libedgetpu and a device,
    which this machine does not have. It records every call, raises ``error`` when given, and
    calls ``on_open`` with the device string of every open that succeeds."""

    def __init__(
        self,
        error: BaseException | None = None,
        on_open: Callable[[str], None] | None = None,
    ) -> None:
        self.error = error
        self.on_open = on_open
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, library: str, options: Mapping[str, str] | None = None) -> FakeDelegate:
        given = dict(options or {})
        self.calls.append((library, given))
        if self.error is not None:
            raise self.error
        if self.on_open is not None:
            self.on_open(given["device"])
        return FakeDelegate(given["device"])


def fake_edgetpu_runtime(load_delegate: FakeLoadDelegate) -> Runtime:
    """Real LiteRT, with the Edge TPU delegate replaced by a test double."""
    return Runtime("litert", "2.3.0", load_runtime().interpreter_class, load_delegate)


def discovery_of(*devices: EdgeTpu, build: str | None = "direct") -> Discovery:
    return Discovery(devices, "/usr/lib/libedgetpu.so.1", "RuntimeVersion(14)", build, ())


class FakeClock:
    """A clock that moves only when read, each read ``step_ns`` after the last: the stop rules
    run on a known time line, and no test sleeps."""

    def __init__(self, step_ns: int = 10_000) -> None:
        self.now = 0
        self.step_ns = step_ns
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        self.now += self.step_ns
        return self.now
