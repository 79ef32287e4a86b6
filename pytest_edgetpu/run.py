"""One benchmark run: settings, the device held, the baselines, and every result with its verdict.

The engine behind the plugin's hooks, free of pytest. A process plays one role:

* ``serial``: measures on the first device it can lease, writes files at the end;
* ``worker`` (pytest-xdist): measures on the device the controller assigned, leases it, pins
  itself to its cores, and hands its records and queued baseline entries to the controller;
* ``controller``: measures nothing; it hands devices out, gathers the workers' records, and
  alone writes baselines and reports. It opens a device only to load the firmware of a USB
  stick still in DFU mode, before any worker starts (see :meth:`BenchRun.discovery`).

A measurement comes in through :meth:`BenchRun.judge`, which compares it with its baseline
(re-measuring once to confirm a suspected regression) or, in update mode, queues an entry.
"""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from .baselines import (
    BaselineEntry,
    BaselineStore,
    Lookup,
    Profile,
    parse_entry,
    write_entries,
)
from .bench import BenchResult, DeviceSession
from .compare import Current, Policy, Status, Verdict, compare, confirm, recordable
from .config import SessionSettings
from .devices import Device, cpu_governor, cpu_model, open_edgetpu_delegate, resolve_devices
from .discovery import Discovery, discover
from .errors import BaselineError, DeviceBusyError, DeviceError
from .leases import Lease, acquire, is_free
from .models import ModelInfo
from .results import Record, result_record
from .runtime import Runtime, load_runtime
from .stats import BASELINE_FIGURES

__all__ = ["BenchRun", "Role", "device_profile", "plugin_version"]

Role = Literal["serial", "controller", "worker"]


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
    ``-n 2`` CI baselines live side by side, in files of their own.
    """
    parallel = {"workers": f"{workers}-workers"} if workers > 1 else {}
    if device.edgetpu is None:
        return Profile(
            {
                "device": "cpu",
                "arch": platform.machine(),
                "cpu_model": cpu_model(),
                "runtime": runtime.family,
                **parallel,
            }
        )
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
    return Profile({**fields, **parallel})


def _mapping(model: ModelInfo | None) -> dict[str, str]:
    """How a model splits between Edge TPU and CPU, for a baseline entry. The compiler fuses
    the ops it maps into one edgetpu-custom-op per TPU subgraph, so the file tells subgraphs,
    not the ops inside them."""
    if model is None:
        return {}
    return {"model_tpu_subgraphs": str(model.edgetpu_ops), "model_cpu_ops": str(model.cpu_ops)}


def _only_workers_differ(one: Profile, other: Profile) -> bool:
    def without(profile: Profile) -> dict[str, str]:
        return {k: v for k, v in profile.fields.items() if k != "workers"}

    return one != other and without(one) == without(other)


class BenchRun:
    """The state of one process's benchmarking in a pytest session."""

    def __init__(
        self,
        settings: SessionSettings,
        rootdir: Path,
        *,
        role: Role = "serial",
        workers: int = 1,
        assigned_device: str | None = None,
        discover_devices: Callable[[], Discovery] = discover,
        runtime: Runtime | None = None,
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
        self.results: list[Record] = []
        self.environments: list[dict[str, str]] = []
        #: The device profiles of everything measured, by key (for the results file).
        self.known_profiles: dict[str, dict[str, str]] = {}
        self._pending: dict[str, tuple[Profile, dict[str, BaselineEntry]]] = {}
        self._lease: Lease | None = None
        self._words: dict[int, str] = {}

    @functools.cached_property
    def runtime(self) -> Runtime:
        return self._runtime or load_runtime()

    @functools.cached_property
    def discovery(self) -> Discovery:
        """The Edge TPUs found; on the controller, after loading DFU-mode sticks' firmware."""
        found = self._discover()
        if self.role == "controller" and any(
            r.kind in ("auto", "usb", "any") for r in self.settings.devices
        ):
            found = self._prime_dfu_sticks(found)
        return found

    def _prime_dfu_sticks(self, found: Discovery) -> Discovery:
        """Open each USB stick still in DFU mode once, serially, and enumerate again.

        libedgetpu lists DFU-mode sticks first, and a stick's first open loads its firmware
        and re-enumerates it, which renumbers the other sticks (edgetpu.md §1.4): workers
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
        return resolve_devices(self.settings.devices, self.discovery, self.settings.device_source)

    @functools.cached_property
    def session(self) -> DeviceSession:
        """The device this process measures on, leased for the whole session."""
        if self.role == "controller":
            raise DeviceError("the xdist controller measures nothing; its workers do")
        device = self._lease_device()
        if self.role == "worker" and device.cores and hasattr(os, "sched_setaffinity"):
            # Parallel workers on their own cores disturb each other less (noise.md).
            os.sched_setaffinity(0, device.cores)
        performance = self.settings.performance
        options = {"Performance": performance} if performance is not None else {}
        return DeviceSession(device, self.runtime, delegate_options=options)

    def _lease_device(self) -> Device:
        if self.assigned_device is not None:
            device = next((d for d in self.devices if d.id == self.assigned_device), None)
            if device is None:
                raise DeviceError(
                    f"the controller assigned {self.assigned_device}, which this host does not "
                    f"have ({', '.join(d.id for d in self.devices)}); with --tx to other hosts "
                    "give each the same --edgetpu-device"
                )
            self._lease = acquire(device.id)
            return device
        busy = []
        for device in self.devices:
            try:
                self._lease = acquire(device.id)
            except DeviceBusyError as error:
                busy.append(str(error))
                continue
            return device
        raise DeviceError("every selected device is in use: " + "; ".join(busy))

    def free_devices(self) -> tuple[Device, ...]:
        """The selected devices no other session holds now (the controller's check before
        it starts workers; a worker still leases its device for itself)."""
        return tuple(device for device in self.devices if is_free(device.id))

    @functools.cached_property
    def store(self) -> BaselineStore:
        return BaselineStore(self.settings.baseline_dir, self.settings.path_sources["baseline_dir"])

    @functools.cached_property
    def profile(self) -> Profile:
        return device_profile(
            self.session.device,
            self.runtime,
            self.discovery,
            self.settings.performance,
            self.workers,
        )

    def start(self) -> None:
        """Fail early, before any test runs, on a bad device or a bad baseline file; open the
        Edge TPU delegate now, so its load time stays out of every measurement."""
        if not self.settings.enabled:
            return
        _ = self.store
        if self.role == "controller":
            _ = self.devices
        else:
            self.session.open()

    def close(self) -> None:
        """Stop the device session's helper and give the device's lease back."""
        if "session" in self.__dict__:
            self.session.close()
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def display(self, path: Path) -> Path:
        """``path`` relative to the rootdir when it lies below it."""
        try:
            return path.relative_to(self.rootdir)
        except ValueError:
            return path

    def environment(self) -> dict[str, str]:
        """The environment this process measured in (the controller: its workers')."""
        if self.role == "controller":
            return self.environments[0] if self.environments else {}
        return dict(self._own_environment)

    @functools.cached_property
    def _own_environment(self) -> dict[str, str]:
        # Read once: nothing in it changes during a session, and every entry carries it.
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
        tpu = self.session.device.edgetpu
        if tpu is not None:
            env["edgetpu_path"] = tpu.path
            env["edgetpu_link"] = tpu.link
            env["libedgetpu_build"] = self.discovery.libedgetpu_build or "unknown"
            if self.discovery.libedgetpu_version:
                env["libedgetpu_version"] = self.discovery.libedgetpu_version
            if self.settings.performance is not None:
                env["edgetpu_performance"] = self.settings.performance
            if self.session.delegate_load_ms is not None:
                env["delegate_load_ms"] = f"{self.session.delegate_load_ms:.4g}"
        return env

    def judge(
        self,
        test_id: str,
        result: BenchResult,
        threshold: float,
        remeasure: Callable[[], BenchResult],
    ) -> Verdict | None:
        """Decide ``result``'s verdict, record it, and return it (None when ungated)."""
        words = self._device_words(result.num_threads)
        self.known_profiles[self.profile.key] = dict(self.profile.fields)
        if not result.timed:
            self.results.append(
                result_record(
                    test_id, result, None, self.profile.key, None, False, words, self.workers
                )
            )
            return None
        policy = Policy(threshold=threshold, strict=self.settings.strict)
        lookup = self._lookup(test_id)
        verdict = compare(lookup, self._current(result), policy)
        if verdict.status is Status.REGRESSION and not self.settings.update:
            result = remeasure()
            verdict = confirm(verdict, compare(lookup, self._current(result), policy))
        if result.thermal is not None and result.thermal.note:
            reason = "; ".join(r for r in (verdict.reason, result.thermal.note) if r)
            verdict = replace(verdict, reason=reason)
        entry = self._entry(result)
        recorded = self.settings.update and recordable(
            verdict.status, accept_unstable=self.settings.accept_unstable
        )
        if recorded:
            self._queue(self.profile, {test_id: entry})
        self.results.append(
            result_record(
                test_id,
                result,
                verdict,
                self.profile.key,
                entry,
                recorded,
                words,
                self.workers,
            )
        )
        return verdict

    def _lookup(self, test_id: str) -> Lookup:
        found = self.store.lookup(test_id, self.profile)
        # Name what differs, e.g. "link 'usb5000' vs 'usb480'": the usual surprise is a stick
        # that came up on USB 2.
        others = []
        for key in found.other_profiles:
            other = self.store.files.get(key)
            if other is not None and _only_workers_differ(other.profile, self.profile):
                recorded = other.profile.fields.get("workers", "1").split("-")[0]
                how = f"-n {recorded}" if recorded != "1" else "a serial run (no -n)"
                others.append(f"{key} (recorded with {how})")
                continue
            differences = other.profile.differences(self.profile) if other else []
            others.append(f"{key} ({', '.join(differences)})" if differences else key)
        return Lookup(self.display(found.path), found.entry, tuple(others))

    def _device_words(self, num_threads: int) -> str:
        """The device in words, once per thread count (a judgement needs it twice or more)."""
        if num_threads not in self._words:
            self._words[num_threads] = self.session.device.describe(self.runtime, num_threads)
        return self._words[num_threads]

    def _current(self, result: BenchResult) -> Current:
        return Current(
            metric=result.metric,
            value_ms=result.value_ms,
            instance_values_ms=result.instance_values_ms,
            num_threads=result.num_threads,
            workers=self.workers,
            device_words=self._device_words(result.num_threads),
            model_sha256=result.model_sha256,
        )

    def _entry(self, result: BenchResult) -> BaselineEntry:
        summary = result.summary
        model = result.model
        return BaselineEntry(
            metric=result.metric,
            instance_values_ms=result.instance_values_ms,
            summary_ms=summary.figures(BASELINE_FIGURES),
            load_ms=result.load_ms,
            first_inference_ms=result.first_inference_ms,
            num_threads=result.num_threads,
            workers=self.workers,
            recorded=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            model_sha256=result.model_sha256,
            model_path=", ".join(os.fspath(self.display(m.path)) for m in result.models) or None,
            environment={**self.environment(), **_mapping(model)},
        )

    def _queue(self, profile: Profile, entries: Mapping[str, BaselineEntry]) -> None:
        self._pending.setdefault(profile.key, (profile, {}))[1].update(entries)

    def payload(self) -> dict[str, Any]:
        """What a worker hands the controller: its records, environment and queued entries."""
        return {
            "results": self.results,
            "environment": self.environment() if self.results else {},
            "profiles": self.known_profiles,
            "pending": {
                key: {
                    "profile": dict(profile.fields),
                    "entries": {tid: e.to_json() for tid, e in entries.items()},
                }
                for key, (profile, entries) in self._pending.items()
            },
        }

    def drain(self) -> dict[str, Any] | None:
        """A worker's payload since the last drain, or None when it measured nothing new."""
        if not self.results and not self._pending:
            return None
        payload = self.payload()
        self.results = []
        self._pending.clear()
        return payload

    def absorb(self, payload: Mapping[str, Any], source: str) -> None:
        """Take over a worker's payload (``source`` names the worker for errors)."""
        self.results.extend(payload["results"])
        self.known_profiles.update(payload["profiles"])
        if payload["environment"]:
            self.environments.append(dict(payload["environment"]))
        for queued in payload["pending"].values():
            entries = {tid: parse_entry(source, tid, raw) for tid, raw in queued["entries"].items()}
            self._queue(Profile(dict(queued["profile"])), entries)

    def kept_not_run(self) -> list[str]:
        """Test ids whose entries stay in a baseline file this update writes although they
        did not run: listed, so that a removed test's entry is never kept or lost unseen."""
        ran: dict[str, set[str]] = {}
        for record in self.results:
            if record["timed"]:
                ran.setdefault(record["profile"], set()).add(record["test_id"])
        kept = []
        for key in self._pending:
            stored = self.store.files.get(key)
            if stored is not None:
                kept += [t for t in sorted(stored.entries) if t not in ran.get(key, set())]
        return kept

    def write_baselines(self) -> tuple[list[Path], list[str]]:
        """Write the queued entries (update mode); returns the files written and an error line
        per file that could not be. The records of a file not written say so: nothing that
        was not recorded is reported as recorded."""
        written, errors = [], []
        for key, (profile, entries) in self._pending.items():
            try:
                path = write_entries(self.settings.baseline_dir, profile, entries)
            except BaselineError as error:
                errors.append(str(error))
                for record in self.results:
                    if record["profile"] == key and record["recorded"]:
                        record["recorded"] = False
                        record["record_error"] = str(error)
                continue
            written.append(self.display(path))
        self._pending.clear()
        return written, errors
