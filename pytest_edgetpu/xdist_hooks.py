"""pytest-xdist: one worker per device, devices handed out and taken back, results sent home.

:class:`ControllerHooks` are registered only on the xdist controller of a ``--edgetpu`` run.
The controller opens no device: it enumerates (without opening), gives each worker exactly one
device through ``workerinput``, takes a device back when its worker goes down so a replacement
gets a free one, and names the device when a worker crashed (libedgetpu aborts the process on
a USB transfer error). :class:`WorkerHooks`, on each worker, attach the worker's results to
each test's report, so a worker that crashes later loses nothing already measured.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from .core.errors import DeviceBusyError, DeviceError
from .device.selection import Device

if TYPE_CHECKING:
    from .fixtures import LazyRun
    from .run import BenchRun

__all__ = ["DEVICE_INPUT", "PAYLOAD_ATTR", "ControllerHooks", "WorkerHooks", "node_count"]

#: The ``workerinput`` key that carries a worker's device id.
DEVICE_INPUT = "edgetpu_device"
#: The test report attribute that carries a worker's results to the controller.
PAYLOAD_ATTR = "edgetpu_payload"


def node_count(config: pytest.Config) -> int:
    """How many workers xdist starts (``-n N`` or the ``--tx`` specs)."""
    from xdist.workermanage import parse_tx_spec_config

    return len(parse_tx_spec_config(config))


class ControllerHooks:
    """xdist hooks of the controller."""

    def __init__(self, run: BenchRun, workers: int) -> None:
        devices = run.devices
        if workers > len(devices):
            raise DeviceError(
                f"{workers} xdist workers but {len(devices)} device(s) selected by "
                f"{run.settings.sources['device']} ({', '.join(d.id for d in devices)}): each "
                f"worker needs a device of its own; use -n {len(devices)} or -n auto"
            )
        # Checked here, before any worker starts, so that a device another session holds is
        # one line, not a traceback from every worker that tried to lease it.
        free = run.free_devices()
        if workers > len(free):
            held = [d.id for d in devices if d not in free]
            raise DeviceBusyError(
                f"{workers} xdist workers but only {len(free)} of the {len(devices)} selected "
                f"device(s) are free: {', '.join(held)} held by another pytest-edgetpu session; "
                f"wait for it to finish, or use -n {len(free)}"
                if free
                else f"every selected device is in use ({', '.join(held)} held by another "
                "pytest-edgetpu session); wait for it to finish"
            )
        self.run = run
        self.free: list[Device] = list(free)
        self.held: dict[str, Device] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionstart(self, session: pytest.Session) -> Generator[None, None, None]:
        yield
        # xdist has just started the workers: the controller imports what it reads results
        # with while they start, rather than before, or while they measure.
        _ = self.run.collector

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        if not self.free:
            raise DeviceError(f"no free device left for worker {node.gateway.id}")
        device = self.free.pop(0)
        self.held[node.gateway.id] = device
        node.workerinput[DEVICE_INPUT] = device.id

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        device = self.held.get(node.gateway.id)
        if device is not None and device not in self.free:
            self.free.insert(0, device)

    @pytest.hookimpl
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        device = self.held.get(report.node.gateway.id)
        if device is not None:
            report.longrepr = f"{report.longrepr} on device {device.id}"

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = getattr(report, PAYLOAD_ATTR, None)
        if payload is not None:
            self.run.collector.absorb(payload, f"the xdist worker that ran {report.nodeid}")


class WorkerHooks:
    """xdist hooks of a worker: its results travel to the controller with each test's
    report."""

    def __init__(self, run: LazyRun) -> None:
        self.run = run

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, Any, Any]:
        report = yield
        run = self.run.made
        if run is not None and report.when in ("call", "teardown"):
            payload = run.collector.drain()
            if payload is not None:
                setattr(report, PAYLOAD_ATTR, payload)
        return report
