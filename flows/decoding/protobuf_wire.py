"""Protocol Buffers without a schema: the wire format's field numbers, wire types and values.

What `protoc --decode_raw` shows, written here (the format is small, and a protobuf
dependency would only be used for this). A length-delimited field is ambiguous without the
schema: it is shown as a string when it is printable UTF-8, else as a nested message when it
parses as one (to a bounded depth), else as bytes.

Wire types: 0 varint, 1 fixed 64 bits, 2 length-delimited, 3/4 start and end of a group
(deprecated, still read), 5 fixed 32 bits.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any

from flows.decoding.bounds import MAX_NODES, Budget, LimitReached

CONTENT_TYPES = frozenset(
    {
        "application/x-protobuf",
        "application/protobuf",
        "application/vnd.google.protobuf",
        "application/x-google-protobuf",
        "application/octet-stream+protobuf",
    }
)
MAX_DEPTH = 16
MAX_FIELD_NUMBER = (1 << 29) - 1
WIRE_TYPE_NAMES = {0: "varint", 1: "i64", 2: "len", 3: "group", 5: "i32"}


class WireError(Exception):
    pass


@dataclass(frozen=True)
class WireField:
    number: int
    wire_type: str  # varint, i64, len, group, i32
    # varint, i64, i32: the unsigned integer; len: str, bytes or a nested message (a tuple
    # of WireField); group: a tuple of WireField.
    value: Any


class _Walk:
    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.fields_left = MAX_NODES

    def count(self) -> None:
        self.fields_left -= 1
        if self.fields_left < 0:
            raise LimitReached(f"more than {MAX_NODES} fields")
        if self.fields_left % 1000 == 0:
            self.budget.check()


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        if pos >= end:
            raise WireError(f"a varint runs past the end at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise WireError(f"a varint longer than 10 bytes ends at byte {pos}")


def _fields(
    data: bytes, start: int, end: int, depth: int, walk: _Walk, group: int | None = None
) -> tuple[tuple[WireField, ...], int]:
    fields: list[WireField] = []
    pos = start
    while pos < end:
        walk.count()
        key_at = pos
        key, pos = _varint(data, pos, end)
        number, wire_type = key >> 3, key & 7
        if not 1 <= number <= MAX_FIELD_NUMBER:
            raise WireError(f"field number {number} at byte {key_at}")
        if wire_type == 0:
            value, pos = _varint(data, pos, end)
            fields.append(WireField(number, "varint", value))
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            if pos + size > end:
                raise WireError(f"field {number} needs {size} bytes at byte {pos}")
            value = int.from_bytes(data[pos : pos + size], "little")
            fields.append(WireField(number, WIRE_TYPE_NAMES[wire_type], value))
            pos += size
        elif wire_type == 2:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise WireError(f"field {number} declares {length} bytes at byte {pos}")
            fields.append(WireField(number, "len", _payload(data, pos, pos + length, depth, walk)))
            pos += length
        elif wire_type == 3:
            if depth <= 0:  # a WireError: inside a length-delimited field, that is bytes
                raise WireError(f"groups nested deeper than {MAX_DEPTH}")
            inner, pos = _fields(data, pos, end, depth - 1, walk, group=number)
            fields.append(WireField(number, "group", inner))
        elif wire_type == 4:
            if group != number:
                raise WireError(f"an end of group {number} at byte {key_at} closes nothing")
            return tuple(fields), pos
        else:
            raise WireError(f"wire type {wire_type} (field {number}) at byte {key_at}")
    if group is not None:
        raise WireError(f"group {group} is not closed")
    return tuple(fields), pos


def _payload(data: bytes, start: int, end: int, depth: int, walk: _Walk) -> Any:
    chunk = data[start:end]
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(char.isprintable() or char in "\n\r\t" for char in text):
        return text
    if depth > 0:
        try:
            inner, _ = _fields(data, start, end, depth - 1, walk)
        except WireError:
            pass
        else:
            return inner
    return chunk


def read_wire_format(data: bytes, *, budget: Budget | None = None) -> tuple[WireField, ...]:
    """The fields of a message, in order; raises `WireError` or `LimitReached`."""
    if not data:
        return ()
    fields, _ = _fields(data, 0, len(data), MAX_DEPTH, _Walk(budget or Budget()))
    return fields


# --- showing -----------------------------------------------------------------------------------


def as_plain(fields: tuple[WireField, ...]) -> list[dict[str, Any]]:
    """JSON data: `{"field", "wire_type", "value"}` each, with the other readings of numbers."""
    result = []
    for item in fields:
        entry: dict[str, Any] = {"field": item.number, "wire_type": item.wire_type}
        value = item.value
        if isinstance(value, tuple):
            entry["kind"] = "message" if item.wire_type == "len" else "group"
            entry["value"] = as_plain(value)
        elif isinstance(value, bytes):
            entry["kind"] = "bytes"
            entry["value"] = {"base64": base64.b64encode(value).decode("ascii")}
        elif isinstance(value, str):
            entry["kind"] = "string"
            entry["value"] = value
        else:
            entry["value"] = value
            entry.update(_numbers(item.wire_type, value))
        result.append(entry)
    return result


def _numbers(wire_type: str, value: int) -> dict[str, Any]:
    """What else an integer may mean: a negative int64, a double, a float."""
    extra: dict[str, Any] = {}
    if wire_type in ("varint", "i64") and value >= 1 << 63:
        extra["as_int64"] = value - (1 << 64)
    if wire_type == "i64":
        extra["as_double"] = _finite(struct.unpack("<d", value.to_bytes(8, "little"))[0])
    if wire_type == "i32":
        extra["as_float"] = _finite(struct.unpack("<f", value.to_bytes(4, "little"))[0])
        if value >= 1 << 31:
            extra["as_int32"] = value - (1 << 32)
    return extra


def _finite(number: float) -> float | str:
    return number if number == number and abs(number) != float("inf") else str(number)


def as_text(fields: tuple[WireField, ...], indent: int = 0) -> str:
    """Like `protoc --decode_raw`: `1: 150`, `2: "text"`, nested messages in braces."""
    lines: list[str] = []
    pad = " " * indent
    for item in fields:
        value = item.value
        if isinstance(value, tuple):
            lines.append(f"{pad}{item.number} {{")
            if value:
                lines.append(as_text(value, indent + 2))
            lines.append(f"{pad}}}")
        elif isinstance(value, bytes):
            lines.append(f"{pad}{item.number}: {_quoted_bytes(value)}")
        elif isinstance(value, str):
            lines.append(f'{pad}{item.number}: "{_escaped(value)}"')
        elif item.wire_type == "varint":
            lines.append(f"{pad}{item.number}: {value}")
        else:
            digits = 16 if item.wire_type == "i64" else 8
            readings = ", ".join(f"{k} {v}" for k, v in _numbers(item.wire_type, value).items())
            lines.append(f"{pad}{item.number}: 0x{value:0{digits}x} ({readings})")
    return "\n".join(lines)


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _quoted_bytes(data: bytes) -> str:
    return (
        '"'
        + "".join(
            chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02x}" for b in data
        )
        + '"'
    )
