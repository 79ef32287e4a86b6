"""One JSON object read field by field: the one reader of every document the plugin takes in.

Baseline entries, results files, an xdist worker's payload and the relative-mode helper's
answers are all read through :class:`Fields`: a missing field, one of the wrong type or one out
of range is an error of the document's own kind (:class:`~pytest_edgetpu.core.errors.BaselineError`,
:class:`~pytest_edgetpu.core.errors.ResultsError`, ...) that names the document, the field and
the fix, never a ``KeyError`` or ``TypeError``. ``bool`` is never a number here: a
``"workers": true`` is as wrong as ``"workers": "2"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from .errors import EdgeTpuError
from .limits import is_count, is_number

__all__ = ["Fields"]

_T = TypeVar("_T")


class Fields:
    """One JSON object of a document: ``where`` names it in errors (``"r.json: result 3"``),
    ``fix`` says what to do about a bad one, ``error`` is the exception type raised."""

    def __init__(self, raw: object, where: str, *, fix: str, error: type[EdgeTpuError]) -> None:
        self._where, self._fix, self._error = where, fix, error
        if not isinstance(raw, dict):
            raise self.problem("is not an object")
        self._raw: Mapping[object, object] = raw

    def problem(self, what: str) -> EdgeTpuError:
        """The error for this object: ``"<where> <what>; <fix>"``."""
        return self._error(f"{self._where} {what}; {self._fix}")

    def wrong(self, key: str) -> EdgeTpuError:
        return self.problem(f"has a {key!r} of the wrong type")

    def invalid(self, key: str, words: str) -> EdgeTpuError:
        return self.problem(f"has a {key!r} that is not {words}")

    def has(self, key: str) -> bool:
        return self._raw.get(key) is not None

    def raw(self, key: str) -> object:
        return self._raw.get(key)

    def _get(self, key: str) -> object:
        if key not in self._raw:
            raise self.problem(f"has no {key!r}")
        return self._raw[key]

    def _required(self, key: str, read: Callable[[str], _T | None]) -> _T:
        self._get(key)  # a missing field is named as missing, not as of the wrong type
        value = read(key)
        if value is None:
            raise self.wrong(key)
        return value

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self.wrong(key)
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self.wrong(key)
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise self.wrong(key)
        return value

    def optional_flag(self, key: str) -> bool:
        """The flag, False when absent (written before the flag existed)."""
        return key in self._raw and self.flag(key)

    def whole(self, key: str) -> int:
        value = self._get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.wrong(key)
        return value

    def optional_whole(self, key: str) -> int | None:
        return self.whole(key) if self._raw.get(key) is not None else None

    def count(self, key: str, lowest: int, highest: int, words: str) -> int:
        """A whole number from ``lowest`` to ``highest``; ``words`` say so in the error."""
        value = self.whole(key)
        if not is_count(value, lowest, highest):
            raise self.invalid(key, words)
        return value

    def counts(self, key: str, lowest: int, highest: int, words: str) -> tuple[int, ...]:
        """A list of whole numbers, each from ``lowest`` to ``highest``."""
        value = self.items(key)
        if not all(is_count(item, lowest, highest) for item in value):
            raise self.invalid(key, words)
        return tuple(int(item) for item in value if isinstance(item, int))

    def number(self, key: str) -> float:
        return self._required(key, self.optional_number)

    def optional_number(self, key: str) -> float | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not is_number(value):
            raise self.wrong(key)
        return float(value)

    def share(self, key: str) -> float | None:
        """A share from 0 to 1 (a verdict divides by one minus it), or None when absent."""
        share = self.optional_number(key)
        if share is not None and not 0.0 <= share <= 1.0:
            raise self.invalid(key, "a share from 0 to 1")
        return share

    def numbers(self, key: str) -> tuple[float, ...]:
        return self._required(key, self.optional_numbers)

    def optional_numbers(self, key: str) -> tuple[float, ...] | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(map(is_number, value)):
            raise self.wrong(key)
        return tuple(float(v) for v in value)

    def items(self, key: str) -> list[object]:
        """A list, its items unread: the caller checks them against its own bounds."""
        value = self._get(key)
        if not isinstance(value, list):
            raise self.wrong(key)
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.wrong(key)
        return tuple(value)

    def text_mapping(self, key: str) -> dict[str, str] | None:
        """An object of strings to strings, or None when absent."""
        value = self._raw.get(key)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.problem(f"has a malformed {key!r}")
        return dict(value)

    def child(self, key: str) -> Fields:
        return self._required(key, self.optional_child)

    def optional_child(self, key: str) -> Fields | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.wrong(key)
        return self.nested(value, f"{self._where} {key}")

    def optional_children(self, key: str) -> list[Fields] | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.wrong(key)
        return [self.nested(item, f"{self._where} {key}") for item in value]

    def nested(self, raw: object, where: str) -> Fields:
        """Another object of the same document, read with the same fix and error."""
        return Fields(raw, where, fix=self._fix, error=self._error)

    def names(self) -> list[str]:
        return [key for key in self._raw if isinstance(key, str)]
