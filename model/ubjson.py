"""A small, bounded UBJSON decoder: enough to read an XGBoost UBJSON model's learner config.

XGBoost (>= 1.6) writes UBJSON (https://ubjson.org) with big-endian numbers, optimized
(`$type#count`) arrays for the tree arrays, and `L`-prefixed string lengths. Treelite parses the
trees; this module only lets us read the objective, base score, feature names and version,
which treelite does not report. Every count is checked against the bytes left, so a hostile
file cannot make it allocate more than its own size.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

__all__ = ["UBJSONError", "decode_ubjson", "member_span"]

_MAX_DEPTH = 64

# type marker -> (struct format, size, numpy dtype for optimized arrays)
_NUMBERS: dict[bytes, tuple[str, int, str]] = {
    b"i": (">b", 1, ">i1"),
    b"U": (">B", 1, ">u1"),
    b"I": (">h", 2, ">i2"),
    b"l": (">i", 4, ">i4"),
    b"L": (">q", 8, ">i8"),
    b"d": (">f", 4, ">f4"),
    b"D": (">d", 8, ">f8"),
}


class UBJSONError(ValueError):
    """The bytes are not a well-formed UBJSON document."""


def decode_ubjson(data: bytes) -> Any:
    """Decode one UBJSON value from `data` (trailing bytes are an error).

    Objects become dicts, arrays become lists, optimized numeric arrays become numpy arrays.
    """
    reader = _Reader(data)
    value = reader.value(depth=0)
    if reader.pos != len(data):
        raise UBJSONError(f"{len(data) - reader.pos} trailing bytes after the document")
    return value


def member_span(data: bytes, key: str) -> tuple[int, int] | None:
    """Byte range of the value of `key` in the top-level object of `data`, or None.

    Used to cut the `Model` document out of an XGBoost memory snapshot
    (`{"Config": ..., "Model": ...}`) without re-encoding it.
    """
    reader = _Reader(data)
    if reader.marker() != b"{":
        raise UBJSONError("the document is not an object")
    item_type, count = reader.container_header()
    index = 0
    while count is None or index < count:
        if count is None and reader.data[reader.pos : reader.pos + 1] == b"}":
            return None
        name = reader.string()
        start = reader.pos
        reader.value(depth=1, marker=item_type)
        if name == key:
            return start, reader.pos
        index += 1
    return None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise UBJSONError(f"truncated at byte {self.pos} (wanted {size} more bytes)")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def marker(self) -> bytes:
        marker = self.take(1)
        while marker == b"N":  # no-op
            marker = self.take(1)
        return marker

    def number(self, marker: bytes) -> int | float:
        fmt, size, _ = _NUMBERS[marker]
        value: int | float = struct.unpack(fmt, self.take(size))[0]
        return value

    def length(self) -> int:
        marker = self.marker()
        if marker not in _NUMBERS or marker in (b"d", b"D"):
            raise UBJSONError(f"expected an integer length at byte {self.pos - 1}")
        value = int(self.number(marker))
        if value < 0:
            raise UBJSONError(f"negative length at byte {self.pos}")
        return value

    def string(self) -> str:
        size = self.length()
        try:
            return self.take(size).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UBJSONError(f"string is not UTF-8 at byte {self.pos - size}") from exc

    def value(self, *, depth: int, marker: bytes | None = None) -> Any:
        if depth > _MAX_DEPTH:
            raise UBJSONError(f"nested deeper than {_MAX_DEPTH} levels")
        if marker is None:
            marker = self.marker()
        if marker in _NUMBERS:
            return self.number(marker)
        if marker == b"Z":
            return None
        if marker == b"T":
            return True
        if marker == b"F":
            return False
        if marker == b"S":
            return self.string()
        if marker == b"C":
            return self.take(1).decode("latin-1")
        if marker == b"H":
            text = self.string()
            return float(text) if any(c in text for c in ".eE") else int(text)
        if marker == b"[":
            return self.array(depth=depth)
        if marker == b"{":
            return self.object(depth=depth)
        raise UBJSONError(f"unknown type marker {marker!r} at byte {self.pos - 1}")

    def container_header(self) -> tuple[bytes | None, int | None]:
        """Parse the optional `$type` and `#count` of an optimized container."""
        item_type: bytes | None = None
        count: int | None = None
        if self.data[self.pos : self.pos + 1] == b"$":
            self.pos += 1
            item_type = self.take(1)
            if self.data[self.pos : self.pos + 1] != b"#":
                raise UBJSONError(f"`$` without `#` at byte {self.pos}")
        if self.data[self.pos : self.pos + 1] == b"#":
            self.pos += 1
            count = self.length()
            # Every item takes at least one byte unless its type carries no payload.
            if item_type not in (b"Z", b"T", b"F", b"N") and count > len(self.data) - self.pos:
                raise UBJSONError(f"count {count} exceeds the remaining bytes at {self.pos}")
        return item_type, count

    def array(self, *, depth: int) -> Any:
        item_type, count = self.container_header()
        if count is None:
            items: list[Any] = []
            while True:
                marker = self.marker()
                if marker == b"]":
                    return items
                items.append(self.value(depth=depth + 1, marker=marker))
        if item_type is not None and item_type in _NUMBERS:
            _, size, dtype = _NUMBERS[item_type]
            return np.frombuffer(self.take(size * count), dtype=dtype)
        return [self.value(depth=depth + 1, marker=item_type) for _ in range(count)]

    def object(self, *, depth: int) -> dict[str, Any]:
        item_type, count = self.container_header()
        result: dict[str, Any] = {}
        if count is None:
            while True:
                if self.data[self.pos : self.pos + 1] == b"}":
                    self.pos += 1
                    return result
                key = self.string()
                result[key] = self.value(depth=depth + 1)
        for _ in range(count):
            key = self.string()
            result[key] = self.value(depth=depth + 1, marker=item_type)
        return result
