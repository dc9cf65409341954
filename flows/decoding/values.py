"""Decoded values made showable: as JSON data (`plain`) and as Python-like text (`literal_text`).

Decoders hand back whatever their format holds: bytes, sets, tuples, non-text keys,
datetimes, CBOR tags, msgpack extensions, and `Opaque` markers for what a decoder refused to
build (a pickle's globals and calls). Both functions here are bounded in depth, in the
number of values visited and (for text) in length, because a body may be a cycle (CBOR's
shared references, a pickle's memo) or a small structure that expands (YAML aliases).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows.decoding.bounds import MAX_DEPTH, MAX_NODES, MAX_TEXT_CHARS

# Wider integers are shown by their size: Python refuses to print one above 4300 digits,
# and no message field a person reads is that long.
MAX_INT_BITS = 4096
TOO_DEEP = "<nested too deep>"


@dataclass(frozen=True)
class Opaque:
    """Something a decoder shows by name and never builds: `<global os.system>`."""

    text: str

    def __str__(self) -> str:
        return self.text


class _Nodes:
    """The count of values visited, shared by one conversion."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def plain(value: Any, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> Any:
    """`value` as JSON data: dicts with text keys, lists, text, numbers, booleans, None.

    bytes become text when they are UTF-8, else `{"base64": ...}` (as headers do in a tap
    event); tuples and sets become lists; markers their text. Past `max_depth` a container
    is the text `<nested too deep>`; past `max_nodes` values, a container ends with
    `<N more not shown>`.
    """
    return _plain(value, max_depth, _Nodes(max_nodes))


def _plain(value: Any, depth: int, nodes: _Nodes) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= MAX_INT_BITS else _wide_int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, Opaque):
        return value.text
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if type(value).__name__ in _LIBRARY_TYPES:  # before tuples: msgpack's ExtType is one
        return _plain_other(value, depth, nodes)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if depth <= 0:
            return TOO_DEEP
        if isinstance(value, Mapping):
            result: dict[str, Any] = {}
            for key, item in value.items():
                if not nodes.take():
                    result["…"] = f"<{len(value) - len(result)} more not shown>"
                    break
                result[_key_text(key)] = _plain(item, depth - 1, nodes)
            return result
        items: list[Any] = []
        for item in value:
            if not nodes.take():
                items.append(f"<{len(value) - len(items)} more not shown>")
                break
            items.append(_plain(item, depth - 1, nodes))
        return items
    return _plain_other(value, depth, nodes)


_LIBRARY_TYPES = frozenset({"ExtType", "Timestamp", "CBORTag", "CBORSimpleValue"})


def _plain_other(value: Any, depth: int, nodes: _Nodes) -> Any:
    """The few library types the binary formats decode into, by duck type (no imports)."""
    name = type(value).__name__
    if name == "ExtType" and hasattr(value, "code"):  # msgpack
        return {"msgpack_ext": value.code, "base64": base64.b64encode(value.data).decode()}
    if name == "Timestamp" and hasattr(value, "to_datetime"):  # msgpack
        try:
            return value.to_datetime().isoformat()
        except (OverflowError, ValueError, OSError):
            return f"<timestamp {value.seconds}s {value.nanoseconds}ns>"
    if name == "CBORTag":
        return {"cbor_tag": value.tag, "value": _plain(value.value, depth - 1, nodes)}
    if name == "CBORSimpleValue":
        return {"cbor_simple": value.value}
    text = str(value)
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + "…"


def _wide_int(value: int) -> str:
    return f"<integer of {value.bit_length()} bits>"


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="replace")
    if key is None or isinstance(key, bool | int | float):
        return str(key) if not isinstance(key, int) or key.bit_length() <= 64 else _wide_int(key)
    return literal_text(key, max_chars=200)


# --- Python-like text ---------------------------------------------------------------------------


class _Full(Exception):
    """The text reached its length bound."""


class _Writer:
    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.left = limit

    def write(self, text: str) -> None:
        if len(text) > self.left:
            self.parts.append(text[: max(self.left, 0)])
            self.left = 0
            raise _Full
        self.parts.append(text)
        self.left -= len(text)

    def text(self) -> str:
        return "".join(self.parts)


def literal_text(
    value: Any,
    *,
    width: int = 88,
    max_chars: int = MAX_TEXT_CHARS,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> str:
    """`value` written as Python literals, a container per line once it is wider than `width`.

    Markers (`Opaque`) are written bare, so `<global os.system>` never reads as a string.
    Cut at `max_chars`, ending with `…`.
    """
    writer = _Writer(max_chars)
    try:
        _write(writer, value, 0, width, max_depth, _Nodes(max_nodes))
    except _Full:
        return writer.text() + "…"
    return writer.text()


def _compact(value: Any, limit: int, max_depth: int) -> str | None:
    """The one-line form when it fits in `limit` characters, else None."""
    writer = _Writer(limit)
    try:
        _write(writer, value, 0, None, max_depth, _Nodes(limit))
    except _Full:
        return None
    return writer.text()


_OPENERS = {list: ("[", "]"), tuple: ("(", ")"), set: ("{", "}"), frozenset: ("frozenset({", "})")}


def _write(
    out: _Writer, value: Any, indent: int, width: int | None, depth: int, nodes: _Nodes
) -> None:
    if not isinstance(value, Mapping | list | tuple | set | frozenset):
        out.write(_scalar_text(value))
        return
    if depth <= 0:
        out.write("…")
        return
    if not value:
        empty = {list: "[]", tuple: "()", set: "set()", frozenset: "frozenset()"}
        out.write("{}" if isinstance(value, Mapping) else empty.get(type(value), "[]"))
        return
    if width is not None:
        one_line = _compact(value, width - indent, depth)
        if one_line is not None:
            out.write(one_line)
            return
    opener, closer = (
        ("{", "}") if isinstance(value, Mapping) else _OPENERS.get(type(value), ("[", "]"))
    )
    newline = "" if width is None else "\n" + " " * (indent + 2)
    separator = ", " if width is None else ","
    out.write(opener)
    entries = list(value.items()) if isinstance(value, Mapping) else list(value)
    for index, entry in enumerate(entries):
        if not nodes.take():
            out.write(f"{newline}<{len(entries) - index} more not shown>")
            break
        out.write(newline)
        if isinstance(value, Mapping):
            _write(out, entry[0], indent + 2, width, depth - 1, nodes)
            out.write(": ")
            _write(out, entry[1], indent + 2, width, depth - 1, nodes)
        else:
            _write(out, entry, indent + 2, width, depth - 1, nodes)
        if index < len(entries) - 1:
            out.write(separator)
        elif isinstance(value, tuple) and len(entries) == 1:
            out.write(",")
    out.write(closer if width is None else "\n" + " " * indent + closer)


def _scalar_text(value: Any) -> str:
    if isinstance(value, Opaque):
        return value.text
    if isinstance(value, int) and not isinstance(value, bool):
        return repr(value) if value.bit_length() <= MAX_INT_BITS else _wide_int(value)
    if value is None or isinstance(value, bool | float | str | bytes | bytearray):
        return repr(value)
    return f"<{type(value).__name__}>"
