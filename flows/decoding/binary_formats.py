"""msgpack, CBOR and YAML bodies, read with their libraries' safe readers.

msgpack (`msgpack.unpackb`) and CBOR (`cbor2`'s decoder) build plain data only, and bound
themselves: a declared length longer than the body fails at once (`unpackb` caps every
length at the body's size), and nesting stops at a fixed depth (msgpack's 1024 levels,
cbor2's 400). YAML goes through PyYAML's safe loader when PyYAML happens to be installed (it
is no dependency of the dashboard's); its aliases can make a small document a large
structure, which `flows.decoding.values.plain` bounds when showing it.
"""

from __future__ import annotations

import importlib
import io
from typing import Any

import cbor2
import msgpack

from flows.decoding.bounds import LimitReached

MSGPACK_CONTENT_TYPES = frozenset(
    {"application/x-msgpack", "application/msgpack", "application/vnd.msgpack"}
)
CBOR_CONTENT_TYPES = frozenset({"application/cbor"})
YAML_CONTENT_TYPES = frozenset(
    {"application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml"}
)
# PyYAML's parser is Python: past this, reading would hold the event loop too long.
MAX_YAML_BYTES = 64 * 1024


def read_msgpack(data: bytes) -> Any:
    return msgpack.unpackb(
        data,
        raw=False,
        strict_map_key=False,  # Celery and others use integer keys too
        unicode_errors="replace",
    )


def read_cbor(data: bytes) -> tuple[Any, int]:
    """(the first CBOR item of `data`, bytes left after it)."""
    stream = io.BytesIO(data)
    value = cbor2.CBORDecoder(stream).decode()
    return value, len(data) - stream.tell()


def yaml_module() -> Any | None:
    """PyYAML when it is installed, else None (the body is then shown as text)."""
    try:
        return importlib.import_module("yaml")
    except ImportError:
        return None


def read_yaml(data: bytes, yaml: Any) -> Any:
    if len(data) > MAX_YAML_BYTES:
        raise LimitReached(f"YAML longer than {MAX_YAML_BYTES} bytes is not parsed")
    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    return yaml.load(data, Loader=loader)  # a safe loader, chosen above
