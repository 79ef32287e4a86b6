"""LiteRT's CompiledModel accelerators (``litert-cpu``, ``litert-gpu``, ``litert-npu``) behind
the :class:`~pytest_edgetpu.device.runtime.Interpreter` interface the rest of the plugin measures.

A CompiledModel is built, compiled for its accelerators and given its buffers in one step (the
load phase); ``invoke`` is one ``run_by_index`` on the first signature; ``set_tensor`` writes an
input buffer and ``get_tensor`` reads an output buffer, indexed by position as the details say.
GPU and NPU models may fall back to the CPU for what their accelerator lacks, and say so through
``is_fully_accelerated``; whether the accelerator is there at all is asked once per session by
compiling a small dense model for it alone (:func:`accelerator_missing`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..core.errors import ModelError
from .delegation import Delegation
from .runtime import TensorDetails
from .selection import Accelerator

__all__ = ["CompiledInterpreter", "accelerator_missing", "compiled_model_api"]

_NAMES: Final = {"cpu": "LiteRT CPU", "gpu": "LiteRT GPU", "npu": "LiteRT NPU"}


_NO_API: Final = "the installed runtime has no LiteRT CompiledModel (pip install ai-edge-litert)"


@functools.cache
def compiled_model_api() -> tuple[Any, Any, Any, Any] | None:
    """LiteRT's CompiledModel, HardwareAccelerator, Options and CpuOptions; None when the
    installed runtime has no CompiledModel (tflite-runtime, LiteRT before 2.0)."""
    try:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import CpuOptions, Options
    except ImportError:
        return None
    return CompiledModel, HardwareAccelerator, Options, CpuOptions


def _options(api: Any, accelerator: Accelerator, num_threads: int, alone: bool = False) -> Any:
    _, hardware, options, cpu_options = api
    flags = {"cpu": hardware.CPU, "gpu": hardware.GPU, "npu": hardware.NPU}[accelerator]
    if not alone and accelerator != "cpu":
        flags |= hardware.CPU  # what the accelerator lacks runs on the CPU, and is said so
    return options(hardware_accelerators=flags, cpu_options=cpu_options(num_threads=num_threads))


@contextlib.contextmanager
def _stderr_to(target: int) -> Iterator[None]:
    """The process's stderr (file descriptor 2, where LiteRT logs) goes to ``target`` for the
    block. LiteRT's environments live in reference cycles, so they are collected before it
    ends: their accelerators' "DestroyAccelerator" lines go to ``target`` too, not to the
    user's terminal when the process exits."""
    saved = os.dup(2)
    os.dup2(target, 2)
    try:
        yield
    finally:
        gc.collect()
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def accelerator_missing(accelerator: Accelerator) -> str | None:
    """Why ``accelerator`` cannot be used here, in one line; None when it can."""
    api = compiled_model_api()
    if api is None:
        return _NO_API
    from ..model.examples import dense_model_bytes

    content = dense_model_bytes(input_size=4, hidden=(4,), outputs=2)
    with tempfile.TemporaryFile() as log:
        # LiteRT often says why only in its log ("Failed to initialize WebGPU environment: No
        # adapters found"), which goes to the process's stderr: it is read from there.
        with _stderr_to(log.fileno()):
            try:
                api[0].from_buffer(content, options=_options(api, accelerator, 1, alone=True))
            except Exception as exc:  # LiteRT raises RuntimeError and ValueError
                failure: str | None = str(exc)
            else:
                failure = None
        if failure is None:
            return None
        log.seek(0)
        logged = log.read(1 << 16).decode("utf-8", "replace")
    reason = _reason(failure) or _reason(logged, errors_only=True) or _NO_REASON
    return (
        f"{_NAMES[accelerator]} is not available on this host: it could not run a one-layer "
        f"dense model alone ({reason})"
    )


class CompiledInterpreter:
    """One CompiledModel instance of a model, as an interpreter."""

    def __init__(self, path: Path, accelerator: Accelerator, num_threads: int) -> None:
        api = compiled_model_api()
        if api is None:  # the device was resolved with the API present: a runtime swapped since
            raise ModelError(f"{path}: {_NO_API}")
        self.accelerator = accelerator
        try:
            self._model = api[0].from_file(
                str(path), options=_options(api, accelerator, num_threads)
            )
        except (RuntimeError, ValueError) as exc:
            raise ModelError(
                f"{path}: {_NAMES[accelerator]} cannot compile this model "
                f"({_first_line(exc)}); check that the accelerator supports its operators"
            ) from None
        signatures = list(self._model.get_signature_list())
        self._inputs_of = self._model.get_input_tensor_details(signatures[0])
        self._outputs_of = self._model.get_output_tensor_details(signatures[0])
        self._input_buffers = self._model.create_input_buffers(0)
        self._output_buffers = self._model.create_output_buffers(0)

    def allocate_tensors(self) -> None:
        """Nothing to do: the buffers were made with the model."""

    def invoke(self) -> None:
        self._model.run_by_index(0, self._input_buffers, self._output_buffers)

    def get_input_details(self) -> list[TensorDetails]:
        return _details(self._inputs_of)

    def get_output_details(self) -> list[TensorDetails]:
        return _details(self._outputs_of)

    def set_tensor(self, tensor_index: int, value: Any) -> None:
        self._input_buffers[tensor_index].write(np.ascontiguousarray(value))

    def get_tensor(self, tensor_index: int) -> Any:
        detail = _details(self._outputs_of)[tensor_index]
        shape = tuple(int(d) for d in detail["shape"])
        count = int(np.prod(shape)) if shape else 1
        return self._output_buffers[tensor_index].read(count, detail["dtype"]).reshape(shape)

    def delegation(self, ops: int) -> Delegation:
        """Whether the accelerator runs all ``ops`` operators of the model: CompiledModel
        says yes or no, not which."""
        return Delegation(
            _NAMES[self.accelerator],
            ops,
            (),
            itemized=False,
            fully=bool(self._model.is_fully_accelerated()),
        )


def _details(by_name: dict[str, Any]) -> list[TensorDetails]:
    return [
        TensorDetails(
            name=str(name),
            index=position,
            shape=np.asarray(detail["shape"], dtype=np.int32),
            dtype=np.dtype(detail["dtype"]).type,
        )
        for position, (name, detail) in enumerate(by_name.items())
    ]


def _first_line(exc: BaseException) -> str:
    return _reason(str(exc)) or _NO_REASON


def _reason(text: str, errors_only: bool = False) -> str | None:
    """The last line of LiteRT's words that says something, without the source location it
    starts with (``ERROR: [litert/runtime/compiled_model.cc:1036]``); with ``errors_only``,
    only among its ERROR lines."""
    reasons = []
    for raw in text.splitlines():
        line = raw.strip(" └")
        located = _SOURCE_LOCATION.match(line)
        if errors_only and not (located and located.group(1) == "ERROR"):
            continue
        words = line[located.end() :].strip() if located else line
        if words:
            reasons.append(words)
    return reasons[-1] if reasons else None


_NO_REASON: Final = "no reason given; LiteRT's log is in the captured stderr"
_SOURCE_LOCATION: Final = re.compile(r"(ERROR|WARNING|INFO): \[[^\]]*\]")
