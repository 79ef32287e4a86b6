"""Baseline entries, profiles and files for the tests, made in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgetpu.baselines import BaselineEntry, Profile, write_entries
from pytest_edgetpu.devices import Device
from pytest_edgetpu.run import device_profile
from pytest_edgetpu.runtime import load_runtime


def cpu_profile() -> Profile:
    """This host's CPU profile, the one a serial run on cpu:0 looks up."""
    return device_profile(Device("cpu", "cpu:0"), load_runtime(), None)


def entry(value_ms: float) -> BaselineEntry:
    """A valid entry of three instances around ``value_ms``."""
    return BaselineEntry(
        metric="p50",
        instance_values_ms=(value_ms, value_ms * 1.01, value_ms * 1.02),
        summary_ms={"n": 30, "p50": value_ms * 1.01},
        load_ms=1.0,
        first_inference_ms=1.0,
        num_threads=1,
        workers=1,
        recorded="2026-11-27T00:00:00+00:00",
    )


def record(project: pytest.Pytester, *test_ids: str, value_ms: float = 1.0) -> Path:
    """A baseline file for this host written directly (no measuring), one entry per id."""
    return write_entries(
        project.path / "baselines", cpu_profile(), {t: entry(value_ms) for t in test_ids}
    )
