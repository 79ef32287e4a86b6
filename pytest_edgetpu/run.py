"""One benchmark run: settings, the device held, the baselines, and every result with its verdict.

This is the engine behind the plugin's hooks, free of pytest: a test's measurement comes in
through :meth:`BenchRun.judge`, which compares it with its baseline (re-measuring once to
confirm a suspected regression) or, in update mode, queues it to be written.
"""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .baselines import BaselineEntry, BaselineStore, Lookup, Profile, write_entries
from .bench import BenchResult, DeviceSession
from .compare import Current, Policy, Status, Verdict, compare, confirm
from .config import SessionSettings
from .devices import Device, cpu_governor, cpu_model, resolve_devices
from .discovery import Discovery, discover
from .runtime import Runtime, load_runtime

__all__ = ["BenchRun", "Record", "device_profile", "plugin_version"]


def plugin_version() -> str:
    try:
        return importlib.metadata.version("pytest-edgetpu")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def device_profile(device: Device, runtime: Runtime, discovery: Discovery | None) -> Profile:
    """What must match for two measurements to be compared (the baseline file's key)."""
    if device.edgetpu is None:
        return Profile(
            {
                "device": "cpu",
                "arch": platform.machine(),
                "cpu_model": cpu_model(),
                "runtime": runtime.family,
            }
        )
    tpu = device.edgetpu
    link = f"usb{tpu.usb_speed_mbps}" if tpu.usb_speed_mbps else tpu.kind
    return Profile(
        {
            "device": f"edgetpu-{tpu.kind}",
            "link": link,
            "arch": platform.machine(),
            "libedgetpu": (discovery.libedgetpu_build if discovery else None) or "unknown",
            "runtime": runtime.family,
        }
    )


@dataclass(frozen=True)
class Record:
    """One measured test: its result, its verdict (None when ungated) and the profile."""

    test_id: str
    result: BenchResult
    verdict: Verdict | None
    profile_key: str
    recorded: bool = False


class BenchRun:
    """The state of one pytest session's benchmarking (one per process)."""

    def __init__(self, settings: SessionSettings, rootdir: Path, workers: int = 1) -> None:
        self.settings = settings
        self.rootdir = rootdir
        self.workers = workers
        self.records: list[Record] = []
        self._pending: dict[str, BaselineEntry] = {}

    @functools.cached_property
    def runtime(self) -> Runtime:
        return load_runtime()

    @functools.cached_property
    def discovery(self) -> Discovery:
        return discover()

    @functools.cached_property
    def devices(self) -> tuple[Device, ...]:
        return resolve_devices(self.settings.devices, self.discovery, self.settings.device_source)

    @functools.cached_property
    def session(self) -> DeviceSession:
        return DeviceSession(self.devices[0], self.runtime)

    @functools.cached_property
    def store(self) -> BaselineStore:
        return BaselineStore(self.settings.baseline_dir)

    @functools.cached_property
    def profile(self) -> Profile:
        return device_profile(self.session.device, self.runtime, self.discovery)

    def start(self) -> None:
        """Fail early, before any test runs, on a bad device or a bad baseline file."""
        if self.settings.enabled:
            _ = self.session, self.store

    def display(self, path: Path) -> Path:
        """``path`` relative to the rootdir when it lies below it."""
        try:
            return path.relative_to(self.rootdir)
        except ValueError:
            return path

    def environment(self) -> dict[str, str]:
        env = {
            "runtime_version": self.runtime.version,
            "python": platform.python_version(),
            "plugin": plugin_version(),
            "cpu_model": cpu_model(),
        }
        governor = cpu_governor()
        if governor:
            env["cpu_governor"] = governor
        if self.session.device.is_edgetpu and self.discovery.libedgetpu_version:
            env["libedgetpu_version"] = self.discovery.libedgetpu_version
        return env

    def judge(
        self,
        test_id: str,
        result: BenchResult,
        threshold: float,
        remeasure: Callable[[], BenchResult],
    ) -> Verdict | None:
        """Decide ``result``'s verdict, record it, and return it (None when ungated)."""
        if not result.timed:
            self.records.append(Record(test_id, result, None, self.profile.key))
            return None
        policy = Policy(threshold=threshold, strict=self.settings.strict)
        lookup = self._lookup(test_id)
        verdict = compare(lookup, self._current(result), policy)
        if verdict.status is Status.REGRESSION and not self.settings.update:
            result = remeasure()
            verdict = confirm(verdict, compare(lookup, self._current(result), policy))
        if self.settings.update:
            self._pending[test_id] = self._entry(result)
        self.records.append(
            Record(test_id, result, verdict, self.profile.key, recorded=self.settings.update)
        )
        return verdict

    def _lookup(self, test_id: str) -> Lookup:
        found = self.store.lookup(test_id, self.profile)
        return Lookup(self.display(found.path), found.entry, found.other_profiles)

    def _current(self, result: BenchResult) -> Current:
        return Current(
            metric=result.metric,
            value_ms=result.value_ms,
            instance_values_ms=result.instance_values_ms,
            num_threads=result.num_threads,
            workers=self.workers,
            device_words=self.session.device.describe(self.runtime, result.num_threads),
            model_sha256=result.model.sha256 if result.model else None,
        )

    def _entry(self, result: BenchResult) -> BaselineEntry:
        summary = result.summary
        model = result.model
        return BaselineEntry(
            metric=result.metric,
            instance_values_ms=result.instance_values_ms,
            summary_ms={
                "n": summary.n,
                "min": summary.min_ms,
                "p50": summary.p50_ms,
                "p90": summary.p90_ms,
                "p99": summary.p99_ms,
                "max": summary.max_ms,
                "mean": summary.mean_ms,
            },
            load_ms=result.load_ms,
            first_inference_ms=result.first_inference_ms,
            num_threads=result.num_threads,
            workers=self.workers,
            recorded=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            model_sha256=model.sha256 if model else None,
            model_path=os.fspath(self.display(model.path)) if model else None,
            environment=self.environment(),
        )

    def write_baselines(self) -> Path | None:
        """Write the queued entries (update mode); returns the file written, if any."""
        if not self._pending:
            return None
        path = write_entries(self.settings.baseline_dir, self.profile, self._pending)
        self._pending.clear()
        return self.display(path)
