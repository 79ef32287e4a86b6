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
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import ModelError, NeedsEdgeTpuError, RuntimeUnavailableError

__all__ = ["Interpreter", "Runtime", "load_runtime", "make_interpreter"]

_INSTALL_HINT = "pip install ai-edge-litert"


class Interpreter(Protocol):
    """The part of the TFLite ``Interpreter`` API that pytest-edgetpu uses."""

    def allocate_tensors(self) -> None: ...
    def invoke(self) -> None: ...
    def get_input_details(self) -> list[dict[str, Any]]: ...
    def get_output_details(self) -> list[dict[str, Any]]: ...
    def set_tensor(self, tensor_index: int, value: Any) -> None: ...
    def get_tensor(self, tensor_index: int) -> Any: ...


@dataclass(frozen=True)
class Runtime:
    """An importable TFLite runtime: its family, version and entry points."""

    family: str  # "litert" or "tflite-runtime": part of a baseline's device profile
    version: str
    interpreter_class: Callable[..., Interpreter]
    load_delegate: Callable[..., Any]

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
        return Runtime(family, version, module.Interpreter, module.load_delegate)
    raise RuntimeUnavailableError(
        "no TFLite runtime is installed (" + "; ".join(failures) + f"); fix: {_INSTALL_HINT}"
    )


_UNRESOLVED_OP = re.compile(r"unresolved custom op: ([\w\-.]+)")


def make_interpreter(
    runtime: Runtime,
    model_path: Path,
    *,
    num_threads: int,
    delegates: Sequence[Any] = (),
) -> Interpreter:
    """Create an interpreter for ``model_path`` and allocate its tensors.

    Every failure of the runtime becomes one error that names the model file and the fix.
    """
    try:
        interpreter = runtime.interpreter_class(
            model_path=str(model_path),
            num_threads=num_threads,
            experimental_delegates=list(delegates) or None,
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
    try:
        interpreter.allocate_tensors()
    except RuntimeError as exc:
        raise _prepare_error(model_path, exc) from exc
    return interpreter


def _prepare_error(model_path: Path, exc: RuntimeError) -> ModelError:
    text = str(exc)
    unresolved = _UNRESOLVED_OP.search(text)
    if unresolved and unresolved.group(1) == "edgetpu-custom-op":
        return NeedsEdgeTpuError(
            f"{model_path} is compiled for the Edge TPU (edgetpu-custom-op) and no Edge TPU "
            "is in use; attach one and select it with --edgetpu-device, or benchmark the "
            "model's CPU twin (the file without the _edgetpu suffix)"
        )
    if unresolved:
        return ModelError(
            f"{model_path} uses the custom op {unresolved.group(1)!r}, which this runtime "
            "does not provide; register the op or export the model without it"
        )
    return ModelError(f"{model_path} failed to prepare: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
