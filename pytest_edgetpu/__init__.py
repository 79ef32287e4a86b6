"""pytest-edgetpu: latency regression gates for TFLite models on Coral Edge TPUs and CPUs."""

from __future__ import annotations

from .bench import BenchResult, LoadedModel
from .compare import Status, Verdict
from .errors import (
    BaselineError,
    ConfigError,
    DeviceError,
    EdgeTpuError,
    ModelError,
    NeedsEdgeTpuError,
    RuntimeUnavailableError,
)

__all__ = [
    "BaselineError",
    "BenchResult",
    "ConfigError",
    "DeviceError",
    "EdgeTpuError",
    "LoadedModel",
    "ModelError",
    "NeedsEdgeTpuError",
    "RuntimeUnavailableError",
    "Status",
    "Verdict",
]
