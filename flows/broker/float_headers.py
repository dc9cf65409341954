"""Float header values for pika: AMQP doubles (`d`) both ways.

pika 1.4 encodes str, bytes, bool, int, Decimal, datetime, dict, list and None in field
tables, but raises UnsupportedAMQPFieldException for a float; and it decodes doubles
(`d`) and floats (`f`) through `int()`, so 1.5 arrives as 1. A typed float header is part
of the publish form, and a tap must show what was sent, so `install()` wraps
`pika.data.encode_value` and `pika.data.decode_value` once per process: floats become
doubles and doubles stay floats; everything else goes to pika's own functions unchanged
(nested tables and arrays included: pika looks these functions up by their module-level
names, so the wrappers see every nested value).
"""

from __future__ import annotations

import struct
from typing import Any

import pika.data

_original_encode_value = pika.data.encode_value
_original_decode_value = pika.data.decode_value


def encode_value(pieces: list[bytes], value: Any) -> int:
    if isinstance(value, float):
        pieces.append(struct.pack(">cd", b"d", value))
        return 9
    return _original_encode_value(pieces, value)


def decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
    kind = encoded[offset : offset + 1]
    if kind == b"d":
        return struct.unpack_from(">d", encoded, offset + 1)[0], offset + 9
    if kind == b"f":
        return struct.unpack_from(">f", encoded, offset + 1)[0], offset + 5
    return _original_decode_value(encoded, offset)


def install() -> None:
    """Idempotent; call before encoding or decoding headers (the publisher does on import)."""
    if pika.data.encode_value is not encode_value:
        pika.data.encode_value = encode_value
    if pika.data.decode_value is not decode_value:
        pika.data.decode_value = decode_value
