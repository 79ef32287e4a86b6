"""The session's first CPU interpreter: LiteRT's XNNPACK log line goes nowhere."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import flatbuffers
import tflite

from pytest_edgetpu.example_models import write_conv_model
from pytest_edgetpu.runtime import FIRST_LOG_MODEL

XNNPACK_LINE = "Created TensorFlow Lite XNNPACK delegate for CPU"


def _one_add_model() -> bytes:
    """``y = x + x`` on float32 ``[1]``, built with the tflite package's generated builders."""
    b = flatbuffers.Builder(0)

    def tensor(name: str) -> int:
        text = b.CreateString(name)
        tflite.TensorStartShapeVector(b, 1)
        b.PrependInt32(1)
        shape = b.EndVector()
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, tflite.TensorType.FLOAT32)
        tflite.TensorAddBuffer(b, 0)
        tflite.TensorAddName(b, text)
        return int(tflite.TensorEnd(b))

    def ints(start: Callable[..., object], values: tuple[int, ...]) -> int:
        start(b, len(values))
        for value in reversed(values):
            b.PrependInt32(value)
        return int(b.EndVector())

    def tables(start: Callable[..., object], offsets: tuple[int, ...]) -> int:
        start(b, len(offsets))
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return int(b.EndVector())

    x, y = tensor("x"), tensor("y")
    op_inputs = ints(tflite.OperatorStartInputsVector, (0, 0))
    op_outputs = ints(tflite.OperatorStartOutputsVector, (1,))
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, op_inputs)
    tflite.OperatorAddOutputs(b, op_outputs)
    add = tflite.OperatorEnd(b)
    tensors = tables(tflite.SubGraphStartTensorsVector, (x, y))
    inputs = ints(tflite.SubGraphStartInputsVector, (0,))
    outputs = ints(tflite.SubGraphStartOutputsVector, (1,))
    operators = tables(tflite.SubGraphStartOperatorsVector, (add,))
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors)
    tflite.SubGraphAddInputs(b, inputs)
    tflite.SubGraphAddOutputs(b, outputs)
    tflite.SubGraphAddOperators(b, operators)
    subgraph = tflite.SubGraphEnd(b)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, tflite.BuiltinOperator.ADD)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, tflite.BuiltinOperator.ADD)
    tflite.OperatorCodeAddVersion(b, 1)
    code = tflite.OperatorCodeEnd(b)
    codes = tables(tflite.ModelStartOperatorCodesVector, (code,))
    subgraphs = tables(tflite.ModelStartSubgraphsVector, (subgraph,))
    tflite.BufferStart(b)
    empty = tflite.BufferEnd(b)
    buffers = tables(tflite.ModelStartBuffersVector, (empty,))
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddBuffers(b, buffers)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_the_first_log_model_is_one_add_built_by_the_schema_builders() -> None:
    assert _one_add_model() == FIRST_LOG_MODEL


def _stderr_of_building(model: Path, consume_first: bool) -> str:
    code = (
        "from pytest_edgetpu.runtime import consume_first_cpu_log, load_runtime\n"
        "runtime = load_runtime()\n"
        f"if {consume_first}:\n"
        "    consume_first_cpu_log(runtime)\n"
        f"runtime.interpreter_class(model_path={str(model)!r}, num_threads=1).allocate_tensors()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stderr


def test_the_first_real_model_prints_no_xnnpack_line_once_the_log_is_consumed(
    tmp_path: Path,
) -> None:
    model = write_conv_model(tmp_path / "conv.tflite")
    assert XNNPACK_LINE in _stderr_of_building(model, consume_first=False)
    assert XNNPACK_LINE not in _stderr_of_building(model, consume_first=True)
