"""A bounds-checked reader of the few FlexBuffer values an Edge TPU custom op's options hold.

``edgetpu-custom-op`` nodes keep their options as a FlexBuffer map (libedgetpu's
``tflite/custom_op_data.cc``): ``"1"`` a version, ``"4"`` the compiled package as a string of
bytes, ``"6"`` chip versions, ``"7"`` further packages. Only maps, integers, strings, blobs and
vectors of them are read; every offset is checked against the buffer, and every problem is a
:class:`~pytest_edgetpu.model.flatbuffer.CorruptError`. A value is reached by going backwards
from its parent by an offset, so a cycle cannot arise: each step visits one value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .flatbuffer import CorruptError

__all__ = ["Value", "root"]

# FlexBuffer value types (flexbuffers.h): those read here, and the ones stored inline.
_NULL, _INT, _UINT, _FLOAT, _STRING = 0, 1, 2, 3, 5
_MAP, _VECTOR, _VECTOR_INT, _VECTOR_UINT = 9, 10, 11, 12
_BLOB, _BOOL = 25, 26
_INLINE: Final = frozenset({_NULL, _INT, _UINT, _FLOAT, _BOOL})
_TYPED_VECTORS: Final = {_VECTOR_INT: _INT, _VECTOR_UINT: _UINT}


@dataclass(frozen=True)
class Value:
    """One FlexBuffer value: its type, where it is and how wide its slot (or its own fields,
    for a value stored by offset) is."""

    data: bytes
    kind: int
    pos: int
    width: int

    def _uint(self, pos: int, width: int, what: str) -> int:
        if width not in (1, 2, 4, 8) or pos < 0 or pos + width > len(self.data):
            raise CorruptError(
                f"{what} at byte {pos} lies outside the {len(self.data)}-byte options"
            )
        return int.from_bytes(self.data[pos : pos + width], "little")

    def _int(self, pos: int, width: int, what: str) -> int:
        value = self._uint(pos, width, what)
        return value - (1 << (8 * width)) if value >> (8 * width - 1) else value

    def as_int(self, what: str) -> int:
        if self.kind == _INT:
            return self._int(self.pos, self.width, what)
        if self.kind in (_UINT, _BOOL):
            return self._uint(self.pos, self.width, what)
        raise CorruptError(f"{what} is not a number")

    def _length(self, what: str) -> int:
        length = self._uint(self.pos - self.width, self.width, what)
        if length > len(self.data):
            raise CorruptError(f"{what} claims {length} elements in {len(self.data)} bytes")
        return length

    def as_bytes(self, what: str) -> bytes:
        """A string's or a blob's bytes."""
        if self.kind not in (_STRING, _BLOB):
            raise CorruptError(f"{what} is not a string")
        length = self._length(what)
        if self.pos + length > len(self.data):
            raise CorruptError(f"{what} runs past the end of the options")
        return self.data[self.pos : self.pos + length]

    def items(self, what: str) -> list[Value]:
        """A vector's (or a map's values') elements."""
        length = self._length(what)
        if self.kind in _TYPED_VECTORS:
            kind = _TYPED_VECTORS[self.kind]
            return [
                self._element(self.pos + i * self.width, kind, self.width, what)
                for i in range(length)
            ]
        if self.kind not in (_VECTOR, _MAP):
            raise CorruptError(f"{what} is not a vector")
        types = self.pos + length * self.width
        return [
            self._element(
                self.pos + i * self.width,
                self._uint(types + i, 1, what) >> 2,
                1 << (self._uint(types + i, 1, what) & 3),
                what,
            )
            for i in range(length)
        ]

    def _element(self, pos: int, kind: int, own_width: int, what: str) -> Value:
        if kind in _INLINE:
            return Value(self.data, kind, pos, self.width)
        return Value(self.data, kind, pos - self._uint(pos, self.width, what), own_width)

    def get(self, key: str, what: str) -> Value | None:
        """A map's value under ``key``; None when it has none."""
        if self.kind != _MAP:
            raise CorruptError(f"{what} is not a map")
        values = self.items(what)
        keys_at = self.pos - 3 * self.width
        keys = keys_at - self._uint(keys_at, self.width, what)
        keys_width = self._uint(self.pos - 2 * self.width, self.width, what)
        if self._uint(keys - keys_width, keys_width, what) != len(values):
            raise CorruptError(f"{what} has not as many keys as values")
        wanted = key.encode("ascii") + b"\0"
        for i, value in enumerate(values):
            slot = keys + i * keys_width
            name = slot - self._uint(slot, keys_width, what)
            if name >= 0 and self.data[name : name + len(wanted)] == wanted:
                return value
        return None


def root(data: bytes) -> Value:
    """The root value of a FlexBuffer: its last byte is the root's width, the one before its
    packed type, and the root itself sits just before them."""
    if len(data) < 3:
        raise CorruptError(f"{len(data)} bytes are too short for FlexBuffer options")
    width = data[-1]
    packed = data[-2]
    pos = len(data) - 2 - width
    kind, own_width = packed >> 2, 1 << (packed & 3)
    holder = Value(data, _UINT, pos, width)
    if kind in _INLINE:
        return Value(data, kind, pos, width)
    return Value(data, kind, pos - holder._uint(pos, width, "the root"), own_width)
