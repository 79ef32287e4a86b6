"""JSON reading with limits, for files that come from outside (baselines, results).

No pickle, no YAML objects: plain JSON, bounded in size and nesting, with NaN and Infinity
refused (they are not JSON, and a NaN baseline would compare as nothing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

__all__ = ["MAX_BYTES", "MAX_DEPTH", "loads_limited", "read_limited"]

MAX_BYTES: Final = 16 * 1024 * 1024
MAX_DEPTH: Final = 8


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number these files can hold")


def _check_depth(value: object, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for child in value.values():
            _check_depth(child, depth + 1)
    elif isinstance(value, list):
        for child in value:
            _check_depth(child, depth + 1)


def loads_limited(text: str) -> Any:
    """Parse ``text``; raises ValueError (with the reason) for anything out of bounds."""
    if len(text) > MAX_BYTES:
        raise ValueError(f"{len(text)} characters is more than {MAX_BYTES}")
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    _check_depth(document)
    return document


def read_limited(path: Path) -> Any:
    """Read and parse a JSON file; raises OSError or ValueError."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ValueError(f"{size} bytes is more than {MAX_BYTES}")
    return loads_limited(path.read_text(encoding="utf-8"))
