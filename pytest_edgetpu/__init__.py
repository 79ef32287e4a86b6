"""pytest-edgetpu: latency regression gates for TFLite models on Coral Edge TPUs and CPUs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.errors import (
    BaselineError,
    ConfigError,
    DeviceBusyError,
    DeviceError,
    EdgeTpuError,
    ModelError,
    NeedsEdgeTpuError,
    ResultsError,
    RuntimeUnavailableError,
)

if TYPE_CHECKING:
    from .engine.bench_result import BenchResult
    from .engine.session import LoadedModel
    from .judge.verdict import Status, Verdict

__all__ = [
    "BaselineError",
    "BenchResult",
    "ConfigError",
    "DeviceBusyError",
    "DeviceError",
    "EdgeTpuError",
    "LoadedModel",
    "ModelError",
    "NeedsEdgeTpuError",
    "ResultsError",
    "RuntimeUnavailableError",
    "Status",
    "Verdict",
]

# Imported on first use: the plugin module imports this package in every pytest run of a
# project that has it installed, and these pull in numpy.
_LAZY = {
    "BenchResult": ".engine.bench_result",
    "LoadedModel": ".engine.session",
    "Status": ".judge.verdict",
    "Verdict": ".judge.verdict",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
