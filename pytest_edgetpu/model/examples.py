"""The project's small example models, generated: no TensorFlow, no downloads.

:func:`write_dense_model`, :func:`write_conv_model` and :func:`write_example_models` build
small float32 models from seeded numpy weights with the ``tflite`` schema's builder functions,
byte-for-byte deterministic, so examples, tests and benchmarks need no TensorFlow and no
downloads. Nothing on the plugin's measuring path imports this module (it imports the whole
``tflite`` package); LiteRT accelerator checks (``device/accelerators.py``) build a model with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

# flatbuffers ships no type hints, and pyproject's mypy overrides do not list it.
import numpy as np

from ..core.jsonio import read_regular, write_atomic
from .builder import Graph

__all__ = [
    "EXAMPLE_MODELS",
    "conv_model_bytes",
    "dense_model_bytes",
    "first_log_model_bytes",
    "write_conv_model",
    "write_dense_model",
    "write_example_models",
]


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
    graph = Graph(
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
    graph = Graph(
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
    graph = Graph("pytest-edgetpu: the first CPU interpreter")
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
