"""What every benchmark script does with its result: stamp it, print it, save it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def stamped(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` after the date and the command that produced them (write_results.py shows
    the command as the way to reproduce the file)."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(sys.argv),
        **fields,
    }


def save(fields: dict[str, Any], out: Path | None) -> None:
    """Print the stamped result as JSON and write it to ``out`` when given."""
    text = json.dumps(stamped(fields), indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
