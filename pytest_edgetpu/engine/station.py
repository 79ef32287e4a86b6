"""The device this process measures on: leased, pinned, opened, and described.

A :class:`Station` holds one device for a whole session (its lease, the
:class:`~pytest_edgetpu.engine.session.DeviceSession` on it) and says what every result needs to
know about it: the device profile baselines are keyed by, the device in words, and the environment a
baseline entry records. Only a process that measures (serial, or an xdist worker) has one.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
from collections.abc import Sequence

from ..core.errors import DeviceBusyError, DeviceError
from ..device.discovery import Discovery
from ..device.leases import Lease, acquire
from ..device.profile import Profile
from ..device.runtime import Runtime
from ..device.selection import Device, cpu_governor, cpu_model
from .session import DeviceSession

__all__ = ["Station", "device_profile", "plugin_version"]


def plugin_version() -> str:
    try:
        return importlib.metadata.version("pytest-edgetpu")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def device_profile(
    device: Device,
    runtime: Runtime,
    discovery: Discovery | None,
    performance: str | None = None,
    workers: int = 1,
) -> Profile:
    """What must match for two measurements to be compared (the baseline file's key).

    For an Edge TPU: what changes its latency by design, i.e. its kind, its link (USB 2 and
    USB 3 differ 4-12x), the libedgetpu build (direct or throttled clock) and, when set, the
    performance level; never the path or index, which move between boots. With parallel
    workers, their number (they slow each other down): a team's serial baselines and its
    ``-n 2`` CI baselines live side by side, in files of their own. For an external delegate:
    the library's name and digest (a rebuilt library is another device) and its options, beside
    the host CPU that runs what it leaves; for the CPU without XNNPACK and LiteRT's
    CompiledModel accelerators, their own device names.
    """
    if device.edgetpu is None:
        fields = {
            "device": _device_word(device),
            "arch": platform.machine(),
            "cpu_model": cpu_model(),
            "runtime": runtime.family,
        }
        if device.delegate is not None:
            fields["delegate"] = device.delegate.name
            fields["delegate_sha256"] = device.delegate.sha256[:12]
            if device.delegate.options:
                fields["delegate_options"] = device.delegate.options_text
        return Profile(fields).with_workers(workers)
    tpu = device.edgetpu
    link = f"usb{tpu.usb_speed_mbps}" if tpu.usb_speed_mbps else tpu.kind
    fields = {
        "device": f"edgetpu-{tpu.kind}",
        "link": link,
        "arch": platform.machine(),
        "libedgetpu": (discovery.libedgetpu_build if discovery else None) or "unknown",
        "runtime": runtime.family,
    }
    if performance is not None:
        fields["performance"] = performance
    return Profile(fields).with_workers(workers)


def _device_word(device: Device) -> str:
    if device.kind == "litert":
        return f"litert-{device.accelerator}"
    if device.kind == "delegate":
        return "delegate"
    return "cpu" if device.xnnpack else "cpu-builtin"


class Station:
    """One leased device and the session open on it."""

    def __init__(
        self,
        device: Device,
        lease: Lease | None,
        runtime: Runtime,
        discovery: Discovery,
        *,
        performance: str | None,
        workers: int,
        probe_models: bool = True,
    ) -> None:
        options = {"Performance": performance} if performance is not None else {}
        self.session = DeviceSession(
            device, runtime, delegate_options=options, probe_models=probe_models
        )
        self.runtime = runtime
        self.workers = workers
        self._lease: Lease | None = lease
        self._discovery = discovery
        self._performance = performance
        self._words: dict[int, str] = {}

    @classmethod
    def lease(
        cls,
        devices: Sequence[Device],
        runtime: Runtime,
        discovery: Discovery,
        *,
        assigned: str | None,
        performance: str | None,
        workers: int,
    ) -> Station:
        """Lease the ``assigned`` device (an xdist worker's, which then runs on its device's
        cores alone), or else the first free one."""
        if assigned is not None:
            device = next((d for d in devices if d.id == assigned), None)
            if device is None:
                raise DeviceError(
                    f"the controller assigned {assigned}, which this host does not have "
                    f"({', '.join(d.id for d in devices)}); with --tx to other hosts give each "
                    "the same --edgetpu-device"
                )
            held = acquire(device.lease_id)
            if device.cores and hasattr(os, "sched_setaffinity"):
                # Parallel workers on their own cores disturb each other less: a neighbour's
                # process on the same core moves a measurement by far more than one on another.
                os.sched_setaffinity(0, device.cores)
            return cls(device, held, runtime, discovery, performance=performance, workers=workers)
        busy = []
        for device in devices:
            try:
                lease = acquire(device.lease_id)
            except DeviceBusyError as error:
                busy.append(str(error))
                continue
            return cls(device, lease, runtime, discovery, performance=performance, workers=workers)
        raise DeviceError("every selected device is in use: " + "; ".join(busy))

    @classmethod
    def borrowed(
        cls, device: Device, runtime: Runtime, discovery: Discovery, *, probe_models: bool
    ) -> Station:
        """The device the parent process holds, for a helper of relative mode or of fresh
        processes: no lease (the parent's covers it) and the parent's cores (inherited);
        ``probe_models``: False where the parent has tried the helper's models already."""
        return cls(
            device,
            None,
            runtime,
            discovery,
            performance=None,
            workers=1,
            probe_models=probe_models,
        )

    @property
    def device(self) -> Device:
        return self.session.device

    @functools.cached_property
    def profile(self) -> Profile:
        return device_profile(
            self.device, self.runtime, self._discovery, self._performance, self.workers
        )

    def words(self, num_threads: int) -> str:
        """The device in words, once per thread count (a judgement needs it twice or more)."""
        if num_threads not in self._words:
            self._words[num_threads] = self.device.describe(self.runtime, num_threads)
        return self._words[num_threads]

    @functools.cached_property
    def environment(self) -> dict[str, str]:
        """What this process measures in; read once, as nothing in it changes in a session."""
        env = {
            "runtime_version": self.runtime.version,
            "python": platform.python_version(),
            "plugin": plugin_version(),
            "cpu_model": cpu_model(),
            "workers": str(self.workers),
        }
        governor = cpu_governor()
        if governor:
            env["cpu_governor"] = governor
        delegate = self.device.delegate
        if delegate is not None:
            env["delegate_path"] = str(delegate.path)
            env["delegate_sha256"] = delegate.sha256
            if delegate.version:
                env["delegate_version"] = delegate.version
            if self.session.delegate_load_ms is not None:
                env["delegate_load_ms"] = f"{self.session.delegate_load_ms:.4g}"
        tpu = self.device.edgetpu
        if tpu is not None:
            env["edgetpu_path"] = tpu.path
            env["edgetpu_link"] = tpu.link
            env["libedgetpu_build"] = self._discovery.libedgetpu_build or "unknown"
            if self._discovery.libedgetpu_version:
                env["libedgetpu_version"] = self._discovery.libedgetpu_version
            if self._performance is not None:
                env["edgetpu_performance"] = self._performance
            if self.session.delegate_load_ms is not None:
                env["delegate_load_ms"] = f"{self.session.delegate_load_ms:.4g}"
        return env

    def close(self) -> None:
        """Stop the session's helper and give the device's lease back."""
        self.session.close()
        if self._lease is not None:
            self._lease.release()
            self._lease = None
