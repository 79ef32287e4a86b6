"""The exceptions pytest-edgetpu raises.

Every message names the file, option or argument at fault and says how to fix it, so the
plugin can show it as one line instead of a traceback::

    EdgeTpuError
    ├── ConfigError          bad option, ini value or marker argument (usage/collection error)
    ├── ModelError           missing, corrupt or unloadable model file
    │   └── NeedsEdgeTpuError   an *_edgetpu.tflite model and no Edge TPU to run it (skip)
    ├── RuntimeUnavailableError   no usable TFLite runtime installed
    ├── DeviceError          unknown device spec, device not found or failed to open
    ├── BaselineError        corrupt, foreign, future-version or unwritable baseline file
    └── ResultsError         a results file (--edgetpu-json) that cannot be used
"""

from __future__ import annotations

__all__ = [
    "BaselineError",
    "ConfigError",
    "DeviceError",
    "EdgeTpuError",
    "ModelError",
    "NeedsEdgeTpuError",
    "ResultsError",
    "RuntimeUnavailableError",
]


class EdgeTpuError(Exception):
    """Base class of every error pytest-edgetpu reports to the user."""


class ConfigError(EdgeTpuError, ValueError):
    """An option, ini value or marker argument is unknown or has a bad value."""


class ModelError(EdgeTpuError):
    """A model file is missing, is not a TFLite model, or cannot be prepared."""


class NeedsEdgeTpuError(ModelError):
    """The model holds Edge TPU custom ops and no Edge TPU is available to run it."""


class RuntimeUnavailableError(EdgeTpuError):
    """No TFLite runtime (ai-edge-litert or tflite-runtime) can be used."""


class DeviceError(EdgeTpuError):
    """A device spec names no attached device, or the device cannot be opened."""


class BaselineError(EdgeTpuError):
    """A baseline file cannot be read or written safely."""


class ResultsError(EdgeTpuError):
    """A results file given to the command is missing, corrupt or foreign."""
