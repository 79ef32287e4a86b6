"""A bounds-checked flatbuffer reader: scalars, tables, vectors and strings of any schema.

The generated accessors (the ``tflite`` package's, flatc's) trust every offset, so a damaged
file makes them raise arbitrary exceptions, read from the wrong end of the buffer (``struct``
accepts negative offsets) or loop over billions of bogus vector elements. Here every offset is
checked against the buffer, and every problem is a :class:`CorruptError` that says what was
being read; a caller turns it into one line naming its file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

__all__ = ["I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "CorruptError", "Reader", "Table"]


class CorruptError(Exception):
    """The buffer's offsets or values do not describe a valid flatbuffer of its schema."""


I8: Final = struct.Struct("<b")
I16: Final = struct.Struct("<h")
I32: Final = struct.Struct("<i")
I64: Final = struct.Struct("<q")
U8: Final = struct.Struct("<B")
U16: Final = struct.Struct("<H")
U32: Final = struct.Struct("<I")
U64: Final = struct.Struct("<Q")


class Reader:
    """Bounds-checked reads of flatbuffer scalars, tables, vectors and strings.

    ``budget`` caps the vector elements visited: vectors of a real model do not overlap, so
    visiting more elements than the file has bytes means aliased offsets that would otherwise
    multiply the work (a vector of N subgraphs all pointing at one N-operator subgraph).
    """

    def __init__(self, data: bytes, whole: str = "file") -> None:
        self.data = data
        self.size = len(data)
        self.budget = len(data)
        self.whole = whole  # what ``data`` is, in errors: "file", "package"

    def check(self, pos: int, width: int, what: str) -> None:
        if pos < 0 or pos + width > self.size:
            raise CorruptError(
                f"{what} at byte {pos} lies outside the {self.size}-byte {self.whole}"
            )

    def scalar(self, fmt: struct.Struct, pos: int, what: str) -> int:
        self.check(pos, fmt.size, what)
        value: int = fmt.unpack_from(self.data, pos)[0]
        return value

    def table(self, pos: int, what: str) -> Table:
        vtable = pos - self.scalar(I32, pos, what)
        vtable_size = self.scalar(U16, vtable, f"vtable of {what}")
        object_size = self.scalar(U16, vtable + 2, f"vtable of {what}")
        if vtable_size < 4 or vtable_size % 2:
            raise CorruptError(f"vtable of {what} has an invalid size {vtable_size}")
        self.check(vtable, vtable_size, f"vtable of {what}")
        if object_size < 4:
            raise CorruptError(f"{what} has an invalid size {object_size}")
        self.check(pos, object_size, what)
        return Table(self, pos, vtable, vtable_size, object_size, what)

    def charge(self, count: int, what: str) -> None:
        self.budget -= count
        if self.budget < 0:
            raise CorruptError(f"{what}: more elements than the file can hold")


@dataclass(frozen=True)
class Table:
    """One flatbuffer table; ``slot`` numbers are the field order in its schema."""

    reader: Reader
    pos: int
    vtable: int
    vtable_size: int
    object_size: int
    what: str

    def _field(self, slot: int, width: int) -> int | None:
        entry = 4 + 2 * slot
        if entry + 2 > self.vtable_size:
            return None
        offset = self.reader.scalar(U16, self.vtable + entry, f"vtable of {self.what}")
        if offset == 0:
            return None
        if offset + width > self.object_size:
            raise CorruptError(f"field {slot} of {self.what} lies outside the table")
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
        return pos + self.reader.scalar(U32, pos, what)

    def vector(self, slot: int, elem_size: int, what: str) -> tuple[int, int]:
        """Return ``(first element position, length)``; an absent vector is empty."""
        start = self._target(slot, what)
        if start is None:
            return 0, 0
        length = self.reader.scalar(U32, start, what)
        self.reader.check(start + 4, length * elem_size, what)
        self.reader.charge(length, what)
        return start + 4, length

    def tables(self, slot: int, what: str) -> list[Table]:
        start, length = self.vector(slot, 4, what)
        reader = self.reader
        return [
            reader.table(
                start + 4 * i + reader.scalar(U32, start + 4 * i, f"{what} #{i}"),
                f"{what} #{i}",
            )
            for i in range(length)
        ]

    def table_field(self, slot: int, what: str) -> Table | None:
        pos = self._target(slot, what)
        return None if pos is None else self.reader.table(pos, what)

    def ints(self, slot: int, what: str) -> list[int]:
        start, length = self.vector(slot, 4, what)
        return [self.reader.scalar(I32, start + 4 * i, what) for i in range(length)]

    def string(self, slot: int, what: str) -> str | None:
        start = self._target(slot, what)
        if start is None:
            return None
        length = self.reader.scalar(U32, start, what)
        # The NUL terminator must be there too: the flatbuffers verifier demands it.
        self.reader.check(start + 4, length + 1, what)
        raw = self.reader.data[start + 4 : start + 4 + length]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptError(f"{what} is not UTF-8 text") from None
