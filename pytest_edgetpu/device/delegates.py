"""Opening a device's delegate: libedgetpu's options checked, the Edge TPU delegate and
external delegate libraries loaded, every failure one line that names the device and the fix.

libedgetpu reports a bad option and an unplugged stick with the same bare ``ValueError``, so
options are checked here before the device is touched.
"""

from __future__ import annotations

import difflib
import platform
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ..core.errors import ConfigError, DeviceError

if TYPE_CHECKING:
    from .runtime import Runtime
    from .selection import Device, ExternalDelegate

__all__ = [
    "PERFORMANCE_LEVELS",
    "check_delegate_options",
    "open_edgetpu_delegate",
    "open_external_delegate",
    "parse_performance",
]


#: The values of libedgetpu's ``Performance`` delegate option (its default is ``Max``).
PERFORMANCE_LEVELS: Final = ("Low", "Medium", "High", "Max")


def parse_performance(raw: object, where: str) -> str:
    """``low``/``Low`` ... ``max``/``Max`` → libedgetpu's spelling of the level."""
    by_lower = {level.lower(): level for level in PERFORMANCE_LEVELS}
    level = by_lower.get(str(raw).strip().lower()) if isinstance(raw, str) else None
    if level is None:
        raise ConfigError(
            f"{where}: unknown Edge TPU performance level {raw!r}; use one of "
            f"{', '.join(PERFORMANCE_LEVELS)} (or leave it unset for libedgetpu's own default)"
        )
    return level


def _queue_length(value: str) -> bool:
    return value.isdigit() and int(value) <= 255


# libedgetpu's documented options (tflite/public/edgetpu.h) and what each accepts. It answers
# a bad value only with the same bare ValueError as an unplugged device, so check first.
_DELEGATE_OPTIONS: Final[Mapping[str, tuple[Callable[[str], bool], str]]] = {
    "Performance": (PERFORMANCE_LEVELS.__contains__, "one of " + ", ".join(PERFORMANCE_LEVELS)),
    "Usb.AlwaysDfu": (("True", "False").__contains__, "True or False"),
    "Usb.MaxBulkInQueueLength": (_queue_length, "a whole number from 0 to 255"),
}


def check_delegate_options(options: Mapping[str, str], where: str) -> None:
    """Raise ConfigError, naming ``where`` and the fix, for an option libedgetpu would refuse."""
    for name, value in options.items():
        if name == "device":
            raise ConfigError(
                f"{where}: the delegate option 'device' is set from --edgetpu-device (each "
                "process opens exactly its own device); remove it from the options"
            )
        known = _DELEGATE_OPTIONS.get(name)
        if known is None:
            # Compared without case and punctuation, so usb_max_bulk_in_queue_length (a name
            # libedgetpu never had) still finds Usb.MaxBulkInQueueLength.
            by_letters = {re.sub(r"[^a-z]", "", key.lower()): key for key in _DELEGATE_OPTIONS}
            close = difflib.get_close_matches(
                re.sub(r"[^a-z]", "", name.lower()), list(by_letters), n=1, cutoff=0.6
            )
            hint = f"; did you mean {by_letters[close[0]]!r}?" if close else ""
            raise ConfigError(
                f"{where}: unknown Edge TPU delegate option {name!r}{hint} (libedgetpu knows "
                f"{', '.join(_DELEGATE_OPTIONS)})"
            )
        accepts, expected = known
        if not isinstance(value, str) or not accepts(value):
            raise ConfigError(
                f"{where}: Edge TPU delegate option {name}={value!r} is invalid; use {expected}"
            )


def open_edgetpu_delegate(
    runtime: Runtime,
    device: Device,
    options: Mapping[str, str] | None = None,
    library: str | None = None,
) -> Any:
    """Load the Edge TPU delegate for ``device`` (an explicit index, never "any device").

    ``options`` are libedgetpu's delegate options (``Performance``, ``Usb.AlwaysDfu``,
    ``Usb.MaxBulkInQueueLength``), checked before the device is touched. libedgetpu reports
    every open failure as the same bare ValueError; this turns it into a message naming the
    device string, its path and the likely causes.
    """
    from .libedgetpu import LIBEDGETPU_NAME, library_fix

    library = library or LIBEDGETPU_NAME
    given = dict(options or {})
    check_delegate_options(given, f"Edge TPU delegate options for {device.id}")
    try:
        return runtime.load_delegate(library, {"device": device.id, **given})
    except OSError as exc:
        raise DeviceError(
            f"cannot load {library} for {device.id}: {exc}; fix: {library_fix(str(exc))}"
        ) from exc
    except ValueError as exc:
        path = device.edgetpu.path if device.edgetpu else None
        if device.kind == "pci":
            causes = (
                f"held by another process, {path or '/dev/apex_N'} is not writable by you "
                "(udev rule for the apex group), or the gasket/apex driver (gasket-dkms) is "
                "not loaded"
            )
        else:
            causes = (
                "unplugged, held by another process, or not accessible to you (install the "
                "Edge TPU udev rule and join the plugdev group)"
            )
        where = f"{device.id} ({path})" if path else device.id
        raise DeviceError(
            f"the Edge TPU {where} did not open ({str(exc).strip()}): it is {causes}; run "
            "`pytest-edgetpu devices` to see what is attached"
        ) from exc


#: What a TFLite external delegate library exports (delegates/external/external_delegate).
_DELEGATE_ENTRY_POINTS: Final = ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")


def open_external_delegate(runtime: Runtime, delegate: ExternalDelegate) -> Any:
    """Load the external ``delegate`` library with its options, as benchmark_model's
    ``--external_delegate_path`` does; a library that does not load or refuses its options is
    a DeviceError that says which, with what the library reported."""
    import ctypes

    try:
        # Looked at first: LiteRT's Delegate, half made from a library without these entry
        # points, prints a traceback of its own when it is collected.
        library = ctypes.CDLL(str(delegate.path))
    except OSError as exc:
        raise DeviceError(
            f"cannot load the delegate library {delegate.path}: {exc}; check that it is a "
            f"TFLite external delegate built for this machine ({platform.machine()}) and "
            f"that the libraries it needs are installed (ldd {delegate.path})"
        ) from None
    missing = [name for name in _DELEGATE_ENTRY_POINTS if not hasattr(library, name)]
    if missing:
        raise DeviceError(
            f"the library {delegate.path} is not a TFLite external delegate: it exports no "
            f"{' and no '.join(missing)}; give the delegate's own .so"
        )
    try:
        return runtime.load_delegate(str(delegate.path), dict(delegate.options))
    except ValueError as exc:
        # The runtime's words, then whatever the library passed to report_error.
        reported = " ".join(line.strip() for line in str(exc).splitlines()[1:] if line.strip())
        options = delegate.options_text or "none"
        raise DeviceError(
            f"the delegate library {delegate.path} refused to create a delegate with options "
            f"{options!r}" + (f" ({reported})" if reported else "") + "; fix "
            "--edgetpu-delegate-options, or check that the library is a TFLite external "
            "delegate (tflite_plugin_create_delegate)"
        ) from None
