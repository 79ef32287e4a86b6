"""The TFLite runtime behind one small interface: LiteRT first, tflite-runtime as a fallback.

``ai-edge-litert`` is the maintained runtime and works with numpy 2. ``tflite-runtime`` 2.14
is its last release and fails under numpy 2 at interpreter creation (``_ARRAY_API not
found``); that failure becomes a :class:`RuntimeUnavailableError` with the fix. pycoral is
never required: Edge TPU delegates are loaded through the runtime's ``load_delegate``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypedDict

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

from ..core.errors import ModelError, NeedsEdgeTpuError, RuntimeUnavailableError
from ..model.inspection import inspect_model

__all__ = [
    "Interpreter",
    "ResolverOptions",
    "Runtime",
    "TensorDetails",
    "load_runtime",
    "make_interpreter",
    "resolver_options",
]

_INSTALL_HINT = "pip install ai-edge-litert"


class TensorDetails(TypedDict):
    """What the runtime says of one input or output tensor: the keys pytest-edgetpu reads
    (the runtime's dicts hold more, quantization among them, and reach users as they are)."""

    name: str
    index: int
    shape: npt.NDArray[np.int32]
    dtype: type[np.generic]


class Interpreter(Protocol):
    """The part of the TFLite ``Interpreter`` API that pytest-edgetpu uses."""

    def allocate_tensors(self) -> None: ...
    def invoke(self) -> None: ...
    def get_input_details(self) -> list[TensorDetails]: ...
    def get_output_details(self) -> list[TensorDetails]: ...
    def set_tensor(self, tensor_index: int, value: Any) -> None: ...
    def get_tensor(self, tensor_index: int) -> Any: ...


@dataclass(frozen=True)
class Runtime:
    """An importable TFLite runtime: its family, version and entry points."""

    family: str  # "litert" or "tflite-runtime": part of a baseline's device profile
    version: str
    interpreter_class: Callable[..., Interpreter]
    load_delegate: Callable[..., Any]
    #: ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``: the built-in kernels with no
    #: default delegate (XNNPACK off); None where the runtime has no such choice.
    builtin_resolver: Any = None

    @property
    def label(self) -> str:
        """Human words, e.g. ``LiteRT 2.3.0``."""
        name = "LiteRT" if self.family == "litert" else "tflite-runtime"
        return f"{name} {self.version}"


_CANDIDATES = (
    ("litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite-runtime", "tflite_runtime.interpreter", "tflite-runtime"),
)


@functools.cache
def load_runtime() -> Runtime:
    """Import the first available runtime; raise RuntimeUnavailableError when there is none."""
    failures = []
    for family, module_name, distribution in _CANDIDATES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            failures.append(f"{module_name}: {exc}")
            continue
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        resolvers = getattr(module, "OpResolverType", None)
        builtin = getattr(resolvers, "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None)
        return Runtime(family, version, module.Interpreter, module.load_delegate, builtin)
    raise RuntimeUnavailableError(
        "no TFLite runtime is installed (" + "; ".join(failures) + f"); fix: {_INSTALL_HINT}"
    )


# LiteRT ends the name with a full stop ("... custom op: edgetpu-custom-op.\nSee ..."): the
# name ends at its last letter, digit or hyphen.
_UNRESOLVED_OP = re.compile(r"unresolved custom op: ([\w\-.]*[\w\-])")
# libedgetpu's own words when the model's package needs a newer runtime (pycoral#50).
_RUNTIME_TOO_OLD = re.compile(
    r"requires runtime version \((\d+)\), which is newer than this runtime version \((\d+)\)"
)
# ... and when it was built against another TensorFlow Lite than the interpreter's (edgetpu#44).
_ABI_MISMATCH = "Unsupported data type in custom op handler"
#: A tensor this large is named when the runtime refuses a model without a reason.
_HUGE_TENSOR_BYTES: Final = 2**30
_LIBEDGETPU_BUILDS = "feranick/libedgetpu releases are built for current TensorFlow Lite"


#: :func:`~pytest_edgetpu.model.examples.first_log_model_bytes`, one softmax, written out:
#: generating it imports the ``tflite`` package's ~190 modules, 60-100 ms of every session
#: start (tests/test_runtime.py checks the two agree).
FIRST_LOG_MODEL: Final = bytes.fromhex(
    "1c00000054464c3314001c001800140010000c00080000000000040014000000480000004c000000"
    "100000004c0000005000000003000000290000007079746573742d656467657470753a2074686520"
    "66697273742043505520696e746572707265746572000000010000002800000001000000a0010000"
    "01000000ac000000010000008c00000000000a0010000c00080004000a0000000c0000001c000000"
    "480000000f00000073657276696e675f64656661756c7400010000000c00000008000c0008000400"
    "0800000001000000040000000d00000070726f626162696c69746965730000000100000004000000"
    "5affffff0400000005000000696e7075740000000c000a0009000000000004000c00000019000000"
    "00190e001800140010000c00080004000e000000140000001c000000200000002400000028000000"
    "040000006d61696e0000000001000000300000000100000001000000010000000000000002000000"
    "840000004800000000000e001600000010000c000b0004000e000000180000000000000918000000"
    "1c0000000000060008000400060000000000803f01000000010000000100000000000000d4ffffff"
    "14000000040000000200000001000000020000000d00000070726f626162696c6974696573000000"
    "0c000c0008000000000004000c000000140000000400000002000000010000000200000005000000"
    "696e7075740000000400040004000000"
)


def consume_first_cpu_log(runtime: Runtime) -> None:
    """Build this process's first CPU interpreter with stderr closed.

    LiteRT logs ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` to the process's
    stderr the first time it builds a CPU interpreter; done here, at session start, the line
    never lands in the captured output of whichever test comes first."""
    saved, quiet = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(quiet, 2)
        runtime.interpreter_class(model_content=FIRST_LOG_MODEL, num_threads=1).allocate_tensors()
    except Exception:
        # A runtime that fails here fails on the first model too, where make_interpreter
        # turns it into its one-line error.
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(quiet)


class ResolverOptions(TypedDict, total=False):
    """The interpreter's keyword that chooses its op resolver."""

    experimental_op_resolver_type: object


def resolver_options(runtime: Runtime, default_delegates: bool) -> ResolverOptions:
    """The interpreter's keyword that turns the runtime's default delegate (XNNPACK) off,
    when it is to be off."""
    if default_delegates:
        return {}
    if runtime.builtin_resolver is None:
        raise RuntimeUnavailableError(
            f"{runtime.label} cannot turn its default delegate off (it has no "
            f"OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES); fix: {_INSTALL_HINT}"
        )
    return {"experimental_op_resolver_type": runtime.builtin_resolver}


def make_interpreter(
    runtime: Runtime,
    model_path: Path,
    *,
    num_threads: int,
    delegates: Sequence[Any] = (),
    default_delegates: bool = True,
) -> Interpreter:
    """Create an interpreter for ``model_path`` and allocate its tensors.

    Every failure of the runtime becomes one error that names the model file and the fix.
    With delegates, the Edge TPU prepares its subgraphs while the interpreter is built, so
    libedgetpu's failures can come from the constructor as well as from allocation. Without
    ``default_delegates`` the runtime applies none of its own (XNNPACK): only the built-in
    kernels and ``delegates`` run the model.
    """
    try:
        interpreter = runtime.interpreter_class(
            model_path=str(model_path),
            num_threads=num_threads,
            experimental_delegates=list(delegates) or None,
            **resolver_options(runtime, default_delegates),
        )
    except (AttributeError, SystemError) as exc:
        if "_ARRAY_API" in str(exc) or "NumPy" in str(exc) or runtime.family != "litert":
            raise RuntimeUnavailableError(
                f"{runtime.label} cannot run with the installed numpy ({exc}); "
                f"fix: {_INSTALL_HINT} (works with numpy 2), or pip install 'numpy<2'"
            ) from exc
        raise
    except ValueError as exc:
        raise ModelError(
            f"{model_path}: {runtime.label} cannot read this model ({_first_line(exc)}); "
            "re-export or re-download it"
        ) from exc
    except RuntimeError as exc:
        raise _prepare_error(model_path, runtime, exc, default_delegates) from exc
    try:
        interpreter.allocate_tensors()
    except RuntimeError as exc:
        raise _prepare_error(model_path, runtime, exc, default_delegates) from exc
    return interpreter


def _prepare_error(
    model_path: Path, runtime: Runtime, exc: RuntimeError, default_delegates: bool = True
) -> ModelError:
    text = str(exc)
    too_old = _RUNTIME_TOO_OLD.search(text)
    if too_old:
        needed, installed = too_old.groups()
        return ModelError(
            f"{model_path} needs Edge TPU runtime version {needed}, but the installed "
            f"libedgetpu is version {installed}; fix: upgrade libedgetpu (libedgetpu1-std or "
            f"libedgetpu1-max; {_LIBEDGETPU_BUILDS}), or compile the model again with "
            f"edgetpu_compiler --min_runtime_version {installed}"
        )
    if _ABI_MISMATCH in text:
        return ModelError(
            f"{model_path}: the installed libedgetpu does not match {runtime.label} "
            f"({_first_line(exc)}): it was built against another TensorFlow Lite version; "
            f"fix: install a libedgetpu built for this runtime ({_LIBEDGETPU_BUILDS}), or the "
            "runtime version your libedgetpu was built for"
        )
    unresolved = _UNRESOLVED_OP.search(text)
    if unresolved and unresolved.group(1) == "edgetpu-custom-op":
        return NeedsEdgeTpuError(
            f"{model_path} is compiled for the Edge TPU (edgetpu-custom-op) and no Edge TPU "
            "is in use; attach one and select it with --edgetpu-device, or benchmark the "
            "model's CPU twin (the file without the _edgetpu suffix)"
        )
    if unresolved and not default_delegates:
        # MediaPipe's Convolution2DTransposeBias, among others, is XNNPACK's own op.
        return ModelError(
            f"{model_path} uses the custom op {unresolved.group(1)!r}, which LiteRT's built-in "
            "kernels do not provide, and this device runs without XNNPACK, which provides some "
            "(MediaPipe's Convolution2DTransposeBias among them); run it on cpu, or register "
            "the op"
        )
    if unresolved:
        return ModelError(
            f"{model_path} uses the custom op {unresolved.group(1)!r}, which this runtime "
            "does not provide; register the op or export the model without it"
        )
    if text.strip():
        return ModelError(f"{model_path} failed to prepare: {_first_line(exc)}")
    return ModelError(
        f"{model_path} failed to prepare: {runtime.label} gave no reason{_hint(model_path)}"
    )


def _hint(model_path: Path) -> str:
    """What may keep a model LiteRT refuses without a word from preparing: a tensor declared
    far larger than any host allocates (a 100 GB one)."""
    try:
        largest = inspect_model(model_path).largest_tensor
    except ModelError:
        return "; re-export or re-download it"
    if largest is None or largest.bytes < _HUGE_TENSOR_BYTES:
        return "; re-export or re-download it"
    return (
        f"; its largest tensor, {largest.words}, takes {largest.bytes / 2**30:,.1f} GiB: a "
        "shape that large is usually a mistake of the export; re-export it with the shapes "
        "it needs"
    )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
