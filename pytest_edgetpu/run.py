"""One benchmark run: settings, the devices, and the parts that measure, judge and collect.

The engine behind the plugin's hooks, free of pytest. A process plays one role:

* ``serial``: measures on the first device it can lease, writes files at the end;
* ``worker`` (pytest-xdist): measures on the device the controller assigned, leases it, pins
  itself to its cores, and hands its results and queued baseline entries to the controller;
* ``base``: a relative-mode helper (:mod:`pytest_edgetpu.relative.helper`): runs one test at a git
  revision on the device its parent holds (no lease of its own) and measures on command;
* ``controller``: measures nothing; it hands devices out, gathers the workers' results, and
  alone writes baselines and reports. It opens a device only to load the firmware of a USB
  stick still in DFU mode, before any worker starts (see :meth:`BenchRun.discovery`).

A measuring process has a :class:`~pytest_edgetpu.engine.station.Station` (the device it holds) and
a :class:`~pytest_edgetpu.judge.gate.Gate` (which turns a measurement into a result); every process
has a :class:`~pytest_edgetpu.judge.collector.Collector` (the results, and the entries to write).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .config import SessionSettings
from .core.errors import DeviceError
from .device.delegates import open_edgetpu_delegate
from .device.discovery import Discovery, discover
from .device.leases import is_free
from .device.runtime import Runtime, load_runtime
from .device.selection import Device, resolve_devices
from .judge.baselines import BaselineStore
from .relative.serving import Serving

if TYPE_CHECKING:
    # numpy and the engine, imported by the properties that need them: an xdist controller
    # hands devices out before it needs any of them (see ``xdist_hooks.ControllerHooks``).
    from .engine.station import Station
    from .judge.collector import Collector
    from .judge.gate import Gate, Pending
    from .judge.results import Result
    from .judge.structure import StructureStore, StructureVerdict
    from .model.inspection import ModelInfo
    from .relative.base import Relative
    from .relative.fresh import FreshProcesses

__all__ = ["BenchRun", "Role"]


class Role(enum.Enum):
    """What one process of a benchmarking session does (see the module's docstring)."""

    SERIAL = "serial"
    CONTROLLER = "controller"
    WORKER = "worker"
    BASE = "base"

    @property
    def measures(self) -> bool:
        """Holds a device and measures on it (the controller only hands devices out)."""
        return self is not Role.CONTROLLER

    @property
    def writes_outputs(self) -> bool:
        """Writes the run's baselines, results, report and plots: a worker hands its results
        to the controller, and a relative-mode helper's are its parent's to report."""
        return self in (Role.SERIAL, Role.CONTROLLER)

    @property
    def hands_results_over(self) -> bool:
        """Sends its results to the xdist controller with each test's report."""
        return self is Role.WORKER

    @property
    def borrows_device(self) -> bool:
        """Measures on the device its parent process holds, without a lease of its own."""
        return self is Role.BASE


class BenchRun:
    """One process's part of a benchmarking pytest session."""

    def __init__(
        self,
        settings: SessionSettings,
        rootdir: Path,
        *,
        role: Role = Role.SERIAL,
        workers: int = 1,
        assigned_device: str | None = None,
        discover_devices: Callable[[], Discovery] = discover,
        runtime: Runtime | None = None,
        serving: Serving | None = None,
    ) -> None:
        self.settings = settings
        self.rootdir = rootdir
        self.role = role
        self.workers = workers
        self.assigned_device = assigned_device
        self._discover = discover_devices
        self._runtime = runtime
        #: USB sticks the controller took out of DFU mode before starting workers (paths).
        self.primed: list[str] = []
        #: In a relative-mode helper (role ``base``): the channel to the process it serves.
        self.serving = serving

    @functools.cached_property
    def collector(self) -> Collector:
        from .judge.collector import Collector

        return Collector(self.settings.baseline_dir, self.display)

    @functools.cached_property
    def runtime(self) -> Runtime:
        return self._runtime or load_runtime()

    @functools.cached_property
    def discovery(self) -> Discovery:
        """The Edge TPUs found; on the controller, after loading DFU-mode sticks' firmware."""
        found = self._discover()
        if self.role is Role.CONTROLLER and any(
            r.kind in ("auto", "usb", "any") for r in self.settings.devices
        ):
            found = self._prime_dfu_sticks(found)
        return found

    def _prime_dfu_sticks(self, found: Discovery) -> Discovery:
        """Open each USB stick still in DFU mode once, serially, and enumerate again.

        libedgetpu lists DFU-mode sticks first, and a stick's first open loads its firmware
        and re-enumerates it, which renumbers the other sticks (``docs/devices.md``): workers
        opening their ``usb:N`` at the same time could open each other's. Once every stick
        runs its firmware the order is stable, so devices are handed out only after this.
        Sticks already running firmware are left alone: one may be held by another process,
        and opening it would reset the stick under that process.
        """
        while True:
            stick = next((d for d in found.devices if d.dfu_mode), None)
            if stick is None:
                return found
            if stick.path in self.primed:
                raise DeviceError(
                    f"the USB Edge TPU {stick.device_string} ({stick.path}) is still in DFU "
                    "mode (1a6e:089a) after its firmware was loaded; replug it, into a port or "
                    "powered hub that supplies 900 mA, and check `pytest-edgetpu devices`"
                )
            # Dropped at once: closing the delegate releases the stick, now in app mode.
            open_edgetpu_delegate(self.runtime, Device("usb", stick.device_string, stick))
            self.primed.append(stick.path)
            found = self._discover()

    @functools.cached_property
    def devices(self) -> tuple[Device, ...]:
        """Every device the spec selects (found without opening any)."""
        return resolve_devices(
            self.settings.devices,
            self.discovery,
            self.settings.sources["device"],
            root=self.rootdir,
            delegate_options=self.settings.delegate_options,
        )

    def free_devices(self) -> tuple[Device, ...]:
        """The selected devices no other session holds now (the controller's check before
        it starts workers; a worker still leases its device for itself)."""
        return tuple(device for device in self.devices if is_free(device.lease_id))

    @functools.cached_property
    def station(self) -> Station:
        """The device this process measures on, leased for the whole session."""
        if not self.role.measures:
            raise DeviceError("the xdist controller measures nothing; its workers do")
        from .engine.station import Station

        if self.role.borrows_device:
            return Station.borrowed(
                self.devices[0],
                self.runtime,
                self.discovery,
                probe_models=self.serving is None or self.serving.probe_models,
            )
        return Station.lease(
            self.devices,
            self.runtime,
            self.discovery,
            assigned=self.assigned_device,
            performance=self.settings.performance,
            workers=self.workers,
        )

    @functools.cached_property
    def relative(self) -> Relative | None:
        """Relative mode's revision (``--edgetpu-against``), None when gating against stored
        baselines."""
        if self.settings.against is None:
            return None
        from .relative.base import Relative

        return Relative.resolve(
            self.settings.against, self.rootdir, self.settings.sources["against"]
        )

    @functools.cached_property
    def fresh(self) -> FreshProcesses:
        """Fresh processes of the working tree's tests, in which callables are measured against
        stored baselines (and recorded)."""
        from .relative.fresh import FreshProcesses

        return FreshProcesses(self.rootdir, self.station.session.device.kind_words)

    @functools.cached_property
    def store(self) -> BaselineStore:
        return BaselineStore(self.settings.baseline_dir, self.settings.sources["baseline_dir"])

    @functools.cached_property
    def gate(self) -> Gate:
        from .engine.host_reference import HostReference
        from .judge.gate import Gate

        return Gate(
            self.station,
            self.store,
            strict=self.settings.strict,
            update=self.settings.update,
            accept_unstable=self.settings.accept_unstable,
            display=self.display,
            memory_policy=self.settings.memory_policy,
            # A device that is not the host's CPU runs at its own speed.
            host=None if self.station.device.exclusive else HostReference(),
        )

    def start(self) -> None:
        """Fail early, before any test runs, on a bad device or a bad baseline file; open the
        Edge TPU delegate now, so its load time stays out of every measurement."""
        if not self.settings.enabled:
            return
        # Neither relative mode nor a helper reads a stored baseline. A helper that did would
        # differ from the other side's, whose tree has none (the files are not versioned), in
        # what it did before measuring: the working tree's helpers parsing its baselines made
        # a list comprehension there read 5% slower than at the revision, pair after pair
        # (benchmarks/process_gate.py, 2026-12-07 afternoon).
        if self.relative is None and self.serving is None:
            _ = self.store
            _ = self.structures
        if self.role.measures:
            # A helper's tests may load no model at all: its probe starts with the first.
            self.station.session.open(early_probe=self.serving is None)
        else:
            _ = self.devices

    @functools.cached_property
    def structures(self) -> StructureStore:
        """The stored compile structures (``edgetpu-compile.json`` in the baseline directory)."""
        from .judge.structure import StructureStore

        return StructureStore(self.settings.baseline_dir)

    def judge_structure(self, info: ModelInfo, unmeasured: str = "") -> StructureVerdict | None:
        """The compile structure verdict of a model a test benchmarks, against the stored
        structure or, in relative mode, the file at the revision; kept for the reports and an
        update. None for a model that is neither compiled nor named as if it were, or where
        nothing is gated (no ``--edgetpu``, a relative-mode helper). ``unmeasured`` says why
        the model's latency will not be measured, where it will not."""
        if not self.settings.enabled or self.serving is not None:
            return None
        if info.compiled is None and not info.path.name.endswith("_edgetpu.tflite"):
            return None
        from .judge.structure import judge_structure, structure_of
        from .model.inspection import inspect_model

        key = self.display(info.path).as_posix()
        base = None
        if self.relative is not None:
            against = f"{self.relative.words}:{key}, the file there"
            at_revision = self.relative.files.file(info.path)
            if at_revision is None:
                against = f"{self.relative.words} (no {key} there)"
            else:
                base = structure_of(inspect_model(at_revision))
        else:
            against = self.display(self.structures.path).as_posix()
            base = self.structures.entries.get(key)
        verdict = replace(
            judge_structure(structure_of(info), base, key, against), unmeasured=unmeasured
        )
        self.collector.structures.append(verdict)
        return verdict

    def judge(self, pending: Pending) -> Result:
        """Judge a measurement and keep its result."""
        result = self.gate.judge(pending)
        self.collector.add(result, self.station.profile, self.station.environment)
        return result

    def close(self) -> None:
        """Stop the device session's helper and give the device's lease back."""
        if "station" in self.__dict__:
            self.station.close()
        for opened in ("relative", "fresh"):
            if self.__dict__.get(opened) is not None:
                self.__dict__[opened].close()

    def display(self, path: Path) -> Path:
        """``path`` relative to the rootdir when it lies below it."""
        try:
            return path.relative_to(self.rootdir)
        except ValueError:
            return path
