"""Float header values for pika: encoded as AMQP doubles (`d`), which RabbitMQ accepts.

pika 1.4 encodes str, bytes, bool, int, Decimal, datetime, dict, list and None in field
tables, but raises UnsupportedAMQPFieldException for a float, although it decodes doubles.
A typed float header is part of the publish form, so `install()` wraps
`pika.data.encode_value` once per process: floats become doubles, everything else goes to
pika's own encoder unchanged (nested tables and arrays included, since pika's encoder
looks the function up by its module-level name).
"""

from __future__ import annotations

import struct
from typing import Any

import pika.data

_original_encode_value = pika.data.encode_value


def encode_value(pieces: list[bytes], value: Any) -> int:
    if isinstance(value, float):
        pieces.append(struct.pack(">cd", b"d", value))
        return 9
    return _original_encode_value(pieces, value)


def install() -> None:
    if pika.data.encode_value is not encode_value:
        pika.data.encode_value = encode_value
