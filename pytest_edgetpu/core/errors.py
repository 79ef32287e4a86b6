"""The exceptions pytest-edgetpu raises.

Every message names the file, option or argument at fault and says how to fix it, so the
plugin can show it as one line instead of a traceback::

    EdgeTpuError
    ├── ConfigError          bad option, ini value or marker argument (usage/collection error)
    ├── ModelError           missing, corrupt or unloadable model file
    │   └── NeedsEdgeTpuError   an *_edgetpu.tflite model and no Edge TPU to run it (skip)
    ├── RuntimeUnavailableError   no usable TFLite runtime installed
    ├── DeviceError          unknown device spec, device not found or failed to open
    │   └── DeviceBusyError     another session holds the device's lease
    ├── BaselineError        corrupt, foreign, future-version or unwritable baseline file
    ├── ResultsError         a results file (--edgetpu-json) that cannot be used
    ├── RevisionError        a git revision (--edgetpu-against, diff) that cannot be used, or
    │                        relative mode's machinery (checkout, helpers) failing at it
    └── FailedAtRevisionError   the test's own code at the revision failed while measured
"""

from __future__ import annotations

import signal

__all__ = [
    "BaselineError",
    "ConfigError",
    "DeviceBusyError",
    "DeviceError",
    "EdgeTpuError",
    "FailedAtRevisionError",
    "ModelError",
    "NeedsEdgeTpuError",
    "ResultsError",
    "RevisionError",
    "RuntimeUnavailableError",
    "exit_words",
    "one_line",
]


def one_line(text: str) -> str:
    """``text`` with every control character (a newline, an escape sequence's ESC) and every
    lone surrogate written as a Python escape: a path or test id from outside can neither
    break a message over lines nor drive the terminal it is printed on."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def exit_words(returncode: int | None) -> str:
    """How a process ended, from its return code (negative: the signal that ended it)."""
    if returncode is not None and returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


class EdgeTpuError(Exception):
    """Base class of every error pytest-edgetpu reports to the user; its text is always one
    line (:func:`one_line`), whatever the file names in it hold."""

    def __str__(self) -> str:
        return one_line(super().__str__())


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


class DeviceBusyError(DeviceError):
    """Another pytest-edgetpu session holds the device's lease."""


class BaselineError(EdgeTpuError):
    """A baseline file cannot be read or written safely."""


class ResultsError(EdgeTpuError):
    """A results file given to the command is missing, corrupt or foreign."""


class RevisionError(EdgeTpuError):
    """A git revision names no commit, git or the repository cannot serve it, or relative
    mode's machinery (the checkout, a helper) fails at it."""


class HostReadingError(EdgeTpuError):
    """The host's reference workload failed where the test was measured (the state the test
    left broke it): the measurement stands without the host's reading."""


class FailedAtRevisionError(EdgeTpuError):
    """The test's own code at the revision failed while its side was measured (it raised, or
    ended its process): the benchmark is not compared, as when the test fails there before.
    Relative mode's own machinery failing (a helper that dies or stops answering) is a
    :class:`RevisionError` instead, which fails the test."""
