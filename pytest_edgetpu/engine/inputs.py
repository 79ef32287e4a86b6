"""The inputs a benchmark runs on: generated once, deterministically, per dtype and shape.

Used by the session (``LoadedModel``) and by the probe helper, which must run a model the way
a test does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..device.runtime import Interpreter, TensorDetails

__all__ = ["fill_inputs", "random_inputs_for"]


def random_inputs_for(details: Sequence[TensorDetails], seed: int = 0) -> list[np.ndarray]:
    """Deterministic inputs for input ``details`` (same seed, dtype and shape: same bytes)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for detail in details:
        dtype = np.dtype(detail["dtype"])
        shape = tuple(int(d) for d in detail["shape"])
        if dtype == np.bool_:
            arrays.append(rng.integers(0, 2, size=shape).astype(np.bool_))
        elif np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            low, high = max(int(info.min), -128), min(int(info.max), 255)
            arrays.append(rng.integers(low, high, size=shape, endpoint=True).astype(dtype))
        else:
            arrays.append(rng.standard_normal(size=shape).astype(dtype))
    return arrays


def fill_inputs(
    interpreter: Interpreter, details: Sequence[TensorDetails], inputs: Sequence[np.ndarray]
) -> None:
    """Copy ``inputs`` into the interpreter's input tensors described by ``details``."""
    for detail, value in zip(details, inputs, strict=True):
        interpreter.set_tensor(detail["index"], value)
