"""The relative-mode helper's channel: one line of ASCII JSON per message, on descriptors of
their own (framed like the probe's, :mod:`pytest_edgetpu.engine.probe`), so nothing a test prints
can pass for a message. :mod:`~pytest_edgetpu.relative.helper` is this process's end,
:mod:`~pytest_edgetpu.relative.serving` the helper's."""

from __future__ import annotations

import json
import selectors
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Final

from ..core.errors import one_line

if TYPE_CHECKING:
    from ..core.jsonio import JsonObject

__all__ = ["MAX_LINE", "SERVE_ENV", "Call", "error_words", "receive", "send"]

#: How the helper learns it is one: its descriptors and the revision, as JSON.
SERVE_ENV: Final = "PYTEST_EDGETPU_SERVE"
MAX_LINE: Final = 16 * 1024 * 1024


def error_words(error: BaseException) -> str:
    """An exception as one line: its type, and its message's first line."""
    text = str(error).strip()
    words = one_line(text.splitlines()[0]) if text else ""
    return type(error).__name__ + (f": {words}" if words else "")


def send(stream: IO[str], message: JsonObject) -> None:
    stream.write(json.dumps(message, ensure_ascii=True) + "\n")
    stream.flush()


def receive(stream: IO[str] | IO[bytes], timeout_s: float | None) -> JsonObject | None:
    """The next message; None at the end of the stream, on a timeout or on garbage."""
    if timeout_s is not None:
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                return None
    line = stream.readline(MAX_LINE)
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


@dataclass(frozen=True)
class Call:
    """One ``tpu_bench`` call of the test at the revision."""

    target: str
    model_sha256: str | None
