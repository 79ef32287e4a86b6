"""Inspect TFLite model files and generate the project's small example models.

:func:`inspect_model` reads a ``.tflite`` file once and reports what the plugin needs before
it picks a runtime: the file's digest, its operator names and whether any of them is an Edge
TPU subgraph (``edgetpu-custom-op``), which only the Edge TPU delegate can run. Every way a
file can be unusable (missing, a directory, not a flatbuffer, truncated, corrupt) becomes a
single :class:`~pytest_edgetpu.errors.ModelError` naming the file and the fix.

The flatbuffer is walked with a small bounds-checked reader instead of the generated
``tflite`` accessors: those trust every offset, so a damaged file makes them raise arbitrary
exceptions, read from the wrong end of the buffer (``struct`` accepts negative offsets) or loop
over billions of bogus vector elements.

:func:`write_dense_model`, :func:`write_conv_model` and :func:`write_example_models` build
small float32 models from seeded numpy weights with the ``tflite`` schema's builder functions,
byte-for-byte deterministic, so examples and tests need no TensorFlow and no downloads.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

# flatbuffers ships no type hints, and pyproject's mypy overrides do not list it.
import flatbuffers
import numpy as np
import tflite

from pytest_edgetpu.errors import ModelError
from pytest_edgetpu.jsonio import NotRegularFileError, read_regular
from pytest_edgetpu.limits import MAX_MODEL_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "EDGETPU_CUSTOM_OP",
    "EXAMPLE_MODELS",
    "ModelInfo",
    "conv_model_bytes",
    "dense_model_bytes",
    "inspect_model",
    "sha256_of",
    "write_conv_model",
    "write_dense_model",
    "write_example_models",
]

EDGETPU_CUSTOM_OP: Final = "edgetpu-custom-op"

_IDENTIFIER: Final = b"TFL3"
_SCHEMA_VERSION: Final = 3
_CUSTOM: Final[int] = tflite.BuiltinOperator.CUSTOM
_BUILTIN_NAMES: Final[dict[int, str]] = {
    value: name
    for name, value in vars(tflite.BuiltinOperator).items()
    if not name.startswith("_") and isinstance(value, int)
}
_HASH_CHUNK: Final = 1 << 20
#: What the identifier check and the format hint read of a file before the rest of it.
_HINT_BYTES: Final = 200


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`inspect_model` found in a ``.tflite`` file."""

    path: Path
    sha256: str
    size_bytes: int
    operators: tuple[str, ...]
    edgetpu_ops: int
    cpu_ops: int
    unknown_custom_ops: tuple[str, ...]

    @property
    def needs_edgetpu(self) -> bool:
        """Whether the model holds Edge TPU subgraphs, so only the Edge TPU delegate can run it."""
        return self.edgetpu_ops > 0

    @property
    def partially_mapped(self) -> bool:
        """Whether the Edge TPU compiler left some operators on the CPU."""
        return self.edgetpu_ops > 0 and self.cpu_ops > 0


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 digest of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def inspect_model(path: str | os.PathLike[str]) -> ModelInfo:
    """Read the TFLite model at ``path`` and list its operators.

    Raises :class:`~pytest_edgetpu.errors.ModelError` with a one-line message naming the file
    and the fix when it is missing, is not a TFLite flatbuffer, or is truncated or corrupt.
    """
    model_path = Path(os.fspath(path))
    data = _read_model_bytes(model_path)
    try:
        operators, custom_codes = _operator_names(data)
    except _CorruptModelError as exc:
        raise ModelError(
            f"{model_path} is a corrupt TFLite model ({exc}); re-export or re-download it"
        ) from None
    except _SchemaVersionError as exc:
        raise ModelError(
            f"{model_path} uses TFLite schema version {exc.version}, but TFLite runtimes read "
            f"only version {_SCHEMA_VERSION}; re-export it with a current converter"
        ) from None
    edgetpu_ops = operators.count(EDGETPU_CUSTOM_OP)
    return ModelInfo(
        path=model_path,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        operators=operators,
        edgetpu_ops=edgetpu_ops,
        cpu_ops=len(operators) - edgetpu_ops,
        unknown_custom_ops=tuple(sorted(custom_codes - {EDGETPU_CUSTOM_OP})),
    )


def _read_model_bytes(path: Path) -> bytes:
    """Return the file's bytes once they look like a TFLite flatbuffer, else raise ModelError.

    The identifier is checked on the first bytes, before the rest is read: a multi-gigabyte
    file of another kind costs eight bytes."""

    def check_identifier(head: bytes) -> None:
        if not head:
            raise ModelError(
                f"{path} is not a TFLite model (the file is empty; an interrupted download or "
                "write? re-export or re-download it)"
            )
        if len(head) < 8 or head[4:8] != _IDENTIFIER:
            raise ModelError(
                f"{path} is not a TFLite model (no 'TFL3' flatbuffer identifier at bytes 4..8; "
                f"{_format_hint(head)})"
            )

    try:
        return read_regular(path, MAX_MODEL_BYTES, head=_HINT_BYTES, check_head=check_identifier)
    except FileNotFoundError:
        raise ModelError(
            f"model file not found: {path} (check the model path given to the test, the "
            "marker or the command line; relative paths are resolved from the pytest rootdir)"
        ) from None
    except IsADirectoryError:
        raise _directory_error(path) from None
    except NotRegularFileError as exc:
        if path.is_dir():
            raise _directory_error(path) from None
        raise ModelError(f"{path} is not a TFLite model ({exc}); give the .tflite file") from None
    except PermissionError:
        # Windows reports opening a directory as a permission error.
        if path.is_dir():
            raise _directory_error(path) from None
        raise ModelError(
            f"cannot read model file {path}: permission denied (check its file permissions)"
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # larger than any flatbuffer, or a NUL in the path
        raise ModelError(f"cannot read model file {path}: {exc}") from None


def _directory_error(path: Path) -> ModelError:
    return ModelError(
        f"{path} is a directory, not a TFLite model (is it a SavedModel? convert it with "
        "tf.lite.TFLiteConverter and pass the .tflite file)"
    )


def _format_hint(data: bytes) -> str:
    """Guess what a non-TFLite file is, so the message can say how to get the real model."""
    head = data[:_HINT_BYTES].lstrip()
    if head.startswith(b"version https://git-lfs"):
        return "it is a Git LFS pointer: run 'git lfs pull' to fetch the real file"
    if head[:1] == b"<":
        return "it looks like an HTML or XML page: check the download URL"
    if head[:1] in (b"{", b"["):
        return "it looks like JSON, not a .tflite flatbuffer: convert the model to TFLite"
    if data[:2] == b"PK":
        return "it is a zip archive (a Keras .keras file?): extract or convert it to TFLite"
    if data[:8] == b"\x89HDF\r\n\x1a\n":
        return "it is an HDF5 file (a Keras .h5 model?): convert it with tf.lite.TFLiteConverter"
    return "is it a SavedModel, an ONNX file or a truncated download?"


class _CorruptModelError(Exception):
    """Internal: the flatbuffer's offsets or values do not describe a valid model."""


class _SchemaVersionError(Exception):
    """Internal: a well-formed file of a schema version other than 3."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


_I8: Final = struct.Struct("<b")
_U8: Final = struct.Struct("<B")
_U16: Final = struct.Struct("<H")
_I32: Final = struct.Struct("<i")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")


class _Reader:
    """Bounds-checked reads of flatbuffer scalars, tables, vectors and strings.

    ``budget`` caps the vector elements visited: vectors of a real model do not overlap, so
    visiting more elements than the file has bytes means aliased offsets that would otherwise
    multiply the work (a vector of N subgraphs all pointing at one N-operator subgraph).
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.budget = len(data)

    def check(self, pos: int, width: int, what: str) -> None:
        if pos < 0 or pos + width > self.size:
            raise _CorruptModelError(f"{what} at byte {pos} lies outside the {self.size}-byte file")

    def scalar(self, fmt: struct.Struct, pos: int, what: str) -> int:
        self.check(pos, fmt.size, what)
        value: int = fmt.unpack_from(self.data, pos)[0]
        return value

    def table(self, pos: int, what: str) -> _Table:
        vtable = pos - self.scalar(_I32, pos, what)
        vtable_size = self.scalar(_U16, vtable, f"vtable of {what}")
        object_size = self.scalar(_U16, vtable + 2, f"vtable of {what}")
        if vtable_size < 4 or vtable_size % 2:
            raise _CorruptModelError(f"vtable of {what} has an invalid size {vtable_size}")
        self.check(vtable, vtable_size, f"vtable of {what}")
        if object_size < 4:
            raise _CorruptModelError(f"{what} has an invalid size {object_size}")
        self.check(pos, object_size, what)
        return _Table(self, pos, vtable, vtable_size, object_size, what)

    def charge(self, count: int, what: str) -> None:
        self.budget -= count
        if self.budget < 0:
            raise _CorruptModelError(f"{what}: more elements than the file can hold")


@dataclass(frozen=True)
class _Table:
    """One flatbuffer table; ``slot`` numbers are the field order in the TFLite schema."""

    reader: _Reader
    pos: int
    vtable: int
    vtable_size: int
    object_size: int
    what: str

    def _field(self, slot: int, width: int) -> int | None:
        entry = 4 + 2 * slot
        if entry + 2 > self.vtable_size:
            return None
        offset = self.reader.scalar(_U16, self.vtable + entry, f"vtable of {self.what}")
        if offset == 0:
            return None
        if offset + width > self.object_size:
            raise _CorruptModelError(f"field {slot} of {self.what} lies outside the table")
        return self.pos + offset

    def scalar(self, slot: int, fmt: struct.Struct, default: int) -> int:
        pos = self._field(slot, fmt.size)
        if pos is None:
            return default
        return self.reader.scalar(fmt, pos, f"field {slot} of {self.what}")

    def _target(self, slot: int, what: str) -> int | None:
        pos = self._field(slot, 4)
        if pos is None:
            return None
        return pos + self.reader.scalar(_U32, pos, what)

    def vector(self, slot: int, elem_size: int, what: str) -> tuple[int, int]:
        """Return ``(first element position, length)``; an absent vector is empty."""
        start = self._target(slot, what)
        if start is None:
            return 0, 0
        length = self.reader.scalar(_U32, start, what)
        self.reader.check(start + 4, length * elem_size, what)
        self.reader.charge(length, what)
        return start + 4, length

    def tables(self, slot: int, what: str) -> list[_Table]:
        start, length = self.vector(slot, 4, what)
        reader = self.reader
        return [
            reader.table(
                start + 4 * i + reader.scalar(_U32, start + 4 * i, f"{what} #{i}"),
                f"{what} #{i}",
            )
            for i in range(length)
        ]

    def table_field(self, slot: int, what: str) -> _Table | None:
        pos = self._target(slot, what)
        return None if pos is None else self.reader.table(pos, what)

    def ints(self, slot: int, what: str) -> list[int]:
        start, length = self.vector(slot, 4, what)
        return [self.reader.scalar(_I32, start + 4 * i, what) for i in range(length)]

    def string(self, slot: int, what: str) -> str | None:
        start = self._target(slot, what)
        if start is None:
            return None
        length = self.reader.scalar(_U32, start, what)
        # The NUL terminator must be there too: the flatbuffers verifier demands it.
        self.reader.check(start + 4, length + 1, what)
        raw = self.reader.data[start + 4 : start + 4 + length]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _CorruptModelError(f"{what} is not UTF-8 text") from None


def _operator_names(data: bytes) -> tuple[tuple[str, ...], set[str]]:
    """Walk the model's flatbuffer; return one name per operator node and the custom codes.

    Besides the operators, it checks the offsets of every tensor, buffer and operator
    vector: in a truncated file the operator list can survive intact while the weights are
    gone, and that must be reported rather than give a plausible answer. It also checks that
    every tensor an operator reads has a source (see :func:`_check_dataflow`).
    """
    reader = _Reader(data)
    model = reader.table(reader.scalar(_U32, 0, "root offset"), "model")
    version = model.scalar(0, _U32, 0)
    if version != _SCHEMA_VERSION:
        # A zero version is what damage to the root table looks like; anything else is
        # most likely a real file from another schema.
        if version == 0:
            raise _CorruptModelError("no schema version")
        raise _SchemaVersionError(version)
    model.string(3, "description")

    opcode_names: list[str] = []
    custom_opcodes: set[int] = set()
    for i, opcode in enumerate(model.tables(1, "operator code")):
        deprecated = opcode.scalar(0, _I8, 0)
        builtin = max(opcode.scalar(3, _I32, 0), deprecated)
        custom = opcode.string(1, f"custom code of operator code #{i}")
        if builtin < 0:
            raise _CorruptModelError(f"operator code #{i} has a negative builtin code")
        if builtin == _CUSTOM:
            if custom is None:
                raise _CorruptModelError(f"custom operator code #{i} has no custom code")
            opcode_names.append(custom)
            custom_opcodes.add(i)
        else:
            opcode_names.append(_BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"))

    buffers = model.tables(4, "buffer")
    filled: set[int] = set()  # buffers that hold data: a tensor on one is a constant
    for i, buffer in enumerate(buffers):
        if buffer.vector(0, 1, f"data of buffer #{i}")[1]:
            filled.add(i)
        offset = buffer.scalar(1, _U64, 0)
        # Models over 2 GB keep weights after the flatbuffer; offset 1 is a placeholder.
        if offset > 1:
            reader.check(offset, buffer.scalar(2, _U64, 0), f"external data of buffer #{i}")
            filled.add(i)
    model.vector(5, 4, "metadata buffer list")
    for i, metadata in enumerate(model.tables(6, "metadata")):
        if metadata.scalar(1, _U32, 0) >= len(buffers):
            raise _CorruptModelError(f"metadata #{i} names a buffer that does not exist")
        metadata.string(0, f"name of metadata #{i}")
    for i, signature in enumerate(model.tables(7, "signature")):
        signature.tables(0, f"inputs of signature #{i}")
        signature.tables(1, f"outputs of signature #{i}")
        signature.string(2, f"key of signature #{i}")

    subgraphs = model.tables(2, "subgraph")
    if not subgraphs:
        raise _CorruptModelError("no subgraphs")
    names: list[str] = []
    custom_codes: set[str] = set()
    for s, subgraph in enumerate(subgraphs):
        tensors = subgraph.tables(0, f"tensor of subgraph #{s}")
        sources: set[int] = set()  # tensors that hold data before any operator runs
        for t, tensor in enumerate(tensors):
            shape = tensor.ints(0, f"shape of tensor #{t}")
            buffer_index = tensor.scalar(2, _U32, 0)
            if buffer_index >= max(len(buffers), 1):
                raise _CorruptModelError(f"tensor #{t} names a buffer that does not exist")
            # A constant, a variable (slot 5, e.g. an LSTM's state) or an empty tensor.
            if buffer_index in filled or tensor.scalar(5, _U8, 0) or 0 in shape:
                sources.add(t)
            tensor.string(3, f"name of tensor #{t}")
            tensor.vector(7, 4, f"shape signature of tensor #{t}")
            quantization = tensor.table_field(4, f"quantization of tensor #{t}")
            if quantization is not None:
                for slot in (0, 1, 2):  # min, max, scale
                    quantization.vector(slot, 4, f"quantization of tensor #{t}")
                quantization.vector(3, 8, f"zero points of tensor #{t}")
        graph_inputs = subgraph.ints(1, f"inputs of subgraph #{s}")
        _check_tensor_indices(graph_inputs, len(tensors), s)
        _check_tensor_indices(subgraph.ints(2, f"outputs of subgraph #{s}"), len(tensors), s)
        reads: list[tuple[int, list[int]]] = []
        for o, operator in enumerate(subgraph.tables(3, f"operator of subgraph #{s}")):
            index = operator.scalar(0, _U32, 0)
            if index >= len(opcode_names):
                raise _CorruptModelError(
                    f"operator #{o} of subgraph #{s} has operator code {index}, but the model "
                    f"has {len(opcode_names)}"
                )
            inputs = operator.ints(1, f"inputs of operator #{o}")
            outputs = operator.ints(2, f"outputs of operator #{o}")
            _check_tensor_indices(inputs, len(tensors), s)
            _check_tensor_indices(outputs, len(tensors), s)
            operator.vector(5, 1, f"custom options of operator #{o}")
            names.append(opcode_names[index])
            if index in custom_opcodes:
                custom_codes.add(opcode_names[index])
            reads.append((o, inputs))
            sources.update(outputs)
        _check_dataflow(reads, sources | set(graph_inputs), s)
    return tuple(names), custom_codes


def _check_dataflow(reads: list[tuple[int, list[int]]], sources: set[int], subgraph: int) -> None:
    """Every tensor an operator reads must be an input of the subgraph, a constant, a variable
    or some operator's output. A damaged buffer index or output list breaks that, and LiteRT
    then fails at the first inference ("lacks data") or crashes preparing the operator."""
    for operator, inputs in reads:
        for tensor in inputs:
            # -1 marks an omitted optional input.
            if tensor != -1 and tensor not in sources:
                raise _CorruptModelError(
                    f"operator #{operator} of subgraph #{subgraph} reads tensor #{tensor}, "
                    "which is no input, constant or operator output"
                )


def _check_tensor_indices(indices: list[int], tensor_count: int, subgraph: int) -> None:
    for index in indices:
        # -1 marks an omitted optional input.
        if not -1 <= index < tensor_count:
            raise _CorruptModelError(
                f"subgraph #{subgraph} refers to tensor {index}, but it has {tensor_count}"
            )


# --- Example model generation -------------------------------------------------------------

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
        tflite.ModelAddVersion(b, _SCHEMA_VERSION)
        tflite.ModelAddOperatorCodes(b, opcodes_vec)
        tflite.ModelAddSubgraphs(b, subgraphs_vec)
        tflite.ModelAddDescription(b, description)
        tflite.ModelAddBuffers(b, buffers_vec)
        tflite.ModelAddSignatureDefs(b, signatures_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=_IDENTIFIER)
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
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write-then-rename, so a concurrent reader (another xdist worker) never sees half a file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
