"""A small TFLite flatbuffer builder: tensors, constant buffers, the handful of operators the
example models need, and a signature, written with the ``tflite`` schema's builder functions.

Deterministic: the same calls give the same bytes. No TensorFlow; it imports the whole
``tflite`` package, so nothing on the plugin's measuring path imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

# flatbuffers ships no type hints, and pyproject's mypy overrides do not list it.
import flatbuffers
import numpy as np
import tflite

from .inspection import FILE_IDENTIFIER, SCHEMA_VERSION

__all__ = ["Graph"]


_FLOAT32: Final[int] = tflite.TensorType.FLOAT32


_INT32: Final[int] = tflite.TensorType.INT32


_RELU: Final[int] = tflite.ActivationFunctionType.RELU


_NO_ACTIVATION: Final[int] = tflite.ActivationFunctionType.NONE


_SAME: Final[int] = tflite.Padding.SAME


# TFLite aligns weight buffers to 16 bytes so kernels can read them in place.
_BUFFER_ALIGNMENT: Final = 16


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: int
    buffer: int


@dataclass(frozen=True)
class _Op:
    builtin: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options_type: int
    write_options: Callable[[Any], int]  # builds the options table; Any: flatbuffers.Builder


class Graph:
    """Collects the tensors and operators of a one-subgraph float32 model, then serializes it."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.tensors: list[_Tensor] = []
        # Buffer 0 is the empty sentinel that every tensor without constant data points at.
        self.buffers: list[bytes] = [b""]
        self.ops: list[_Op] = []

    def tensor(self, name: str, shape: Sequence[int], dtype: int = _FLOAT32) -> int:
        self.tensors.append(_Tensor(name, tuple(shape), dtype, 0))
        return len(self.tensors) - 1

    def constant(self, name: str, value: np.ndarray[Any, Any]) -> int:
        if value.dtype == np.float32:
            dtype, raw = _FLOAT32, value.astype("<f4").tobytes()
        else:
            dtype, raw = _INT32, value.astype("<i4").tobytes()
        self.buffers.append(raw)
        self.tensors.append(_Tensor(name, value.shape, dtype, len(self.buffers) - 1))
        return len(self.tensors) - 1

    def op(
        self,
        builtin: int,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options_type: int,
        write_options: Callable[[Any], int],
    ) -> None:
        self.ops.append(_Op(builtin, tuple(inputs), tuple(outputs), options_type, write_options))

    def serialize(self, inputs: Sequence[int], outputs: Sequence[int]) -> bytes:
        b = flatbuffers.Builder(1024 + sum(len(raw) for raw in self.buffers))
        opcodes = sorted({op.builtin for op in self.ops})

        buffer_offsets = []
        for raw in self.buffers:
            data = _aligned_bytes(b, raw) if raw else None
            tflite.BufferStart(b)
            if data is not None:
                tflite.BufferAddData(b, data)
            buffer_offsets.append(tflite.BufferEnd(b))

        tensor_offsets = []
        for tensor in self.tensors:
            name = b.CreateString(tensor.name)
            shape = b.CreateNumpyVector(np.array(tensor.shape, dtype="<i4"))
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, tensor.dtype)
            tflite.TensorAddBuffer(b, tensor.buffer)
            tflite.TensorAddName(b, name)
            tensor_offsets.append(tflite.TensorEnd(b))

        op_offsets = []
        for op in self.ops:
            op_inputs = b.CreateNumpyVector(np.array(op.inputs, dtype="<i4"))
            op_outputs = b.CreateNumpyVector(np.array(op.outputs, dtype="<i4"))
            options = op.write_options(b)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, opcodes.index(op.builtin))
            tflite.OperatorAddInputs(b, op_inputs)
            tflite.OperatorAddOutputs(b, op_outputs)
            tflite.OperatorAddBuiltinOptionsType(b, op.options_type)
            tflite.OperatorAddBuiltinOptions(b, options)
            op_offsets.append(tflite.OperatorEnd(b))

        tensors_vec = _offset_vector(b, tensor_offsets)
        inputs_vec = b.CreateNumpyVector(np.array(inputs, dtype="<i4"))
        outputs_vec = b.CreateNumpyVector(np.array(outputs, dtype="<i4"))
        ops_vec = _offset_vector(b, op_offsets)
        subgraph_name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_vec)
        tflite.SubGraphAddInputs(b, inputs_vec)
        tflite.SubGraphAddOutputs(b, outputs_vec)
        tflite.SubGraphAddOperators(b, ops_vec)
        tflite.SubGraphAddName(b, subgraph_name)
        subgraph = tflite.SubGraphEnd(b)

        opcode_offsets = []
        for builtin in opcodes:
            tflite.OperatorCodeStart(b)
            # Readers older than schema 2.4 only know the int8 field; newer ones take the max.
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(builtin, 127))
            tflite.OperatorCodeAddBuiltinCode(b, builtin)
            tflite.OperatorCodeAddVersion(b, 1)
            opcode_offsets.append(tflite.OperatorCodeEnd(b))

        # A signature lets runners address the model's input and output by name.
        signature = _signature(b, self.tensors, inputs, outputs)

        opcodes_vec = _offset_vector(b, opcode_offsets)
        subgraphs_vec = _offset_vector(b, [subgraph])
        buffers_vec = _offset_vector(b, buffer_offsets)
        signatures_vec = _offset_vector(b, [signature])
        description = b.CreateString(self.description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, SCHEMA_VERSION)
        tflite.ModelAddOperatorCodes(b, opcodes_vec)
        tflite.ModelAddSubgraphs(b, subgraphs_vec)
        tflite.ModelAddDescription(b, description)
        tflite.ModelAddBuffers(b, buffers_vec)
        tflite.ModelAddSignatureDefs(b, signatures_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=FILE_IDENTIFIER)
        return bytes(b.Output())

    # Layers: each adds its operator and returns the index of its output tensor.

    def fully_connected(
        self,
        name: str,
        x: int,
        weights: np.ndarray[Any, Any],
        bias: np.ndarray[Any, Any],
        *,
        relu: bool,
        output_shape: Sequence[int],
    ) -> int:
        w = self.constant(f"{name}/weights", weights)
        bias_tensor = self.constant(f"{name}/bias", bias)
        out = self.tensor(f"{name}/{'Relu' if relu else 'BiasAdd'}", output_shape)
        activation = _RELU if relu else _NO_ACTIVATION

        def options(b: Any) -> int:
            tflite.FullyConnectedOptionsStart(b)
            tflite.FullyConnectedOptionsAddFusedActivationFunction(b, activation)
            return int(tflite.FullyConnectedOptionsEnd(b))

        self.op(
            tflite.BuiltinOperator.FULLY_CONNECTED,
            (x, w, bias_tensor),
            (out,),
            tflite.BuiltinOptions.FullyConnectedOptions,
            options,
        )
        return out

    def conv_2d(
        self,
        name: str,
        x: int,
        weights: np.ndarray[Any, Any],
        bias: np.ndarray[Any, Any],
        *,
        stride: int,
        output_shape: Sequence[int],
    ) -> int:
        w = self.constant(f"{name}/weights", weights)
        bias_tensor = self.constant(f"{name}/bias", bias)
        out = self.tensor(f"{name}/Relu", output_shape)

        def options(b: Any) -> int:
            tflite.Conv2DOptionsStart(b)
            tflite.Conv2DOptionsAddPadding(b, _SAME)
            tflite.Conv2DOptionsAddStrideW(b, stride)
            tflite.Conv2DOptionsAddStrideH(b, stride)
            tflite.Conv2DOptionsAddFusedActivationFunction(b, _RELU)
            tflite.Conv2DOptionsAddDilationWFactor(b, 1)
            tflite.Conv2DOptionsAddDilationHFactor(b, 1)
            return int(tflite.Conv2DOptionsEnd(b))

        self.op(
            tflite.BuiltinOperator.CONV_2D,
            (x, w, bias_tensor),
            (out,),
            tflite.BuiltinOptions.Conv2DOptions,
            options,
        )
        return out

    def depthwise_conv_2d(
        self,
        name: str,
        x: int,
        weights: np.ndarray[Any, Any],
        bias: np.ndarray[Any, Any],
        *,
        stride: int,
        output_shape: Sequence[int],
    ) -> int:
        w = self.constant(f"{name}/weights", weights)
        bias_tensor = self.constant(f"{name}/bias", bias)
        out = self.tensor(f"{name}/Relu", output_shape)

        def options(b: Any) -> int:
            tflite.DepthwiseConv2DOptionsStart(b)
            tflite.DepthwiseConv2DOptionsAddPadding(b, _SAME)
            tflite.DepthwiseConv2DOptionsAddStrideW(b, stride)
            tflite.DepthwiseConv2DOptionsAddStrideH(b, stride)
            tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, 1)
            tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(b, _RELU)
            tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, 1)
            tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, 1)
            return int(tflite.DepthwiseConv2DOptionsEnd(b))

        self.op(
            tflite.BuiltinOperator.DEPTHWISE_CONV_2D,
            (x, w, bias_tensor),
            (out,),
            tflite.BuiltinOptions.DepthwiseConv2DOptions,
            options,
        )
        return out

    def spatial_mean(self, name: str, x: int, output_shape: Sequence[int]) -> int:
        axes = self.constant(f"{name}/reduction_indices", np.array([1, 2], dtype=np.int32))
        out = self.tensor(name, output_shape)

        def options(b: Any) -> int:
            tflite.ReducerOptionsStart(b)
            tflite.ReducerOptionsAddKeepDims(b, False)
            return int(tflite.ReducerOptionsEnd(b))

        self.op(
            tflite.BuiltinOperator.MEAN,
            (x, axes),
            (out,),
            tflite.BuiltinOptions.ReducerOptions,
            options,
        )
        return out

    def softmax(self, name: str, x: int, output_shape: Sequence[int]) -> int:
        out = self.tensor(name, output_shape)

        def options(b: Any) -> int:
            tflite.SoftmaxOptionsStart(b)
            tflite.SoftmaxOptionsAddBeta(b, 1.0)
            return int(tflite.SoftmaxOptionsEnd(b))

        self.op(
            tflite.BuiltinOperator.SOFTMAX,
            (x,),
            (out,),
            tflite.BuiltinOptions.SoftmaxOptions,
            options,
        )
        return out


def _aligned_bytes(b: Any, raw: bytes) -> int:
    """Write ``raw`` as a ubyte vector whose data starts on a ``_BUFFER_ALIGNMENT`` boundary."""
    b.StartVector(1, len(raw), _BUFFER_ALIGNMENT)
    b.head = b.head - len(raw)
    b.Bytes[b.head : b.head + len(raw)] = raw
    return int(b.EndVector())


def _offset_vector(b: Any, offsets: Sequence[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return int(b.EndVector())


def _signature(
    b: Any, tensors: Sequence[_Tensor], inputs: Sequence[int], outputs: Sequence[int]
) -> int:
    def tensor_maps(indices: Sequence[int]) -> int:
        maps = []
        for index in indices:
            name = b.CreateString(tensors[index].name)
            tflite.TensorMapStart(b)
            tflite.TensorMapAddName(b, name)
            tflite.TensorMapAddTensorIndex(b, index)
            maps.append(tflite.TensorMapEnd(b))
        return _offset_vector(b, maps)

    inputs_vec = tensor_maps(inputs)
    outputs_vec = tensor_maps(outputs)
    key = b.CreateString("serving_default")
    tflite.SignatureDefStart(b)
    tflite.SignatureDefAddInputs(b, inputs_vec)
    tflite.SignatureDefAddOutputs(b, outputs_vec)
    tflite.SignatureDefAddSignatureKey(b, key)
    tflite.SignatureDefAddSubgraphIndex(b, 0)
    return int(tflite.SignatureDefEnd(b))
