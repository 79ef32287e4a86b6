"""The project's small example models, generated: no TensorFlow, no downloads.

:func:`write_dense_model`, :func:`write_conv_model` and :func:`write_example_models` build
small float32 models from seeded numpy weights with the ``tflite`` schema's builder functions,
byte-for-byte deterministic, so examples, tests and benchmarks need no TensorFlow and no
downloads. Nothing on the plugin's measuring path imports this module (it imports the whole
``tflite`` package); LiteRT accelerator checks (``compiled.py``) build a model with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

# flatbuffers ships no type hints, and pyproject's mypy overrides do not list it.
import flatbuffers
import numpy as np
import tflite

from ..core.jsonio import read_regular, write_atomic
from .inspection import FILE_IDENTIFIER, SCHEMA_VERSION

__all__ = [
    "EXAMPLE_MODELS",
    "conv_model_bytes",
    "dense_model_bytes",
    "first_log_model_bytes",
    "write_conv_model",
    "write_dense_model",
    "write_example_models",
]

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


class _Graph:
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


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        # bool is an int subclass, but True as a layer size is always a mistake.
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


# The example models' bytes, and so the sha256 their committed baselines name, must not change
# with the numpy version: Generator methods such as standard_normal may change their algorithms
# between releases, while a bit generator's raw stream is kept stable (NEP 19). Weights are
# therefore made from PCG64's raw 64-bit words with exact or correctly rounded arithmetic only.


_NORMALS_PER_CHUNK = 1 << 16


def _uniform(bits: np.random.PCG64, count: int) -> np.ndarray[Any, Any]:
    """``count`` values in [0, 1), each a multiple of 2**-24 (exact in float64)."""
    return (bits.random_raw(count) >> np.uint64(40)).astype(np.float64) * 2.0**-24


def _he_normal(bits: np.random.PCG64, shape: tuple[int, ...], fan_in: int) -> np.ndarray[Any, Any]:
    # The sum of twelve uniforms minus six has mean 0 and variance 1 (Irwin-Hall): normal enough
    # for weights, and exact. He scaling keeps ReLU activations in a sane range.
    # Drawn a chunk at a time: twelve float64 uniforms per weight of a 1024x1024 layer at once
    # would take about 200 MiB. The stream, and so every weight, is the same either way.
    count = math.prod(shape)
    weights: np.ndarray[Any, Any] = np.empty(count, dtype=np.float32)
    for start in range(0, count, _NORMALS_PER_CHUNK):
        size = min(_NORMALS_PER_CHUNK, count - start)
        standard = _uniform(bits, 12 * size).reshape(size, 12).sum(axis=1) - 6.0
        weights[start : start + size] = standard
    return weights.reshape(shape) * np.float32(math.sqrt(2.0 / fan_in))


def _small_bias(bits: np.random.PCG64, size: int) -> np.ndarray[Any, Any]:
    return (_uniform(bits, size) * 0.1 - 0.05).astype(np.float32)


def dense_model_bytes(
    *, input_size: int = 64, hidden: Sequence[int] = (128, 128), outputs: int = 10, seed: int = 0
) -> bytes:
    """Return the bytes of :func:`write_dense_model`'s model."""
    _check_positive(input_size=input_size, outputs=outputs)
    for i, width in enumerate(hidden):
        _check_positive(**{f"hidden[{i}]": width})
    bits = np.random.PCG64(seed)
    graph = _Graph(
        f"pytest-edgetpu example: dense float32 MLP, input_size={input_size}, "
        f"hidden={list(hidden)}, outputs={outputs}, seed={seed}"
    )
    x = graph.tensor("input", (1, input_size))
    width = input_size
    for i, units in enumerate(hidden):
        x = graph.fully_connected(
            f"dense_{i}",
            x,
            _he_normal(bits, (units, width), width),
            _small_bias(bits, units),
            relu=True,
            output_shape=(1, units),
        )
        width = units
    logits = graph.fully_connected(
        "logits",
        x,
        _he_normal(bits, (outputs, width), width),
        _small_bias(bits, outputs),
        relu=False,
        output_shape=(1, outputs),
    )
    probabilities = graph.softmax("output", logits, (1, outputs))
    return graph.serialize([0], [probabilities])


def conv_model_bytes(
    *,
    image_size: int = 32,
    channels: int = 3,
    filters: int = 16,
    outputs: int = 10,
    seed: int = 0,
) -> bytes:
    """Return the bytes of :func:`write_conv_model`'s model."""
    _check_positive(image_size=image_size, channels=channels, filters=filters, outputs=outputs)
    bits = np.random.PCG64(seed)
    graph = _Graph(
        f"pytest-edgetpu example: conv float32 net, image_size={image_size}, "
        f"channels={channels}, filters={filters}, outputs={outputs}, seed={seed}"
    )
    x = graph.tensor("input", (1, image_size, image_size, channels))
    x = graph.conv_2d(
        "conv_0",
        x,
        _he_normal(bits, (filters, 3, 3, channels), 9 * channels),
        _small_bias(bits, filters),
        stride=1,
        output_shape=(1, image_size, image_size, filters),
    )
    half = (image_size + 1) // 2  # SAME padding with stride 2 rounds up
    x = graph.depthwise_conv_2d(
        "depthwise_1",
        x,
        _he_normal(bits, (1, 3, 3, filters), 9),
        _small_bias(bits, filters),
        stride=2,
        output_shape=(1, half, half, filters),
    )
    x = graph.conv_2d(
        "pointwise_1",
        x,
        _he_normal(bits, (2 * filters, 1, 1, filters), filters),
        _small_bias(bits, 2 * filters),
        stride=1,
        output_shape=(1, half, half, 2 * filters),
    )
    x = graph.spatial_mean("global_pool", x, (1, 2 * filters))
    logits = graph.fully_connected(
        "logits",
        x,
        _he_normal(bits, (outputs, 2 * filters), 2 * filters),
        _small_bias(bits, outputs),
        relu=False,
        output_shape=(1, outputs),
    )
    probabilities = graph.softmax("output", logits, (1, outputs))
    return graph.serialize([0], [probabilities])


def write_dense_model(
    path: Path,
    *,
    input_size: int = 64,
    hidden: Sequence[int] = (128, 128),
    outputs: int = 10,
    seed: int = 0,
) -> Path:
    """Write a float32 MLP: ``[1, input_size]`` → FULLY_CONNECTED+RELU per ``hidden`` width →
    FULLY_CONNECTED → SOFTMAX → ``[1, outputs]``. Same arguments, same bytes. Returns ``path``.
    """
    data = dense_model_bytes(input_size=input_size, hidden=hidden, outputs=outputs, seed=seed)
    _write_if_changed(Path(path), data)
    return Path(path)


def write_conv_model(
    path: Path,
    *,
    image_size: int = 32,
    channels: int = 3,
    filters: int = 16,
    outputs: int = 10,
    seed: int = 0,
) -> Path:
    """Write a float32 conv net: ``[1, image_size, image_size, channels]`` → 3x3 CONV_2D →
    3x3 stride-2 DEPTHWISE_CONV_2D → 1x1 CONV_2D (all with fused RELU) → MEAN over H and W →
    FULLY_CONNECTED → SOFTMAX → ``[1, outputs]``. Same arguments, same bytes. Returns ``path``.
    """
    data = conv_model_bytes(
        image_size=image_size, channels=channels, filters=filters, outputs=outputs, seed=seed
    )
    _write_if_changed(Path(path), data)
    return Path(path)


def first_log_model_bytes() -> bytes:
    """A float32 softmax on ``[1, 2]``: XNNPACK takes it, so building it creates the delegate
    and LiteRT prints its first log line (:data:`pytest_edgetpu.device.runtime.FIRST_LOG_MODEL`
    holds these bytes, written out)."""
    graph = _Graph("pytest-edgetpu: the first CPU interpreter")
    x = graph.tensor("input", (1, 2))
    return graph.serialize([x], [graph.softmax("probabilities", x, (1, 2))])


EXAMPLE_MODELS: Final = ("tiny_dense.tflite", "tiny_conv.tflite")
# Sized for roughly 0.06 ms (dense) and 0.15 ms (conv) per invoke on one x86_64 thread with
# LiteRT's XNNPACK: long enough to measure, short enough for a quick benchmark run. A batch-1
# dense layer is bound by reading its weights, hence the dense model's 5 MB of them.
_TINY_DENSE: Final[dict[str, Any]] = {"input_size": 256, "hidden": (1024, 1024), "outputs": 10}
_TINY_CONV: Final[dict[str, Any]] = {"image_size": 64, "channels": 3, "filters": 32, "outputs": 10}


def write_example_models(directory: Path) -> list[Path]:
    """Write the project's example models into ``directory`` (created if needed).

    ``tiny_dense.tflite`` maps float32 ``[1, 256]`` to ``[1, 10]`` probabilities through two
    1024-wide layers; ``tiny_conv.tflite`` maps float32 ``[1, 64, 64, 3]`` to ``[1, 10]``.

    A file whose bytes are already right is left alone, so its mtime stays stable for build
    tools and caches. Returns the paths in :data:`EXAMPLE_MODELS` order.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dense_name, conv_name = EXAMPLE_MODELS
    return [
        write_dense_model(directory / dense_name, **_TINY_DENSE),
        write_conv_model(directory / conv_name, **_TINY_CONV),
    ]


def _write_if_changed(path: Path, data: bytes) -> None:
    try:
        if read_regular(path, len(data)) == data:
            return
    except (OSError, ValueError):  # absent, larger, a FIFO or a symlink to one: written anew
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write-then-rename, so a concurrent reader (another xdist worker) never sees half a file;
    # the temporary name is unpredictable, so a planted symlink cannot redirect the write.
    write_atomic(path, data)
