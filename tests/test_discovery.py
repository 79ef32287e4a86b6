"""Tests of pytest_edgetpu.device.discovery against fake sysfs trees and a fake libedgetpu."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import stat
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from doubles import FakeHost
from factories import build_shared_object

from pytest_edgetpu.device.discovery import Discovery, EdgeTpu, read_apex_temperature
from pytest_edgetpu.device.libedgetpu import libedgetpu_build

FAKE_LIBEDGETPU_SOURCE = Path(__file__).parent / "fake_libedgetpu" / "fake_libedgetpu.c"
NOT_FOUND = (
    "libedgetpu.so.1 not found: install the Edge TPU runtime (libedgetpu1-std or libedgetpu1-max)"
)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def strings(found: Discovery) -> list[str]:
    return [d.device_string for d in found.devices]


# --- sysfs ------------------------------------------------------------------------------


def test_no_devices_no_bus_no_driver_no_library(host: FakeHost) -> None:
    found = host.discover()
    assert found.devices == ()
    assert found.libedgetpu is None
    assert found.libedgetpu_version is None
    assert found.libedgetpu_build is None
    assert found.notes == (
        f"no {host.sys}/class/apex: PCIe driver (gasket-dkms) not loaded",
        f"no USB bus visible at {host.usb_devices} (container without --device /dev/bus/usb?)",
        f"{host.no_library} not found: install the Edge TPU runtime "
        "(libedgetpu1-std or libedgetpu1-max)",
    )


def test_usb_bus_without_tpus_lists_nothing(host: FakeHost) -> None:
    host.usb_bus()
    found = host.discover()
    assert found.devices == ()
    assert not any("USB" in note for note in found.notes)


def test_one_usb3_stick(host: FakeHost) -> None:
    host.usb_stick("2-1", speed="5000")
    (device,) = host.discover().devices
    assert device == EdgeTpu(
        kind="usb", index=0, path=str(host.usb_devices / "2-1"), source="sysfs", usb_speed_mbps=5000
    )
    assert device.device_string == "usb:0"
    assert device.link == "USB 3 (5000 Mbit/s)"


def test_mixed_two_pcie_one_usb2(host: FakeHost) -> None:
    host.apex(1, temp="51000")
    host.apex(0, temp="48250")
    host.usb_stick("1-1.4", speed="480")
    found = host.discover()
    assert strings(found) == ["pci:0", "pci:1", "usb:0"]
    pci0, pci1, usb0 = found.devices
    assert (pci0.path, pci0.temperature_c, pci0.link) == (str(host.dev / "apex_0"), 48.25, "PCIe")
    assert (pci1.path, pci1.temperature_c) == (str(host.dev / "apex_1"), 51.0)
    assert (usb0.usb_speed_mbps, usb0.link, usb0.temperature_c) == (480, "USB 2 (480 Mbit/s)", None)
    assert found.notes[-1].endswith(
        "not found: install the Edge TPU runtime (libedgetpu1-std or libedgetpu1-max)"
    )
    assert len(found.notes) == 1


def test_dfu_stick_comes_first(host: FakeHost) -> None:
    # Sysfs names sort the app-mode stick first; libedgetpu still lists DFU-mode ones first.
    host.usb_stick("1-2", speed="5000")
    host.usb_stick("1-10", speed="5000", dfu=True)
    host.usb_stick("1-9", speed="480", dfu=True)
    found = host.discover()
    assert [(d.device_string, Path(d.path).name, d.dfu_mode) for d in found.devices] == [
        ("usb:0", "1-9", True),
        ("usb:1", "1-10", True),
        ("usb:2", "1-2", False),
    ]


def test_pcie_without_temp_file(host: FakeHost) -> None:
    host.apex(0)
    (device,) = host.discover().devices
    assert device.kind == "pci"
    assert device.temperature_c is None


def test_apex_without_dev_node_is_skipped_with_a_note(host: FakeHost) -> None:
    host.apex(0, dev_node=False)
    host.apex(1)
    found = host.discover()
    # apex_1 is the only usable one, so it is pci:0, as libedgetpu would number it.
    assert [(d.device_string, d.path) for d in found.devices] == [
        ("pci:0", str(host.dev / "apex_1"))
    ]
    node = host.dev / "apex_0"
    assert f"apex_0 has no {node}: pass --device {node} to the container" in found.notes


def test_default_predicate_rejects_a_regular_file(host: FakeHost) -> None:
    host.apex(0)
    found = host.discover(is_char_device=None)
    assert found.devices == ()
    node = host.dev / "apex_0"
    assert f"apex_0: {node} is not a character device, so libedgetpu skips it" in found.notes


def test_default_predicate_accepts_a_char_device(host: FakeHost) -> None:
    host.apex(0, dev_node=False)
    try:
        os.mknod(host.dev / "apex_0", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except (OSError, AttributeError) as error:
        pytest.skip(f"cannot make a character device here: {error}")
    assert strings(host.discover(is_char_device=None)) == ["pci:0"]


def test_usb_stick_without_dev_bus_usb_gets_a_note(host: FakeHost) -> None:
    host.usb_stick("2-1")
    shutil.rmtree(host.dev / "bus")
    found = host.discover()
    assert strings(found) == ["usb:0"]
    nodes = host.dev / "bus" / "usb"
    assert (
        f"USB Edge TPU found in sysfs but no {nodes}: pass --device {nodes} to the container "
        "(libusb opens it there)"
    ) in found.notes


def test_dead_chip_temperature_is_kept_and_noted(host: FakeHost) -> None:
    host.apex(0, temp="-87900")
    found = host.discover()
    assert found.devices[0].temperature_c == -87.9
    assert (
        f"pci:0 ({host.dev / 'apex_0'}) reads -87.9 °C: a reading this low means a dead or "
        "wedged chip, not a cold one (google-coral/edgetpu#843)"
    ) in found.notes


@pytest.mark.parametrize(
    ("content", "expected"),
    [("48250\n", 48.25), ("-87900", -87.9), ("0", 0.0), ("garbage", None), (None, None)],
)
def test_read_apex_temperature(tmp_path: Path, content: str | None, expected: float | None) -> None:
    if content is not None:
        (tmp_path / "temp").write_text(content)
    assert read_apex_temperature(tmp_path) == expected


@pytest.mark.parametrize(
    ("speed", "link"),
    [
        (10000, "USB 3 (10000 Mbit/s)"),
        (480, "USB 2 (480 Mbit/s)"),
        (12, "USB 1.1 (12 Mbit/s)"),
        (None, "USB (speed unknown)"),
    ],
)
def test_link_words(speed: int | None, link: str) -> None:
    assert EdgeTpu("usb", 0, "/sys/bus/usb/devices/2-1", "sysfs", usb_speed_mbps=speed).link == link


# --- libedgetpu_build -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x7fELF\0...PERFORMANCE=DIRECT\0...", "direct"),
        (b"\x7fELF\0...PERFORMANCE=THROTTLED\0...", "throttled"),
        (b"\x7fELF\0 nothing here", None),
        (b"PERFORMANCE=DIRECT PERFORMANCE=THROTTLED", None),
    ],
)
def test_libedgetpu_build(tmp_path: Path, content: bytes, expected: str | None) -> None:
    library = tmp_path / "libedgetpu.so.1"
    library.write_bytes(content)
    assert libedgetpu_build(library) == expected


def test_libedgetpu_build_of_a_missing_file(tmp_path: Path) -> None:
    assert libedgetpu_build(tmp_path / "absent.so") is None


# --- libedgetpu C API (through the fake library) ----------------------------------------


@pytest.fixture(scope="session")
def fake_libedgetpu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test double tests/fake_libedgetpu/fake_libedgetpu.c, built as libedgetpu.so.1."""
    return build_shared_object(
        FAKE_LIBEDGETPU_SOURCE, "libedgetpu.so.1", tmp_path_factory, "the fake libedgetpu"
    )


def lists_outstanding(library: Path) -> int:
    # The same dlopen handle discover() used: glibc hands back the loaded object.
    count: int = ctypes.CDLL(str(library)).fake_edgetpu_lists_outstanding()
    return count


def test_c_api_lists_and_sysfs_enriches(
    host: FakeHost, fake_libedgetpu: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_EDGETPU_DEVICES", raising=False)
    host.apex(0, temp="48250")
    host.usb_stick("2-1", speed="5000")
    found = host.discover(library=str(fake_libedgetpu))
    assert found.devices == (
        EdgeTpu(
            "pci",
            0,
            "/dev/apex_0",
            "libedgetpu",
            temperature_c=48.25,
            apex_dir=host.sys / "class" / "apex" / "apex_0",
        ),
        EdgeTpu("usb", 0, "/sys/bus/usb/devices/2-1", "libedgetpu", usb_speed_mbps=5000),
    )
    assert found.libedgetpu == str(fake_libedgetpu)
    assert found.libedgetpu_version == (
        "BuildLabel(COMPILER=6.3.0 20170516,DATE=redacted,TIME=redacted), RuntimeVersion(14)"
    )
    assert found.libedgetpu_build == "throttled"
    assert found.notes == ()
    assert lists_outstanding(fake_libedgetpu) == 0  # the array went back to edgetpu_free_devices


def test_c_api_order_wins_and_unlisted_sysfs_devices_are_noted(
    host: FakeHost, fake_libedgetpu: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "FAKE_EDGETPU_DEVICES",
        "1:/sys/bus/usb/devices/2-2;1:/sys/bus/usb/devices/2-1;7:/dev/odd",
    )
    host.usb_stick("2-1", speed="480")
    host.usb_stick("2-2", speed="5000", dfu=True)
    host.usb_stick("2-3", speed="5000")
    found = host.discover(library=str(fake_libedgetpu))
    assert [
        (d.device_string, Path(d.path).name, d.usb_speed_mbps, d.dfu_mode) for d in found.devices
    ] == [
        ("usb:0", "2-2", 5000, True),
        ("usb:1", "2-1", 480, False),
    ]
    assert found.notes == (
        f"no {host.sys}/class/apex: PCIe driver (gasket-dkms) not loaded",
        "libedgetpu listed '/dev/odd' with unknown device type 7",
        f"{host.usb_devices / '2-3'} is an Edge TPU in sysfs but libedgetpu did not list it "
        "(no access to its device node, or another process re-enumerating it?)",
    )
    assert lists_outstanding(fake_libedgetpu) == 0


def test_c_api_with_no_devices(
    host: FakeHost, fake_libedgetpu: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_EDGETPU_DEVICES", "")
    found = host.discover(library=str(fake_libedgetpu))
    assert found.devices == ()
    assert found.libedgetpu_build == "throttled"


@pytest.mark.skipif(sys.platform != "linux", reason="LD_LIBRARY_PATH and dladdr are Linux here")
def test_bare_library_name_resolves_to_its_path(fake_libedgetpu: Path, tmp_path: Path) -> None:
    # dlopen reads LD_LIBRARY_PATH only at start-up, hence a child process.
    code = (
        "from pathlib import Path; from pytest_edgetpu.device.discovery import discover\n"
        "d = discover(sysfs_root=Path('/nonexistent'), use_pycoral=False)\n"
        "print(d.libedgetpu); print(d.libedgetpu_build)\n"
    )
    env = {**os.environ, "LD_LIBRARY_PATH": str(fake_libedgetpu.parent)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == [str(fake_libedgetpu), "throttled"]


def test_library_that_is_not_libedgetpu(host: FakeHost) -> None:
    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no libc to load")
    found = host.discover(library=libc)
    assert found.libedgetpu is None
    assert any(note.startswith(f"{libc} loaded but is not libedgetpu (") for note in found.notes)


# --- libedgetpu missing ------------------------------------------------------------------


def refuse_to_load(message: str) -> Any:
    def cdll(name: str | None, *args: Any, **kwargs: Any) -> Any:
        raise OSError(message)

    return cdll


def test_missing_library_note(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        ctypes,
        "CDLL",
        refuse_to_load(
            "libedgetpu.so.1: cannot open shared object file: No such file or directory"
        ),
    )
    found = host.discover(library=None)
    assert NOT_FOUND in found.notes
    assert found.libedgetpu is None


def test_missing_libusb_note(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        ctypes,
        "CDLL",
        refuse_to_load(
            "libusb-1.0.so.0: cannot open shared object file: No such file or directory"
        ),
    )
    found = host.discover(library=None)
    assert (
        "libusb-1.0.so.0 missing: apt-get install libusb-1.0-0 (libedgetpu.so.1 needs it)"
        in found.notes
    )


def test_unloadable_library_note_keeps_the_reason(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        ctypes, "CDLL", refuse_to_load("libedgetpu.so.1: wrong ELF class: ELFCLASS32")
    )
    found = host.discover(library=None)
    assert "libedgetpu.so.1 could not be loaded: libedgetpu.so.1: wrong ELF class: ELFCLASS32" in (
        found.notes
    )


# --- pycoral (a fake module) ------------------------------------------------------------


def install_fake_pycoral(monkeypatch: pytest.MonkeyPatch, listing: list[Any]) -> None:
    """Test double for Google's pycoral: just pycoral.utils.edgetpu.list_edge_tpus()."""
    package = types.ModuleType("pycoral")
    utils = types.ModuleType("pycoral.utils")
    edgetpu = types.ModuleType("pycoral.utils.edgetpu")
    edgetpu.list_edge_tpus = lambda: listing  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pycoral", package)
    monkeypatch.setitem(sys.modules, "pycoral.utils", utils)
    monkeypatch.setitem(sys.modules, "pycoral.utils.edgetpu", edgetpu)


def test_pycoral_is_asked_first(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_pycoral(
        monkeypatch,
        [
            {"type": "pci", "path": "/dev/apex_0"},
            {"type": "usb", "path": "/sys/bus/usb/devices/2-1"},
        ],
    )
    host.apex(0, temp="40000")
    host.usb_stick("2-1", speed="480")
    found = host.discover(use_pycoral=True)
    assert [(d.device_string, d.source) for d in found.devices] == [
        ("pci:0", "pycoral"),
        ("usb:0", "pycoral"),
    ]
    assert found.devices[0].temperature_c == 40.0
    assert found.devices[1].link == "USB 2 (480 Mbit/s)"


def test_unrelated_pycoral_falls_back_to_sysfs(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyPI's "pycoral" (an Allen Coral Atlas CLI) has no pycoral.utils.
    monkeypatch.setitem(sys.modules, "pycoral", types.ModuleType("pycoral"))
    host.usb_stick("2-1")
    found = host.discover(use_pycoral=True)
    assert [(d.device_string, d.source) for d in found.devices] == [("usb:0", "sysfs")]


def test_malformed_pycoral_listing_is_ignored_with_a_note(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_pycoral(monkeypatch, [{"type": "tpu", "path": "/x"}])
    host.usb_stick("2-1")
    found = host.discover(use_pycoral=True)
    assert [d.source for d in found.devices] == ["sysfs"]
    assert (
        "pycoral.utils.edgetpu.list_edge_tpus() returned {'type': 'tpu', 'path': '/x'}, not "
        "{'type': 'usb'|'pci', 'path': str}: ignored pycoral"
    ) in found.notes
